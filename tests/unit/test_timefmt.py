"""RFC 3339 parsing and formatting shared by the operator and the CLI (modelreg.core.timefmt)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from modelreg.core import timefmt

NOW = datetime(2026, 11, 20, 12, 0, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    "when",
    [
        NOW,
        NOW.replace(microsecond=5),
        NOW.replace(microsecond=123456),
        datetime(1999, 12, 31, 23, 59, 59, tzinfo=UTC),
    ],
)
def test_round_trip(when: datetime) -> None:
    assert timefmt.parse(timefmt.rfc3339(when)) == when
    assert timefmt.rfc3339(timefmt.parse(timefmt.rfc3339(when))) == timefmt.rfc3339(when)


def test_z_and_offsets_are_the_same_instant() -> None:
    assert timefmt.parse("2026-11-20T12:00:00Z") == NOW
    assert timefmt.parse("2026-11-20T12:00:00+00:00") == NOW
    assert timefmt.parse("2026-11-20T13:30:00+01:30") == NOW
    assert timefmt.parse("2026-11-20T07:00:00-05:00") == NOW
    assert timefmt.parse("2026-11-20T13:30:00+01:30").utcoffset() == timedelta(hours=1, minutes=30)  # offset kept
    assert timefmt.rfc3339(datetime(2026, 11, 20, 13, 30, tzinfo=timezone(timedelta(hours=1, minutes=30)))) == (
        "2026-11-20T12:00:00Z"
    )


def test_naive_means_utc() -> None:
    assert timefmt.parse("2026-11-20T12:00:00") == NOW
    assert timefmt.parse("2026-11-20") == NOW.replace(hour=0)
    assert timefmt.rfc3339(datetime(2026, 1, 1)) == "2026-01-01T00:00:00Z"
    assert timefmt.parse_or_none(datetime(2026, 11, 20, 12)) == NOW


def test_fractional_seconds() -> None:
    assert timefmt.parse("2026-11-20T12:00:00.5Z") == NOW.replace(microsecond=500000)
    assert timefmt.parse("2026-11-20T12:00:00.123Z") == NOW.replace(microsecond=123000)
    assert timefmt.parse("2026-11-20T12:00:00.000005Z") == NOW.replace(microsecond=5)
    assert timefmt.rfc3339(NOW) == "2026-11-20T12:00:00Z"
    assert timefmt.rfc3339(NOW.replace(microsecond=5)) == "2026-11-20T12:00:00.000005Z"
    assert timefmt.rfc3339(NOW.replace(microsecond=5), "seconds") == "2026-11-20T12:00:00Z"
    assert timefmt.rfc3339(NOW, "microseconds") == "2026-11-20T12:00:00.000000Z"


@pytest.mark.parametrize("text", ["yesterday", "", "2026-13-01T00:00:00Z", "2026-11-20T25:00:00Z", "12:00"])
def test_bad_input_names_the_value(text: str) -> None:
    with pytest.raises(ValueError, match=f"{text!r} is not an RFC 3339 timestamp"):
        timefmt.parse(text)
    assert timefmt.parse_or_none(text) is None


def test_parse_or_none_of_absent_or_foreign_values() -> None:
    assert timefmt.parse_or_none(None) is None
    assert timefmt.parse_or_none(1732104000) is None
    assert timefmt.parse_or_none(" 2026-11-20T12:00:00Z ") == NOW
    assert timefmt.parse_or_none(NOW) is NOW
