"""One poll planned as data (core/metricpoll.py): the queries to run, then the snapshot or the failure."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from modelreg.api.models import EffectiveMonitoring
from modelreg.core import metricpoll as mp
from modelreg.core import metricsource as ms

NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
T = 1_763_640_000  # a multiple of 60
VERSION = mp.Version(namespace="team-a", name="fraud-3-1-0", model_name="fraud", version="3.1.0", uid="u-1")
WINDOW = ms.WindowPlan(t=T, window=300, write=True, next_at=float(T + 60))


def monitoring(**kw: Any) -> EffectiveMonitoring:
    doc: dict[str, Any] = {
        "sourceRef": {"name": "prom"},
        "interval": "60s",
        "window": "5m",
        "evaluationDelay": "0s",
        "stages": ["Sandbox", "Production"],
    }
    doc.update(kw)
    return EffectiveMonitoring.model_validate(doc)


def source(**queries: Any) -> dict[str, Any]:
    q: dict[str, Any] = {
        "sampleCount": 'sum(increase(req{model="{{modelName}}"}[{{window}}]))',
        "errorCount": 'sum(increase(err{version="{{version}}"}[{{window}}]))',
    }
    q.update(queries)
    return {"metadata": {"name": "prom"}, "spec": {"prometheus": {"url": "http://prom:9090"}, "queries": q}}


def vector(*series: tuple[dict[str, str], str]) -> dict[str, Any]:
    return {"resultType": "vector", "result": [{"metric": m, "value": [T, v]} for m, v in series]}


def one(value: str) -> dict[str, Any]:
    return vector(({}, value))


def answer_values(plan: mp.PollPlan, data: dict[str, dict[str, Any]]) -> dict[str, mp.Answer]:
    """What the poller hands back for the value batch: each answer parsed as one value."""
    step = mp.next_step(plan, {})
    assert isinstance(step, mp.QueryBatch) and step.concurrent
    out: dict[str, mp.Answer] = {}
    for q in step.queries:
        parsed = ms.parse_result(data[q.field])
        assert not isinstance(parsed, ms.Failure)
        out[q.field] = parsed
    return out


def decide(plan: mp.PollPlan, answers: dict[str, mp.Answer]) -> mp.PollDecision:
    step = mp.next_step(plan, answers)
    assert isinstance(step, mp.PollDecision), step
    return step


SAMPLE_Q = 'sum(increase(req{model="fraud"}[300s]))'
ERROR_Q = 'sum(increase(err{version="3.1.0"}[300s]))'


def expected_snapshot(spec: dict[str, Any]) -> dict[str, Any]:
    return {
        "apiVersion": "modelreg.io/v1alpha1",
        "kind": "PerformanceSnapshot",
        "metadata": {
            "name": f"fraud-3-1-0-{T}",
            "namespace": "team-a",
            "labels": {"modelreg.io/metric-source": "prom", "modelreg.io/registered-model": "fraud-3-1-0"},
            "ownerReferences": [
                {"apiVersion": "modelreg.io/v1alpha1", "kind": "RegisteredModel", "name": "fraud-3-1-0", "uid": "u-1"}
            ],
        },
        "spec": {
            "modelRef": {"name": "fraud-3-1-0"},
            "window": {"start": "2025-11-20T11:55:00Z", "end": "2025-11-20T12:00:00Z"},
            **spec,
        },
    }


# --------------------------------------------------------------------------- what to query


def test_the_plan_renders_each_value_query_at_the_evaluation_time() -> None:
    plan = mp.plan_poll(VERSION, monitoring(), source(), WINDOW, {})
    assert plan.failure is None
    assert plan.values == (mp.Query("sampleCount", SAMPLE_Q, T), mp.Query("errorCount", ERROR_Q, T))
    assert mp.next_step(plan, {}) == mp.QueryBatch(plan.values, concurrent=True)


def test_a_missing_source_fails_the_window_before_any_query() -> None:
    plan = mp.plan_poll(VERSION, monitoring(), None, WINDOW, {})
    assert mp.next_step(plan, {}) == mp.PollDecision(
        failure=ms.Failure("SourceNotFound", "MetricSource prom not found in team-a")
    )


def test_an_unknown_placeholder_fails_the_window_as_source_not_ready() -> None:
    plan = mp.plan_poll(VERSION, monitoring(), source(errorCount="sum(e{x='{{nope}}'})"), WINDOW, {})
    assert plan.values == ()
    assert decide(plan, {}).failure == ms.Failure(
        "SourceNotReady", "MetricSource prom: InvalidTemplate: queries.errorCount: unknown placeholder {{nope}}"
    )


def test_a_version_outside_the_monitored_stages_is_not_polled() -> None:
    assert mp.window_for(monitoring(stages=["Production"]), "Sandbox", None, float(T)) is None
    assert mp.window_for(None, "Production", None, float(T)) is None
    timing, plan = mp.window_for(monitoring(), "Production", None, T + 1.0) or (None, None)
    assert timing == mp.Timing(interval=60, window=300, delay=0)
    assert plan == ms.WindowPlan(t=T, window=300, write=True, next_at=float(T + 60))


# --------------------------------------------------------------------------- what to write


def test_plan_for_an_empty_result() -> None:
    """No series: sampleCount 0 and listed in noData, no rate; never a guess."""
    plan = mp.plan_poll(VERSION, monitoring(), source(), WINDOW, {})
    answers = answer_values(plan, {"sampleCount": vector(), "errorCount": vector()})
    assert answers == {"sampleCount": ms.NO_DATA, "errorCount": ms.NO_DATA}
    assert decide(plan, answers) == mp.PollDecision(
        snapshot=expected_snapshot(
            {
                "sampleCount": 0,
                "source": {
                    "metricSource": "prom",
                    "queries": {"sampleCount": SAMPLE_Q, "errorCount": ERROR_Q},
                    "noData": ["sampleCount", "errorCount"],
                },
            }
        )
    )


def test_plan_for_nan() -> None:
    """NaN errorCount: listed in invalid, errorRate left out; sampleCount rounded down."""
    plan = mp.plan_poll(VERSION, monitoring(), source(), WINDOW, {})
    answers = answer_values(plan, {"sampleCount": one("120.7"), "errorCount": one("NaN")})
    assert decide(plan, answers) == mp.PollDecision(
        snapshot=expected_snapshot(
            {
                "sampleCount": 120,
                "source": {
                    "metricSource": "prom",
                    "queries": {"sampleCount": SAMPLE_Q, "errorCount": ERROR_Q},
                    "invalid": ["errorCount"],
                },
            }
        )
    )


def test_plan_for_two_series() -> None:
    """Two series where one is expected: no snapshot, AmbiguousQuery."""
    plan = mp.plan_poll(VERSION, monitoring(), source(), WINDOW, {})
    answers = answer_values(
        plan, {"sampleCount": one("100"), "errorCount": vector(({"pod": "a"}, "1"), ({"pod": "b"}, "2"))}
    )
    assert decide(plan, answers) == mp.PollDecision(
        failure=ms.Failure("AmbiguousQuery", "queries.errorCount returned 2 series; it must return one")
    )


def test_plan_for_a_counter_reset_in_a_feature_histogram() -> None:
    """Cumulative counts that decrease (a counter reset inside the window) make the feature invalid."""
    hist_q = 'sum by (le) (increase(f_bucket{feature="{{feature}}",version="{{version}}"}[{{window}}]))'
    mon = monitoring(
        features=["amount"],
        driftReference={"version": "ref", "start": "2025-11-01T00:00:00Z", "end": "2025-11-02T00:00:00Z"},
    )
    plan = mp.plan_poll(VERSION, mon, source(featureHistogram=hist_q), WINDOW, {})
    answers = answer_values(plan, {"sampleCount": one("100"), "errorCount": one("1")})

    ref_end = int(datetime(2025, 11, 2, tzinfo=UTC).timestamp())
    current_q = 'sum by (le) (increase(f_bucket{feature="amount",version="3.1.0"}[300s]))'
    ref_q = 'sum by (le) (increase(f_bucket{feature="amount",version="ref"}[86400s]))'
    step = mp.next_step(plan, answers)
    assert step == mp.QueryBatch(
        (
            mp.Query("feature:amount", current_q, T, buckets=True),
            mp.Query(
                "reference:amount",
                ref_q,
                ref_end,
                buckets=True,
                cache_key=("team-a", "http://prom:9090", ref_q, ref_end),
            ),
        ),
        concurrent=False,
    )
    reset = ms.parse_buckets(vector(({"le": "1"}, "50"), ({"le": "+Inf"}, "20")))
    reference = ms.parse_buckets(vector(({"le": "1"}, "10"), ({"le": "+Inf"}, "30")))
    decision = decide(plan, {**answers, "feature:amount": reset, "reference:amount": reference})
    assert decision.snapshot is not None
    assert decision.snapshot["spec"]["metrics"] == {"errorRate": 0.01}
    assert decision.snapshot["spec"]["source"] == {
        "metricSource": "prom",
        "queries": {
            "sampleCount": SAMPLE_Q,
            "errorCount": ERROR_Q,
            "feature:amount": current_q,
            "reference:amount": ref_q,
        },
        "invalid": ["feature:amount"],
    }
    assert "drift" not in decision.snapshot["spec"]


def test_a_cached_reference_is_not_asked_again() -> None:
    hist_q = 'sum by (le) (f_bucket{feature="{{feature}}",version="{{version}}"})'
    mon = monitoring(
        features=["amount"],
        driftReference={"start": "2025-11-01T00:00:00Z", "end": "2025-11-02T00:00:00Z"},
    )
    ref_end = int(datetime(2025, 11, 2, tzinfo=UTC).timestamp())
    ref_q = 'sum by (le) (f_bucket{feature="amount",version="3.1.0"})'
    cached = ms.Buckets((1.0, float("inf")), (10.0, 30.0))
    plan = mp.plan_poll(
        VERSION, mon, source(featureHistogram=hist_q), WINDOW, {("team-a", "http://prom:9090", ref_q, ref_end): cached}
    )
    answers = answer_values(plan, {"sampleCount": one("100"), "errorCount": one("0")})
    step = mp.next_step(plan, answers)
    assert isinstance(step, mp.QueryBatch) and [q.field for q in step.queries] == ["feature:amount"]
    decision = decide(plan, {**answers, "feature:amount": ms.Buckets((1.0, float("inf")), (5.0, 25.0))})
    assert decision.snapshot is not None
    assert decision.snapshot["spec"]["drift"] == {
        "features": [{"name": "amount", "reference": [10.0, 20.0], "current": [5.0, 20.0]}]
    }
    assert decision.snapshot["spec"]["source"]["queries"]["reference:amount"] == ref_q


def test_plan_for_an_unreachable_server() -> None:
    """An unanswered query ends the window with its failure; MetricsAvailable goes False with a Warning."""
    plan = mp.plan_poll(VERSION, monitoring(), source(), WINDOW, {})
    unreachable = ms.Failure("Unreachable", "Connection refused")
    decision = decide(plan, {"sampleCount": unreachable, "errorCount": unreachable})
    assert decision == mp.PollDecision(failure=unreachable)

    body = {"metadata": {"name": "fraud-3-1-0", "generation": 4}, "status": {"conditions": []}}
    write = mp.condition_write("team-a", "fraud-3-1-0", body, decision.failure, NOW)
    assert write is not None
    assert write.patch == {
        "apiVersion": "modelreg.io/v1alpha1",
        "kind": "RegisteredModel",
        "metadata": {"name": "fraud-3-1-0", "namespace": "team-a"},
        "status": {
            "conditions": [
                {
                    "type": "MetricsAvailable",
                    "status": "False",
                    "reason": "Unreachable",
                    "message": "Connection refused",
                    "lastTransitionTime": "2026-11-20T12:00:00Z",
                    "observedGeneration": 4,
                }
            ]
        },
    }
    assert (write.change.event_type, write.change.event_reason) == ("Warning", "Unreachable")
    # Written once: the same failure again changes nothing.
    again = {**body, "status": {"conditions": write.patch["status"]["conditions"]}}
    assert mp.condition_write("team-a", "fraud-3-1-0", again, unreachable, NOW) is None


def test_the_condition_of_an_unpolled_version_is_removed_by_its_index() -> None:
    body = {"status": {"conditions": [{"type": "Ready"}, {"type": "MetricsAvailable"}]}}
    assert mp.drop_condition(body) == [
        {"op": "test", "path": "/status/conditions/1/type", "value": "MetricsAvailable"},
        {"op": "remove", "path": "/status/conditions/1"},
    ]
    assert mp.drop_condition({"status": {"conditions": [{"type": "Ready"}]}}) is None


def test_the_probe_status() -> None:
    body = {"metadata": {"generation": 2}, "spec": {}}
    assert isinstance(mp.probe_spec(body), ms.Failure)
    assert mp.probe_answer(ms.Sample(1.0)) is None
    failure = mp.probe_answer(ms.Sample(2.0))
    status = mp.probe_status(body, failure, NOW)
    assert status["observedGeneration"] == 2
    assert status["lastProbe"] == {
        "at": "2026-11-20T12:00:00Z",
        "ok": False,
        "message": "QueryError: vector(1) did not answer 1",
    }
    assert [(c["type"], c["status"], c["reason"]) for c in status["conditions"]] == [("Ready", "False", "QueryError")]
