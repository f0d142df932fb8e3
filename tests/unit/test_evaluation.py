"""Evaluation of snapshots against a rollback policy (docs/evaluation.md)."""

from __future__ import annotations

import math
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from modelreg.api.models import (
    Breach,
    EffectiveCriteria,
    EffectiveRollbackPolicy,
    PerformanceSnapshotSpec,
    PerformanceSnapshotStatus,
    RegisteredModelSpec,
)
from modelreg.core.evaluation import Evaluation, evaluate, next_consecutive_breaches, rollback_due
from modelreg.core.policy import Defaults, effective_policy
from modelreg.core.severity import severity, summary

PROPS = settings(max_examples=200, deadline=None)
#: for narrower properties
QUICK = settings(max_examples=100, deadline=None)


def policy(**rb: Any) -> EffectiveRollbackPolicy:
    spec = RegisteredModelSpec.model_validate(
        {
            "modelName": "fraud-detector",
            "version": "3.1.0",
            "artifact": {"uri": "s3://m"},
            "rollbackPolicy": rb,
        }
    )
    return effective_policy(spec, Defaults()).rollback_policy


DEFAULT = policy()


def snapshot(sample_count: int = 12000, metrics: dict[str, Any] | None = None, **extra: Any) -> PerformanceSnapshotSpec:
    doc: dict[str, Any] = {"modelRef": {"name": "fraud-detector-3-1-0"}, "sampleCount": sample_count, **extra}
    if metrics is not None:
        doc["metrics"] = metrics
    return PerformanceSnapshotSpec.model_validate(doc)


def pairs(items: list[Breach]) -> list[tuple[str, float, float]]:
    return [(b.criterion, b.value, b.threshold) for b in items]


SPEC_FEATURE = {"name": "amount", "reference": [120, 340, 90], "current": [80, 300, 170]}


def ref_kl(ref: list[float], cur: list[float]) -> float:
    p = [x / sum(ref) for x in ref]
    q = [x / sum(cur) for x in cur]
    return sum(a * math.log(a / b) for a, b in zip(p, q, strict=True))


# --------------------------------------------------------------------------- the SPEC example


def test_spec_example_precomputed_drift_three_breaches() -> None:
    snap = snapshot(metrics={"errorRate": 0.0668, "oodRate": 0.2167}, drift={"klDivergence": 0.3004})
    ev = evaluate(snap, DEFAULT)
    assert ev.verdict == "Critical" and ev.conclusive
    assert ev.reason == ""
    assert pairs(ev.breaches) == [
        ("errorRate", 0.0668, 0.05),
        ("oodRate", 0.2167, 0.2),
        ("klDivergence", 0.3004, 0.3),
    ]
    assert ev.warnings == [] and ev.missing == []
    assert ev.metrics == {"errorRate": 0.0668, "oodRate": 0.2167, "klDivergence": 0.3004}
    assert ev.drift is not None and ev.drift.method == "precomputed klDivergence"
    assert severity(ev.breaches, ev.warnings, DEFAULT) == "high"
    assert summary("fraud-detector", "3.1.0", ev.breaches, ev.warnings) == (
        "fraud-detector 3.1.0: errorRate 0.0668 > 0.05, oodRate 0.2167 > 0.2, klDivergence 0.3004 > 0.3"
    )


def test_spec_example_with_histogram() -> None:
    # The SPEC's histogram gives KL ≈ 0.0618: the precomputed 0.3004 is ignored when
    # features are given, so only errorRate and oodRate breach (still high severity).
    snap = snapshot(
        metrics={"errorRate": 0.0668, "oodRate": 0.2167, "latencyP99Ms": 84, "custom": {"accuracy": 0.91}},
        drift={"klDivergence": 0.3004, "features": [SPEC_FEATURE]},
    )
    ev = evaluate(snap, DEFAULT)
    kl = ref_kl(SPEC_FEATURE["reference"], SPEC_FEATURE["current"])  # type: ignore[arg-type]
    assert ev.verdict == "Critical"
    assert pairs(ev.breaches) == [("errorRate", 0.0668, 0.05), ("oodRate", 0.2167, 0.2)]
    assert ev.drift is not None and ev.drift.value == pytest.approx(kl, rel=1e-12)
    assert ev.metrics["klDivergence"] == pytest.approx(0.061768, abs=1e-6)
    assert ev.metrics["latencyP99Ms"] == 84 and ev.metrics["accuracy"] == 0.91
    assert severity(ev.breaches, ev.warnings, DEFAULT) == "high"
    assert summary("fraud-detector", "3.1.0", ev.breaches, ev.warnings) == (
        "fraud-detector 3.1.0: errorRate 0.0668 > 0.05, oodRate 0.2167 > 0.2"
    )


# --------------------------------------------------------------------------- max criteria


def test_exactly_at_max_is_not_a_breach_but_warns() -> None:
    snap = snapshot(metrics={"errorRate": 0.01, "oodRate": 0.05}, drift={"klDivergence": 0.3})
    ev = evaluate(snap, DEFAULT)
    assert ev.breaches == []
    assert ev.verdict == "Degraded"
    assert [(w.criterion, w.value) for w in ev.warnings] == [("klDivergence", 0.3)]
    assert ev.warnings[0].threshold == pytest.approx(0.24)


def test_warn_ratio_boundary_and_below() -> None:
    assert evaluate(snapshot(metrics={"errorRate": 0.05, "oodRate": 0.0}), DEFAULT).verdict == "Degraded"
    ev = evaluate(snapshot(metrics={"errorRate": 0.039, "oodRate": 0.159}, drift={"klDivergence": 0.2}), DEFAULT)
    assert ev.verdict == "Healthy" and ev.warnings == [] and ev.breaches == []
    ev = evaluate(snapshot(metrics={"errorRate": 0.01, "oodRate": 0.17}), policy(warnRatio=1.0))
    assert ev.verdict == "Healthy"
    ev = evaluate(snapshot(metrics={"errorRate": 0.01, "oodRate": 0.17}), DEFAULT)
    assert ev.verdict == "Degraded" and pairs(ev.warnings) == [("oodRate", 0.17, pytest.approx(0.16))]


def test_explicit_warn_on_max_criterion_replaces_ratio() -> None:
    pol = policy(criteria={"errorRate": {"max": 0.05, "warn": 0.03}})
    assert pairs(evaluate(snapshot(metrics={"errorRate": 0.03}), pol).warnings) == [("errorRate", 0.03, 0.03)]
    assert evaluate(snapshot(metrics={"errorRate": 0.0299}), pol).verdict == "Healthy"
    pol = policy(criteria={"errorRate": {"max": 0.05, "warn": 0.049}})
    assert evaluate(snapshot(metrics={"errorRate": 0.045}), pol).verdict == "Healthy"


def test_max_zero_does_not_warn_on_zero() -> None:
    pol = policy(criteria={"errorRate": {"max": 0}})
    ev = evaluate(snapshot(metrics={"errorRate": 0.0}), pol)
    assert ev.verdict == "Healthy"
    ev = evaluate(snapshot(metrics={"errorRate": 0.001}), pol)
    assert ev.verdict == "Critical" and pairs(ev.breaches) == [("errorRate", 0.001, 0.0)]


def test_latency_only_when_configured() -> None:
    snap = snapshot(metrics={"errorRate": 0.0, "oodRate": 0.0, "latencyP99Ms": 300})
    assert evaluate(snap, DEFAULT).verdict == "Healthy"
    ev = evaluate(snap, policy(criteria={"latencyP99Ms": {"max": 250}}))
    assert ev.verdict == "Critical" and pairs(ev.breaches) == [("latencyP99Ms", 300, 250)]
    assert severity(ev.breaches, ev.warnings, DEFAULT) == "medium"


@pytest.mark.parametrize(
    ("metric", "value", "threshold"),
    [("psi", 0.26, 0.25), ("jsDivergence", 0.11, 0.1), ("klDivergence", 0.31, 0.3)],
)
def test_drift_metric_defaults(metric: str, value: float, threshold: float) -> None:
    pol = policy(criteria={"drift": {"metric": metric}})
    ev = evaluate(snapshot(metrics={"errorRate": 0.0, "oodRate": 0.0}, drift={metric: value}), pol)
    assert ev.verdict == "Critical"
    assert pairs(ev.breaches) == [(metric, value, threshold)]
    assert ev.metrics[metric] == value
    assert ev.drift is not None and ev.drift.metric == metric and ev.drift.value == value


def test_drift_precomputed_for_another_measure_is_missing() -> None:
    ev = evaluate(snapshot(metrics={"errorRate": 0.0, "oodRate": 0.0}, drift={"psi": 0.9}), DEFAULT)
    assert ev.verdict == "Healthy"
    assert ev.missing == ["klDivergence"]
    assert ev.drift is None


# --------------------------------------------------------------------------- min criteria


ACCURACY = policy(criteria={"custom": [{"metric": "accuracy", "min": 0.85, "warn": 0.88}]})


@pytest.mark.parametrize(
    ("value", "verdict", "breaches", "warnings"),
    [
        (0.91, "Healthy", [], []),
        (0.88, "Healthy", [], []),
        (0.87, "Degraded", [], [("accuracy", 0.87, 0.88)]),
        (0.85, "Degraded", [], [("accuracy", 0.85, 0.88)]),
        (0.84, "Critical", [("accuracy", 0.84, 0.85)], []),
    ],
)
def test_min_criterion_with_warn(value: float, verdict: str, breaches: list[Any], warnings: list[Any]) -> None:
    ev = evaluate(snapshot(metrics={"errorRate": 0.0, "oodRate": 0.0, "custom": {"accuracy": value}}), ACCURACY)
    assert ev.verdict == verdict
    assert pairs(ev.breaches) == breaches
    assert pairs(ev.warnings) == warnings


def test_min_criterion_without_warn_never_warns() -> None:
    pol = policy(criteria={"custom": [{"metric": "accuracy", "min": 0.85}]})
    ev = evaluate(snapshot(metrics={"errorRate": 0.0, "oodRate": 0.0, "custom": {"accuracy": 0.8501}}), pol)
    assert ev.verdict == "Healthy"
    ev = evaluate(snapshot(metrics={"errorRate": 0.0, "oodRate": 0.0, "custom": {"accuracy": 0.5}}), pol)
    assert ev.verdict == "Critical"
    assert summary("fraud-detector", "3.1.0", ev.breaches, ev.warnings) == "fraud-detector 3.1.0: accuracy 0.5 < 0.85"


def test_custom_max_criterion_uses_warn_ratio() -> None:
    pol = policy(criteria={"custom": [{"metric": "cost", "max": 10}]})
    ev = evaluate(snapshot(metrics={"errorRate": 0.0, "oodRate": 0.0, "custom": {"cost": 8}}), pol)
    assert ev.verdict == "Degraded" and pairs(ev.warnings) == [("cost", 8, 8)]


def test_all_breaches_in_criterion_order() -> None:
    pol = policy(
        criteria={
            "latencyP99Ms": {"max": 100},
            "custom": [{"metric": "recall", "min": 0.9}, {"metric": "accuracy", "min": 0.9}],
        }
    )
    snap = snapshot(
        metrics={
            "custom": {"accuracy": 0.5, "recall": 0.5},
            "latencyP99Ms": 200,
            "oodRate": 0.5,
            "errorRate": 0.5,
        },
        drift={"klDivergence": 1.0},
    )
    ev = evaluate(snap, pol)
    assert [b.criterion for b in ev.breaches] == [
        "errorRate",
        "oodRate",
        "klDivergence",
        "latencyP99Ms",
        "recall",
        "accuracy",
    ]


# --------------------------------------------------------------------------- inconclusive and missing


def test_too_few_samples_is_inconclusive_but_shows_metrics() -> None:
    snap = snapshot(sample_count=50, metrics={"errorRate": 0.5, "oodRate": 0.5}, drift={"features": [SPEC_FEATURE]})
    ev = evaluate(snap, DEFAULT)
    assert ev.verdict == "Inconclusive" and not ev.conclusive
    assert ev.reason == "sampleCount 50 < minSamples 100"
    assert ev.breaches == [] and ev.warnings == []
    assert ev.metrics["errorRate"] == 0.5 and "klDivergence" in ev.metrics
    assert ev.drift is not None and ev.drift.value is not None


def test_sample_count_equal_to_min_samples_is_evaluated() -> None:
    assert evaluate(snapshot(sample_count=100, metrics={"errorRate": 0.5}), DEFAULT).verdict == "Critical"
    assert evaluate(snapshot(sample_count=0, metrics={"errorRate": 0.5}), policy(minSamples=0)).verdict == "Critical"


def test_missing_metrics_are_listed_and_do_not_breach() -> None:
    pol = policy(criteria={"latencyP99Ms": {"max": 100}, "custom": [{"metric": "accuracy", "min": 0.9}]})
    ev = evaluate(snapshot(metrics={"errorRate": 0.01}), pol)
    assert ev.verdict == "Healthy"
    assert ev.missing == ["oodRate", "klDivergence", "latencyP99Ms", "accuracy"]
    assert ev.metrics == {"errorRate": 0.01}


def test_no_configured_metric_is_inconclusive() -> None:
    ev = evaluate(snapshot(metrics={"custom": {"unrelated": 1.0}}), DEFAULT)
    assert ev.verdict == "Inconclusive"
    assert ev.reason == "snapshot carries none of the configured metrics (errorRate, oodRate, klDivergence)"
    assert ev.missing == ["errorRate", "oodRate", "klDivergence"]
    assert ev.metrics == {"unrelated": 1.0}
    assert evaluate(snapshot(), DEFAULT).verdict == "Inconclusive"


def test_all_zero_histograms_inconclusive_unless_another_breach() -> None:
    zero = {"features": [{"name": "amount", "reference": [0, 0, 0], "current": [1, 2, 3]}]}
    ev = evaluate(snapshot(metrics={"errorRate": 0.01, "oodRate": 0.01}, drift=zero), DEFAULT)
    assert ev.verdict == "Inconclusive"
    assert "amount" in ev.reason and "all-zero reference histogram" in ev.reason
    assert ev.missing == ["klDivergence"]
    assert ev.breaches == [] and ev.warnings == []
    assert ev.drift is not None and ev.drift.value is None

    ev = evaluate(snapshot(metrics={"errorRate": 0.2, "oodRate": 0.01}, drift=zero), DEFAULT)
    assert ev.verdict == "Critical"
    assert pairs(ev.breaches) == [("errorRate", 0.2, 0.05)]
    assert ev.missing == ["klDivergence"]

    ev = evaluate(snapshot(drift=zero), DEFAULT)
    assert ev.verdict == "Inconclusive"
    assert ev.reason.startswith("snapshot carries none of the configured metrics") and "amount" in ev.reason


def test_partially_measurable_histograms_are_conclusive() -> None:
    drift = {"features": [SPEC_FEATURE, {"name": "empty", "reference": [0, 0], "current": [0, 0]}]}
    ev = evaluate(snapshot(metrics={"errorRate": 0.0, "oodRate": 0.0}, drift=drift), DEFAULT)
    assert ev.verdict == "Healthy"
    assert ev.drift is not None and ev.drift.method is not None and "empty" in ev.drift.method


def test_non_finite_custom_metric_is_missing() -> None:
    pol = policy(criteria={"custom": [{"metric": "accuracy", "min": 0.9}]})
    for bad in (float("nan"), float("inf"), float("-inf")):
        ev = evaluate(snapshot(metrics={"errorRate": 0.0, "oodRate": 0.0, "custom": {"accuracy": bad}}), pol)
        assert ev.verdict == "Healthy"
        assert ev.missing == ["klDivergence", "accuracy"]
        assert "accuracy" not in ev.metrics


def test_custom_metric_named_like_a_builtin_does_not_clobber_it() -> None:
    ev = evaluate(snapshot(metrics={"errorRate": 0.01, "custom": {"errorRate": 0.9}}), DEFAULT)
    assert ev.metrics == {"errorRate": 0.01, "custom.errorRate": 0.9}


def test_no_criteria_is_inconclusive() -> None:
    pol = DEFAULT.model_copy(update={"criteria": EffectiveCriteria()})
    ev = evaluate(snapshot(metrics={"errorRate": 0.9}), pol)
    assert ev.verdict == "Inconclusive" and ev.reason == "no criteria configured"


def test_evaluation_fills_a_snapshot_status() -> None:
    ev = evaluate(snapshot(metrics={"errorRate": 0.0668, "oodRate": 0.01}), DEFAULT)
    status = PerformanceSnapshotStatus(
        verdict=ev.verdict, reason=ev.reason, breaches=ev.breaches, warnings=ev.warnings, missing=ev.missing
    )
    assert status.wire()["breaches"] == [{"criterion": "errorRate", "value": 0.0668, "threshold": 0.05}]


# --------------------------------------------------------------------------- the streak


@pytest.mark.parametrize(
    ("current", "verdict", "stage", "expected"),
    [
        (0, "Critical", "Production", 1),
        (2, "Critical", "Production", 3),
        (2, "Healthy", "Production", 0),
        (2, "Degraded", "Production", 0),
        (2, "Inconclusive", "Production", 2),
        (2, "Orphaned", "Production", 2),
        (2, "Critical", "Sandbox", 2),
        (2, "Healthy", "Sandbox", 2),
        (1, "Critical", "RolledBack", 1),
        (1, "Critical", "Archived", 1),
        (0, "Critical", "Development", 0),
    ],
)
def test_next_consecutive_breaches(current: int, verdict: Any, stage: Any, expected: int) -> None:
    assert next_consecutive_breaches(current, verdict, stage) == expected


def test_rollback_due() -> None:
    assert rollback_due(1, DEFAULT)
    assert not rollback_due(0, DEFAULT)
    three = policy(consecutiveBreaches=3)
    assert [rollback_due(n, three) for n in range(5)] == [False, False, False, True, True]
    assert not rollback_due(5, policy(mode="Disabled"))
    assert rollback_due(1, policy(mode="IncidentOnly"))
    assert not rollback_due(0, DEFAULT.model_copy(update={"consecutive_breaches": 0}))


# --------------------------------------------------------------------------- properties

_any_float = st.floats(allow_nan=True, allow_infinity=True)
_tiny_huge = st.sampled_from([0.0, 5e-324, 1e-300, 1e-9, 1.0, 1e9, 1e300, 1.7976931348623157e308])
# near the default thresholds (0.05, 0.2, 0.3 and their warn levels) as well as anywhere
_near = st.sampled_from([0.0, 0.04, 0.045, 0.05, 0.0500001, 0.1, 0.16, 0.18, 0.2, 0.2167, 0.24, 0.3, 0.3004, 0.6])
_rate = st.one_of(st.floats(min_value=0, max_value=1), st.sampled_from([0.0, 1.0, 5e-324]), _near)
_nonneg = st.one_of(st.floats(min_value=0, allow_infinity=True), _tiny_huge, _near)
_names = st.sampled_from(["accuracy", "recall", "errorRate", "klDivergence", "x.y-z"])
_counts = st.one_of(st.just(0.0), st.integers(0, 1000).map(float), _nonneg)


def _opt(s: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.one_of(st.none(), s)


def _dicts(**fields: st.SearchStrategy[Any]) -> st.SearchStrategy[dict[str, Any]]:
    return st.fixed_dictionaries({k: _opt(v) for k, v in fields.items()}).map(
        lambda d: {k: v for k, v in d.items() if v is not None}
    )


@st.composite
def _feature(draw: st.DrawFn) -> dict[str, Any]:
    n = draw(st.integers(1, 6))
    ref = draw(st.lists(_counts, min_size=n, max_size=n))
    cur = draw(st.one_of(st.just(ref), st.lists(_counts, min_size=n, max_size=n), st.lists(_counts, min_size=1)))
    return {"name": draw(st.sampled_from(["amount", "country", "age"])), "reference": ref, "current": cur[:8]}


SNAPSHOTS = st.builds(
    lambda n, metrics, drift: snapshot(n, metrics, **({"drift": drift} if drift is not None else {})),
    st.one_of(st.integers(0, 10**15), st.sampled_from([0, 99, 100, 101])),
    st.one_of(
        st.none(),
        _dicts(
            errorRate=_rate,
            oodRate=_rate,
            latencyP99Ms=_nonneg,
            custom=st.dictionaries(_names, st.one_of(_any_float, _tiny_huge, _near), max_size=4),
        ),
        st.fixed_dictionaries(
            {"errorRate": _rate, "oodRate": _rate},
            optional={"custom": st.dictionaries(_names, st.one_of(_tiny_huge, _near), max_size=4)},
        ),
    ),
    _opt(_dicts(klDivergence=_nonneg, psi=_nonneg, jsDivergence=_nonneg, features=st.lists(_feature(), max_size=3))),
)
_custom = st.one_of(
    st.fixed_dictionaries({"metric": _names, "min": _any_float}, optional={"warn": _any_float}),
    st.fixed_dictionaries({"metric": _names, "max": _any_float}, optional={"warn": _any_float}),
)
RB_POLICIES = _dicts(
    mode=st.sampled_from(["Automatic", "IncidentOnly", "Disabled"]),
    criteria=_dicts(
        errorRate=st.fixed_dictionaries({"max": _rate}, optional={"warn": _rate}),
        oodRate=st.fixed_dictionaries({"max": _rate}, optional={"warn": _rate}),
        drift=_dicts(metric=st.sampled_from(["klDivergence", "psi", "jsDivergence"]), max=_nonneg, warn=_nonneg),
        latencyP99Ms=st.fixed_dictionaries({"max": _nonneg}, optional={"warn": _any_float}),
        custom=st.lists(_custom, max_size=4),
    ),
    minSamples=st.one_of(st.integers(0, 10**15), st.sampled_from([0, 100])),
    consecutiveBreaches=st.integers(1, 1000),
    warnRatio=st.floats(min_value=0, max_value=1, exclude_min=True),
)
POLICIES = st.one_of(
    RB_POLICIES.map(lambda rb: policy(**rb)),
    # hand-built effective policies, bypassing the merge (no drift criterion, min and max both set...)
    st.builds(
        lambda crit, ratio: DEFAULT.model_copy(update={"criteria": crit, "warn_ratio": ratio, "min_samples": 0}),
        st.builds(
            EffectiveCriteria,
            error_rate=_opt(st.builds(lambda m: {"max": m}, _rate)),
            ood_rate=st.none(),
            drift=st.none(),
            custom=st.lists(
                st.builds(
                    lambda m, lo, hi, w: {"metric": m, "min": lo, "max": hi, "warn": w},
                    _names,
                    _any_float,
                    _any_float,
                    _opt(_any_float),
                ),
                max_size=3,
            ),
        ),
        st.one_of(_any_float, st.just(0.8)),
    ),
)


def _check_consistent(ev: Evaluation, pol: EffectiveRollbackPolicy) -> None:
    assert ev.verdict in ("Healthy", "Degraded", "Critical", "Inconclusive")
    assert ev.conclusive == (ev.verdict != "Inconclusive")
    assert (ev.verdict == "Critical") == bool(ev.breaches)
    if ev.verdict == "Inconclusive":
        assert ev.reason
        assert ev.breaches == [] and ev.warnings == []
    if ev.verdict == "Degraded":
        assert ev.warnings and not ev.breaches
    if ev.verdict == "Healthy":
        assert not ev.warnings and not ev.breaches
    for b in ev.breaches + ev.warnings:
        assert math.isfinite(b.value)
    breached = [b.criterion for b in ev.breaches]
    assert len(breached) == len(set(breached))
    assert not set(breached) & {w.criterion for w in ev.warnings}
    assert len(ev.missing) == len(set(ev.missing))
    assert not set(ev.missing) & set(breached)
    assert all(math.isfinite(v) for v in ev.metrics.values())
    if ev.drift is not None and ev.drift.value is not None:
        assert ev.drift.value >= 0 and math.isfinite(ev.drift.value)
    # the results are valid API objects
    PerformanceSnapshotStatus(
        verdict=ev.verdict,
        reason=ev.reason,
        breaches=ev.breaches,
        warnings=ev.warnings,
        missing=ev.missing,
        drift=ev.drift,
    )
    sev = severity(ev.breaches, ev.warnings, pol)
    if ev.verdict == "Critical":
        assert sev in ("medium", "high")
        if len(ev.breaches) >= 2:
            assert sev == "high"
    elif ev.verdict == "Degraded":
        assert sev == "low"
    elif ev.verdict == "Healthy":
        assert sev is None
    text = summary("fraud-detector", "3.1.0", ev.breaches, ev.warnings)
    assert text.startswith("fraud-detector 3.1.0: ")


@PROPS
@given(SNAPSHOTS, POLICIES)
def test_evaluate_never_raises_and_is_consistent(snap: PerformanceSnapshotSpec, pol: EffectiveRollbackPolicy) -> None:
    ev = evaluate(snap, pol)
    _check_consistent(ev, pol)
    if snap.sample_count < pol.min_samples:
        assert ev.verdict == "Inconclusive" and ev.reason.startswith("sampleCount ")


@QUICK
@given(SNAPSHOTS)
def test_default_policy_properties(snap: PerformanceSnapshotSpec) -> None:
    ev = evaluate(snap, DEFAULT)
    _check_consistent(ev, DEFAULT)
    m = snap.metrics
    if ev.conclusive and m is not None and m.error_rate is not None and m.error_rate > 0.05:
        assert "errorRate" in [b.criterion for b in ev.breaches]


@QUICK
@given(
    st.integers(-5, 10**6),
    st.sampled_from(["Healthy", "Degraded", "Critical", "Inconclusive", "Orphaned"]),
    st.sampled_from(["Development", "Sandbox", "Production", "RolledBack", "Archived"]),
)
def test_streak_properties(current: int, verdict: Any, stage: Any) -> None:
    n = next_consecutive_breaches(current, verdict, stage)
    assert n >= 0
    if stage != "Production" or verdict in ("Inconclusive", "Orphaned"):
        assert n == max(0, current)
