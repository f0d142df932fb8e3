"""Go duration syntax: parse_duration and format_duration."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from modelreg.api.models import DURATION_PATTERN
from modelreg.core.durations import format_duration, parse_duration, parse_duration_ns

PROPS = settings(max_examples=200, deadline=None)
#: for narrower properties
QUICK = settings(max_examples=100, deadline=None)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("0", timedelta(0)),
        ("10m", timedelta(minutes=10)),
        ("1h30m", timedelta(hours=1, minutes=30)),
        ("1.5h", timedelta(hours=1, minutes=30)),
        ("300ms", timedelta(milliseconds=300)),
        ("2us", timedelta(microseconds=2)),
        ("5µs", timedelta(microseconds=5)),  # U+00B5 micro sign
        ("5μs", timedelta(microseconds=5)),  # U+03BC Greek mu
        ("7ns", timedelta(0)),  # below a timedelta's resolution: truncated
        ("1500ns", timedelta(microseconds=1)),
        ("15m", timedelta(minutes=15)),
        ("720h", timedelta(hours=720)),
        ("24h", timedelta(days=1)),
        ("0s", timedelta(0)),
        ("1h0.5s", timedelta(hours=1, milliseconds=500)),
        ("2h45m30.25s", timedelta(hours=2, minutes=45, seconds=30, milliseconds=250)),
        (".5h", timedelta(minutes=30)),
        ("5.h", timedelta(hours=5)),
        ("1m1m", timedelta(minutes=2)),
        ("-1m30s", -timedelta(minutes=1, seconds=30)),
        ("+10s", timedelta(seconds=10)),
        ("0.000001s", timedelta(microseconds=1)),
    ],
)
def test_parse(text: str, expected: timedelta) -> None:
    assert parse_duration(text) == expected


def test_parse_ns_is_exact() -> None:
    assert parse_duration_ns("7ns") == 7
    assert parse_duration_ns("1.5h") == 5_400_000_000_000
    assert parse_duration_ns("0.1s") == 100_000_000


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("", "empty"),
        ("10", "missing unit"),
        ("1x", "unknown unit 'x'"),
        ("1d", "unknown unit 'd'"),
        ("h", "expected a number"),
        (".", "expected a number"),
        ("1h 30m", "unknown unit"),
        ("abc", "expected a number"),
        ("1e3s", "unknown unit 'e'"),
        ("-", "empty"),
        ("9" * 30 + "h", "out of range"),
    ],
)
def test_parse_rejects(text: str, fragment: str) -> None:
    with pytest.raises(ValueError, match=re.escape(fragment)) as info:
        parse_duration(text)
    assert repr(text) in str(info.value)


def test_parse_rejects_non_string() -> None:
    with pytest.raises(ValueError):
        parse_duration(10)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("td", "expected"),
    [
        (timedelta(0), "0s"),
        (timedelta(hours=1, minutes=30), "1h30m0s"),
        (timedelta(minutes=10), "10m0s"),
        (timedelta(minutes=15), "15m0s"),
        (timedelta(hours=720), "720h0m0s"),
        (timedelta(milliseconds=300), "300ms"),
        (timedelta(microseconds=2), "2µs"),
        (timedelta(microseconds=1500), "1.5ms"),
        (timedelta(seconds=1, milliseconds=500), "1.5s"),
        (timedelta(minutes=1, seconds=30, milliseconds=500), "1m30.5s"),
        (timedelta(hours=1, microseconds=1), "1h0m0.000001s"),
        (-timedelta(minutes=1, seconds=30), "-1m30s"),
        (timedelta(days=2), "48h0m0s"),
    ],
)
def test_format(td: timedelta, expected: str) -> None:
    assert format_duration(td) == expected


@QUICK
@given(st.timedeltas(min_value=-timedelta(days=10**6), max_value=timedelta(days=10**6)))
def test_format_parse_round_trip(td: timedelta) -> None:
    assert parse_duration(format_duration(td)) == td


_COMPONENT = st.builds(
    lambda whole, frac, unit: f"{whole}{'.' + frac if frac else ''}{unit}",
    st.integers(0, 10**20).map(str),
    st.one_of(st.just(""), st.integers(0, 10**9).map(str)),
    st.sampled_from(["ns", "us", "µs", "ms", "s", "m", "h"]),
)
API_DURATIONS = st.one_of(
    st.just("0"),
    st.lists(_COMPONENT, min_size=1, max_size=4).map("".join).filter(lambda s: len(s) <= 64),
)


@QUICK
@given(API_DURATIONS)
def test_api_durations_parse_or_say_out_of_range(text: str) -> None:
    assert re.fullmatch(DURATION_PATTERN, text)
    try:
        td = parse_duration(text)
    except ValueError as exc:
        assert "out of range" in str(exc)
    else:
        assert td >= timedelta(0)
