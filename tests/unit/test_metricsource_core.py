"""The poller's pure rules (docs/metricsource.md): templates, timing, values, buckets, conditions."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from modelreg.api.models import MetricQueries
from modelreg.core import metricsource as ms
from modelreg.core.conditions import get_condition

PROPS = settings(max_examples=200, deadline=None)
NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)


def vector(*series: tuple[dict[str, str], str]) -> dict[str, Any]:
    return {"resultType": "vector", "result": [{"metric": m, "value": [1700000000, v]} for m, v in series]}


# --------------------------------------------------------------------------- templates


def queries(**kw: Any) -> MetricQueries:
    doc: dict[str, Any] = {"sampleCount": 'sum(x{model="{{modelName}}"}[{{window}}])'}
    doc.update(kw)
    return MetricQueries.model_validate(doc)


def test_known_placeholders_are_fine() -> None:
    q = queries(
        errorCount='sum(e{ns="{{ namespace }}",rm="{{registeredModel}}",v="{{version}}"}[{{window}}])',
        featureHistogram='sum by (le) (f_bucket{feature="{{feature}}"})',
        custom={"acc": 'avg_over_time(a{m="{{modelName}}"}[{{window}}])'},
    )
    assert ms.template_problems(q) == []


def test_unknown_placeholder_names_the_field() -> None:
    q = queries(errorCount="sum(e{x='{{modelname}}'})", custom={"acc": "{{feature}}"})
    assert ms.template_problems(q) == [
        "queries.errorCount: unknown placeholder {{modelname}}",
        "queries.custom.acc: unknown placeholder {{feature}}",
    ]


def test_render_escapes_values_and_writes_the_window_in_seconds() -> None:
    out = ms.render(
        'x{m="{{modelName}}",f="{{feature}}"}[{{window}}]',
        {"modelName": "fraud", "feature": 'a"b\\c\nd'},
        window_seconds=300,
    )
    assert out == 'x{m="fraud",f="a\\"b\\\\c\\nd"}[300s]'


def test_render_refuses_an_unknown_placeholder() -> None:
    with pytest.raises(ms.InvalidTemplate, match=r"queries.errorCount: unknown placeholder \{\{nope\}\}"):
        ms.render("{{nope}}", {}, window_seconds=60, field_name="errorCount")


@PROPS
@given(st.text(max_size=40))
def test_escaped_value_round_trips_as_a_go_string(value: str) -> None:
    escaped = ms.escape_promql(value)
    # No unescaped quote or raw newline can end the literal early.
    assert "\n" not in escaped and "\r" not in escaped
    i = 0
    while i < len(escaped):
        if escaped[i] == "\\":
            i += 2
            continue
        assert escaped[i] != '"'
        i += 1
    decoded = escaped.encode("latin-1", "backslashreplace").decode("unicode_escape") if value.isascii() else None
    if decoded is not None:
        assert decoded == value


# --------------------------------------------------------------------------- timing


def test_evaluation_time_rounds_down_after_the_delay() -> None:
    p = ms.plan_window(now=1000.0, interval=60, window=60, delay=30, stage_since=None)
    assert (p.t, p.window, p.write) == (960, 60, True)
    assert p.next_at == 960 + 60 + 30
    # restarts and replicas agree on t
    assert ms.plan_window(now=1049.9, interval=60, window=60, delay=30, stage_since=None).t == 960
    assert ms.plan_window(now=1050.0, interval=60, window=60, delay=30, stage_since=None).t == 1020


def test_window_is_cut_at_the_stage_change_and_waits_for_a_full_interval() -> None:
    p = ms.plan_window(now=1000.0, interval=60, window=300, delay=0, stage_since=900.0)
    assert (p.t, p.window, p.write) == (960, 60, True)
    p = ms.plan_window(now=1000.0, interval=60, window=300, delay=0, stage_since=930.0)
    assert p.write is False and p.window == 30 and "interval" in p.reason
    p = ms.plan_window(now=1000.0, interval=60, window=300, delay=0, stage_since=990.0)
    assert p.write is False and p.window == 0


@PROPS
@given(
    now=st.floats(min_value=1e6, max_value=2e9),
    interval=st.integers(min_value=5, max_value=3600),
    window=st.integers(min_value=5, max_value=7200),
    delay=st.integers(min_value=0, max_value=600),
)
def test_window_plan_properties(now: float, interval: int, window: int, delay: int) -> None:
    p = ms.plan_window(now=now, interval=interval, window=window, delay=delay, stage_since=None)
    assert p.t % interval == 0
    assert p.t <= now - delay < p.t + interval
    assert p.next_at > now
    assert p.window == window and p.write == (window >= interval)
    assert ms.still_current(p.t, interval, delay, now)
    assert not ms.still_current(p.t, interval, delay, p.next_at)


def test_snapshot_name_and_label_rule() -> None:
    assert ms.snapshot_name("fraud-3-1-0", 1763640000) == "fraud-3-1-0-1763640000"
    assert ms.label_value("short") == "short"
    long = "a" * 242
    label = ms.label_value(long)
    assert len(label) == 63 and label.startswith("a" * 54 + "-")
    assert len(ms.snapshot_name(long, 9_999_999_999)) <= 253


# --------------------------------------------------------------------------- results


def test_parse_result_rules() -> None:
    assert ms.parse_result(vector(({}, "12.5"))) == ms.Sample(12.5)
    assert ms.parse_result({"resultType": "scalar", "result": [1, "3"]}) == ms.Sample(3.0)
    assert ms.parse_result(vector()) is ms.NO_DATA
    for bad in ("NaN", "+Inf", "-Inf", "garbage"):
        assert ms.parse_result(vector(({}, bad))) is ms.INVALID
    assert ms.parse_result({"resultType": "scalar", "result": [1, "NaN"]}) is ms.INVALID
    assert ms.parse_result(vector(({"a": "1"}, "1"), ({"a": "2"}, "2"))) == ms.Ambiguous(2)
    failure = ms.parse_result({"resultType": "matrix", "result": []})
    assert isinstance(failure, ms.Failure) and failure.reason == "QueryError"


def test_values_rates_on_unrounded_counts_clamped_and_sample_count_rounded_down() -> None:
    v = ms.snapshot_values(
        {
            "sampleCount": ms.Sample(99.9),
            "errorCount": ms.Sample(9.99),
            "oodCount": ms.Sample(150.0),  # counters reset mid-window: more OOD than samples
            "latencyP99Ms": ms.Sample(84.0),
            "custom.accuracy": ms.Sample(0.91),
        }
    )
    assert v.failure is None and v.sample_count == 99
    assert v.metrics["errorRate"] == pytest.approx(0.1)
    assert v.metrics["oodRate"] == 1.0
    assert v.metrics["latencyP99Ms"] == 84.0 and v.metrics["custom"] == {"accuracy": 0.91}
    assert v.no_data == [] and v.invalid == []
    neg = ms.snapshot_values({"sampleCount": ms.Sample(10), "errorCount": ms.Sample(-3)})
    assert neg.metrics["errorRate"] == 0.0


def test_empty_sample_count_is_zero_and_listed_never_a_guess() -> None:
    v = ms.snapshot_values({"sampleCount": ms.NO_DATA, "errorCount": ms.Sample(0.0), "oodCount": ms.NO_DATA})
    assert v.sample_count == 0 and v.no_data == ["sampleCount", "oodCount"]
    assert "errorRate" not in v.metrics and "oodRate" not in v.metrics


def test_nan_and_inf_are_left_out_as_invalid() -> None:
    v = ms.snapshot_values(
        {
            "sampleCount": ms.Sample(1000),
            "errorCount": ms.INVALID,
            "latencyP99Ms": ms.INVALID,
            "custom.acc": ms.INVALID,
        }
    )
    assert v.invalid == ["errorCount", "latencyP99Ms", "custom.acc"]
    assert v.metrics == {}
    assert ms.snapshot_values({"sampleCount": ms.INVALID}).invalid == ["sampleCount"]
    assert ms.snapshot_values({"sampleCount": ms.Sample(-1)}).invalid == ["sampleCount"]


def test_two_series_fail_the_window_with_the_count() -> None:
    v = ms.snapshot_values({"sampleCount": ms.Sample(10), "errorCount": ms.Ambiguous(2)})
    assert v.failure == ms.Failure("AmbiguousQuery", "queries.errorCount returned 2 series; it must return one")


def test_a_failed_query_fails_the_window() -> None:
    v = ms.snapshot_values({"sampleCount": ms.Failure("Timeout", "x"), "errorCount": ms.Sample(1)})
    assert v.failure == ms.Failure("Timeout", "x")


@PROPS
@given(
    samples=st.floats(min_value=0, max_value=1e9, allow_nan=False),
    errors=st.floats(min_value=-1e9, max_value=1e9, allow_nan=False),
)
def test_rates_are_always_in_range(samples: float, errors: float) -> None:
    v = ms.snapshot_values({"sampleCount": ms.Sample(samples), "errorCount": ms.Sample(errors)})
    assert v.sample_count == math.floor(samples)
    if samples > 0:
        assert 0.0 <= v.metrics["errorRate"] <= 1.0
    else:
        assert "errorRate" not in v.metrics


# --------------------------------------------------------------------------- buckets


def buckets(*pairs: tuple[str, str], extra: dict[str, str] | None = None) -> dict[str, Any]:
    return vector(*(({"le": le, **(extra or {})}, v) for le, v in pairs))


def test_le_compared_as_numbers_sorted_inf_last_and_differenced() -> None:
    cur = ms.parse_buckets(buckets(("+Inf", "100"), ("1.0", "10"), ("0.5", "4"), ("1", "5")))
    assert isinstance(cur, ms.Buckets)
    assert cur.bounds == (0.5, 1.0, math.inf) and cur.cumulative == (4.0, 15.0, 100.0)
    ref = ms.parse_buckets(buckets(("0.5", "1"), ("1", "2"), ("+Inf", "3")))
    assert isinstance(ref, ms.Buckets)
    h = ms.feature_histogram("amount", cur, ref)
    assert h is not None and h.current == [4.0, 11.0, 85.0] and h.reference == [1.0, 1.0, 1.0]


def test_bucket_edge_cases() -> None:
    assert ms.parse_buckets(vector()) is ms.NO_DATA
    assert ms.parse_buckets(buckets(("1", "1"), ("+Inf", "2"), extra=None)) != ms.NO_DATA
    ambiguous = vector(({"le": "1", "pod": "a"}, "1"), ({"le": "1", "pod": "b"}, "1"))
    assert ms.parse_buckets(ambiguous) == ms.Ambiguous(2)
    assert ms.parse_buckets(vector(({}, "1"))) is ms.INVALID  # no le
    assert ms.parse_buckets(buckets(("abc", "1"))) is ms.INVALID
    assert ms.parse_buckets(buckets(("1", "NaN"))) is ms.INVALID
    assert isinstance(ms.parse_buckets({"resultType": "scalar", "result": [1, "1"]}), ms.Failure)


def test_differing_bucket_sets_or_decreasing_counts_are_invalid() -> None:
    a = ms.parse_buckets(buckets(("1", "1"), ("+Inf", "2")))
    b = ms.parse_buckets(buckets(("2", "1"), ("+Inf", "2")))
    dec = ms.parse_buckets(buckets(("1", "5"), ("+Inf", "2")))
    assert isinstance(a, ms.Buckets) and isinstance(b, ms.Buckets) and isinstance(dec, ms.Buckets)
    assert ms.feature_histogram("f", a, b) is None
    assert ms.feature_histogram("f", dec, dec) is None
    assert ms.feature_histogram("f", a, a) is not None


# --------------------------------------------------------------------------- errors and conditions


def test_http_classification_keeps_only_the_error_field() -> None:
    body = {"status": "error", "errorType": "bad_data", "error": "parse error at char 5"}
    assert ms.classify_http(400, body) == ms.Failure("QueryError", "parse error at char 5")
    assert ms.classify_http(422, {"errorType": "execution", "error": "x"}).reason == "QueryError"
    assert ms.classify_http(503, {"errorType": "timeout", "error": "query timed out"}).reason == "Timeout"
    assert ms.classify_http(401, None) == ms.Failure("Forbidden", "HTTP 401")
    assert ms.classify_http(403, "<html>secret page</html>") == ms.Failure("Forbidden", "HTTP 403")
    assert ms.classify_http(502, "<html>bad gateway</html>") == ms.Failure("HTTPError", "HTTP 502")
    long = ms.classify_http(422, {"error": "é" * 400})
    assert len(long.message.encode()) <= 256 and long.message == "é" * 128


def test_truncate_never_cuts_a_character() -> None:
    assert ms.truncate_utf8("a" + "€" * 100, 10) == "a" + "€" * 3


def test_condition_written_only_on_change_and_one_event_per_reason_change() -> None:
    first = ms.metrics_condition([], None, NOW)
    assert first.conditions is not None and first.event_reason is None
    c = get_condition(first.conditions, "MetricsAvailable")
    assert c is not None and (c.status, c.reason) == ("True", "Pulled")
    assert ms.metrics_condition(first.conditions, None, NOW + timedelta(minutes=1)).conditions is None

    down = ms.metrics_condition(first.conditions, ms.Failure("Unreachable", "connection refused"), NOW)
    assert down.conditions is not None and down.event_reason == "Unreachable" and down.event_type == "Warning"
    again = ms.metrics_condition(down.conditions, ms.Failure("Unreachable", "connection refused"), NOW)
    assert again.conditions is None and again.event_reason is None
    other = ms.metrics_condition(down.conditions, ms.Failure("Unreachable", "no route"), NOW)
    assert other.conditions is not None and other.event_reason is None  # same reason: no new Event
    up = ms.metrics_condition(down.conditions, None, NOW + timedelta(minutes=2))
    assert up.conditions is not None and up.event_reason == "Pulled" and up.event_type == "Normal"
    c = get_condition(up.conditions, "MetricsAvailable")
    assert c is not None and c.last_transition_time == NOW + timedelta(minutes=2)


def test_condition_message_is_bounded() -> None:
    ch = ms.metrics_condition([], ms.Failure("QueryError", "x" * 1000), NOW)
    assert ch.conditions is not None
    c = get_condition(ch.conditions, "MetricsAvailable")
    assert c is not None and len(c.message.encode()) == 256
