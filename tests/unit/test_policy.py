"""Operator defaults and the effective policy merge (docs/defaults.md)."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from modelreg.api.models import EffectivePolicy, RegisteredModelSpec
from modelreg.core.durations import parse_duration
from modelreg.core.policy import DRIFT_DEFAULT_MAX, Defaults, drift_max_for, effective_policy

PROPS = settings(max_examples=200, deadline=None)


def model_spec(**extra: Any) -> RegisteredModelSpec:
    return RegisteredModelSpec.model_validate(
        {"modelName": "fraud-detector", "version": "3.1.0", "artifact": {"uri": "s3://m/model.bst"}, **extra}
    )


def rollback(**rb: Any) -> RegisteredModelSpec:
    return model_spec(rollbackPolicy=rb)


def criteria(**crit: Any) -> dict[str, Any]:
    return effective_policy(rollback(criteria=crit), Defaults()).rollback_policy.criteria.wire()


# --------------------------------------------------------------------------- defaults


def test_defaults_match_spec_section_5() -> None:
    d = Defaults()
    assert dataclasses.asdict(d) == {
        "target_stage": "Development",
        "min_sandbox_duration": "10m",
        "min_healthy_snapshots": 3,
        "require_approval": True,
        "mode": "Automatic",
        "playbook": "model_rollback",
        "error_rate_max": 0.05,
        "ood_rate_max": 0.20,
        "drift_metric": "klDivergence",
        "drift_max": None,
        "min_samples": 100,
        "consecutive_breaches": 1,
        "warn_ratio": 0.8,
        "stale_after": "15m",
        "incident_on_warning": False,
        "snapshot_history_limit": 20,
        "incident_ttl": "720h",
        "orphan_ttl": "24h",
        "monitoring_interval": "1m",
        "monitoring_window": "",
        "monitoring_evaluation_delay": "30s",
        "monitoring_stages": "Sandbox,Production",
    }
    assert DRIFT_DEFAULT_MAX == {"klDivergence": 0.3, "psi": 0.25, "jsDivergence": 0.1}
    assert d.effective_drift_max == 0.3


def test_effective_policy_of_bare_spec_is_the_defaults() -> None:
    assert effective_policy(model_spec(), Defaults()).wire() == {
        "targetStage": "Development",
        "promotionPolicy": {
            "minSandboxDuration": "10m",
            "minHealthySnapshots": 3,
            "requireApproval": True,
            "requiredEvaluation": [],
        },
        "rollbackPolicy": {
            "mode": "Automatic",
            "playbook": "model_rollback",
            "criteria": {
                "errorRate": {"max": 0.05},
                "oodRate": {"max": 0.2},
                "drift": {"metric": "klDivergence", "max": 0.3},
                "custom": [],
            },
            "minSamples": 100,
            "consecutiveBreaches": 1,
            "warnRatio": 0.8,
            "staleAfter": "15m",
            "incidentOnWarning": False,
        },
        "snapshotHistoryLimit": 20,
    }


# --------------------------------------------------------------------------- merge


@pytest.mark.parametrize(
    ("drift", "expected"),
    [
        ({"metric": "psi"}, {"metric": "psi", "max": 0.25}),
        ({"metric": "jsDivergence"}, {"metric": "jsDivergence", "max": 0.1}),
        ({"metric": "klDivergence"}, {"metric": "klDivergence", "max": 0.3}),
        ({"max": 0.5}, {"metric": "klDivergence", "max": 0.5}),
        ({"max": 0}, {"metric": "klDivergence", "max": 0.0}),
        ({"warn": 0.2}, {"metric": "klDivergence", "max": 0.3, "warn": 0.2}),
        ({"metric": "psi", "max": 0.4, "warn": 0.3}, {"metric": "psi", "max": 0.4, "warn": 0.3}),
        ({}, {"metric": "klDivergence", "max": 0.3}),
    ],
)
def test_drift_criterion_merged_per_field(drift: dict[str, Any], expected: dict[str, Any]) -> None:
    assert criteria(drift=drift)["drift"] == expected


def test_operator_drift_max_goes_with_operator_metric() -> None:
    d = Defaults(drift_max=0.4)
    assert drift_max_for("klDivergence", d) == 0.4
    assert drift_max_for("psi", d) == 0.25
    pol = effective_policy(model_spec(), d).rollback_policy.criteria.drift
    assert pol is not None and (pol.metric, pol.max) == ("klDivergence", 0.4)
    pol = effective_policy(rollback(criteria={"drift": {"metric": "psi"}}), d).rollback_policy.criteria.drift
    assert pol is not None and (pol.metric, pol.max) == ("psi", 0.25)

    d = Defaults(drift_metric="jsDivergence")
    pol = effective_policy(model_spec(), d).rollback_policy.criteria.drift
    assert pol is not None and (pol.metric, pol.max) == ("jsDivergence", 0.1)
    pol = effective_policy(rollback(criteria={"drift": {"max": 0.05}}), d).rollback_policy.criteria.drift
    assert pol is not None and (pol.metric, pol.max) == ("jsDivergence", 0.05)


def test_rate_criteria_replace_defaults_and_others_keep_them() -> None:
    got = criteria(errorRate={"max": 0.1, "warn": 0.07})
    assert got["errorRate"] == {"max": 0.1, "warn": 0.07}
    assert got["oodRate"] == {"max": 0.2}
    assert "latencyP99Ms" not in got
    assert got["custom"] == []


def test_latency_and_custom_only_when_spec_sets_them() -> None:
    got = criteria(
        latencyP99Ms={"max": 250},
        custom=[{"metric": "accuracy", "min": 0.85, "warn": 0.88}, {"metric": "cost", "max": 3}],
    )
    assert got["latencyP99Ms"] == {"max": 250.0}
    assert got["custom"] == [
        {"metric": "accuracy", "min": 0.85, "warn": 0.88},
        {"metric": "cost", "max": 3.0},
    ]
    assert got["errorRate"] == {"max": 0.05}


def test_custom_empty_list_in_spec_stays_empty() -> None:
    assert criteria(custom=[])["custom"] == []


def test_falsy_spec_values_are_values_not_unset() -> None:
    spec = model_spec(
        targetStage="Production",
        promotionPolicy={"minSandboxDuration": "0", "minHealthySnapshots": 0, "requireApproval": False},
        rollbackPolicy={"minSamples": 0, "incidentOnWarning": True, "mode": "Disabled"},
        snapshotHistoryLimit=1,
    )
    pol = effective_policy(spec, Defaults())
    assert pol.target_stage == "Production"
    assert pol.promotion_policy.min_sandbox_duration == "0"
    assert pol.promotion_policy.min_healthy_snapshots == 0
    assert pol.promotion_policy.require_approval is False
    assert pol.rollback_policy.min_samples == 0
    assert pol.rollback_policy.incident_on_warning is True
    assert pol.rollback_policy.mode == "Disabled"
    assert pol.snapshot_history_limit == 1
    # untouched fields keep the defaults
    assert pol.rollback_policy.playbook == "model_rollback"
    assert pol.rollback_policy.warn_ratio == 0.8


def test_required_evaluation_list_replaces_default() -> None:
    spec = model_spec(promotionPolicy={"requiredEvaluation": [{"metric": "auc", "min": 0.9}]})
    pol = effective_policy(spec, Defaults())
    assert [r.wire() for r in pol.promotion_policy.required_evaluation] == [{"metric": "auc", "min": 0.9}]
    assert pol.promotion_policy.min_sandbox_duration == "10m"


def test_operator_defaults_flow_into_the_policy() -> None:
    d = Defaults(
        target_stage="Sandbox",
        min_sandbox_duration="1h",
        mode="IncidentOnly",
        playbook="page_oncall",
        error_rate_max=0.01,
        warn_ratio=0.5,
        stale_after="5m",
        snapshot_history_limit=7,
    )
    pol = effective_policy(rollback(staleAfter="1m"), d)
    assert pol.target_stage == "Sandbox"
    assert pol.promotion_policy.min_sandbox_duration == "1h"
    assert pol.rollback_policy.mode == "IncidentOnly"
    assert pol.rollback_policy.playbook == "page_oncall"
    assert pol.rollback_policy.criteria.error_rate is not None
    assert pol.rollback_policy.criteria.error_rate.max == 0.01
    assert pol.rollback_policy.warn_ratio == 0.5
    assert pol.rollback_policy.stale_after == "1m"
    assert pol.snapshot_history_limit == 7


def test_effective_policy_does_not_alias_the_spec() -> None:
    spec = rollback(criteria={"errorRate": {"max": 0.1}, "custom": [{"metric": "acc", "min": 0.5}]})
    pol = effective_policy(spec, Defaults())
    assert pol.rollback_policy.criteria.error_rate is not None
    pol.rollback_policy.criteria.error_rate.max = 0.9
    pol.rollback_policy.criteria.custom[0].min = 0.1
    assert spec.rollback_policy is not None and spec.rollback_policy.criteria is not None
    assert spec.rollback_policy.criteria.error_rate is not None
    assert spec.rollback_policy.criteria.error_rate.max == 0.1
    assert spec.rollback_policy.criteria.custom is not None
    assert spec.rollback_policy.criteria.custom[0].min == 0.5


# --------------------------------------------------------------------------- Defaults validation and env


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("target_stage", "Archived"),
        ("min_sandbox_duration", "10"),
        ("min_sandbox_duration", "-1m"),
        ("min_healthy_snapshots", -1),
        ("min_healthy_snapshots", True),
        ("mode", "Sometimes"),
        ("playbook", "Model Rollback"),
        ("error_rate_max", 1.5),
        ("ood_rate_max", float("nan")),
        ("drift_metric", "wasserstein"),
        ("drift_max", -0.1),
        ("drift_max", float("inf")),
        ("min_samples", -5),
        ("consecutive_breaches", 0),
        ("warn_ratio", 0.0),
        ("warn_ratio", 1.2),
        ("stale_after", "soon"),
        ("incident_on_warning", "yes"),
        ("snapshot_history_limit", 0),
        ("incident_ttl", ""),
        ("orphan_ttl", "1d"),
    ],
)
def test_defaults_reject_bad_values(field: str, value: object) -> None:
    with pytest.raises(ValueError, match=field):
        Defaults(**{field: value})  # type: ignore[arg-type]


def test_from_env_reads_every_field() -> None:
    env = {
        "MODELREG_DEFAULT_TARGET_STAGE": "Sandbox",
        "MODELREG_DEFAULT_MIN_SANDBOX_DURATION": "1h30m",
        "MODELREG_DEFAULT_MIN_HEALTHY_SNAPSHOTS": "5",
        "MODELREG_DEFAULT_REQUIRE_APPROVAL": "false",
        "MODELREG_DEFAULT_MODE": "IncidentOnly",
        "MODELREG_DEFAULT_PLAYBOOK": "other_healer",
        "MODELREG_DEFAULT_ERROR_RATE_MAX": "0.1",
        "MODELREG_DEFAULT_OOD_RATE_MAX": "0.3",
        "MODELREG_DEFAULT_DRIFT_METRIC": "psi",
        "MODELREG_DEFAULT_DRIFT_MAX": "0.5",
        "MODELREG_DEFAULT_MIN_SAMPLES": "10",
        "MODELREG_DEFAULT_CONSECUTIVE_BREACHES": "3",
        "MODELREG_DEFAULT_WARN_RATIO": "0.9",
        "MODELREG_DEFAULT_STALE_AFTER": "30m",
        "MODELREG_DEFAULT_INCIDENT_ON_WARNING": "TRUE",
        "MODELREG_DEFAULT_SNAPSHOT_HISTORY_LIMIT": "50",
        "MODELREG_DEFAULT_INCIDENT_TTL": "168h",
        "MODELREG_DEFAULT_ORPHAN_TTL": "1h",
        "UNRELATED": "x",
    }
    assert Defaults.from_env(env) == Defaults(
        target_stage="Sandbox",
        min_sandbox_duration="1h30m",
        min_healthy_snapshots=5,
        require_approval=False,
        mode="IncidentOnly",
        playbook="other_healer",
        error_rate_max=0.1,
        ood_rate_max=0.3,
        drift_metric="psi",
        drift_max=0.5,
        min_samples=10,
        consecutive_breaches=3,
        warn_ratio=0.9,
        stale_after="30m",
        incident_on_warning=True,
        snapshot_history_limit=50,
        incident_ttl="168h",
        orphan_ttl="1h",
    )


def test_from_env_empty_is_defaults_and_base_is_kept() -> None:
    assert Defaults.from_env({}) == Defaults()
    base = Defaults(min_samples=7)
    assert Defaults.from_env({"MODELREG_DEFAULT_WARN_RATIO": "0.5"}, base) == Defaults(min_samples=7, warn_ratio=0.5)
    assert Defaults.from_env({"MODELREG_DEFAULT_DRIFT_MAX": ""}, Defaults(drift_max=0.4)).drift_max is None
    assert Defaults.env_var("stale_after") == "MODELREG_DEFAULT_STALE_AFTER"


@pytest.mark.parametrize(
    ("var", "value"),
    [
        ("MODELREG_DEFAULT_MIN_SAMPLES", "many"),
        ("MODELREG_DEFAULT_MIN_SAMPLES", "-1"),
        ("MODELREG_DEFAULT_REQUIRE_APPROVAL", "perhaps"),
        ("MODELREG_DEFAULT_WARN_RATIO", "0"),
        ("MODELREG_DEFAULT_ERROR_RATE_MAX", "abc"),
        ("MODELREG_DEFAULT_DRIFT_MAX", "nan"),
        ("MODELREG_DEFAULT_STALE_AFTER", "15"),
        ("MODELREG_DEFAULT_MODE", "automatic"),
        ("MODELREG_DEFAULT_CONSECUTIVE_BREACHES", "1.5"),
    ],
)
def test_from_env_rejects_bad_values_naming_the_variable(var: str, value: str) -> None:
    with pytest.raises(ValueError, match=var):
        Defaults.from_env({var: value})


# --------------------------------------------------------------------------- properties

_floats = st.floats(allow_nan=True, allow_infinity=True)
_nonneg = st.one_of(st.floats(min_value=0, allow_infinity=True), st.sampled_from([0.0, 5e-324, 1e308]))
_rate = st.floats(min_value=0, max_value=1)
_durations = st.sampled_from(["0", "10m", "1h30m", "1.5h", "300ms", "7ns", "5µs", "999999h"])
_metric_names = st.sampled_from(["accuracy", "f1", "errorRate", "x.y-z", "A_b"])


def _opt(strategy: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.one_of(st.none(), strategy)


def _drop_none(d: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in d.items() if v is not None}


def _dicts(**fields: st.SearchStrategy[Any]) -> st.SearchStrategy[dict[str, Any]]:
    return st.fixed_dictionaries({k: _opt(v) for k, v in fields.items()}).map(_drop_none)


_custom = st.one_of(
    st.fixed_dictionaries({"metric": _metric_names, "min": _floats}, optional={"warn": _floats}),
    st.fixed_dictionaries({"metric": _metric_names, "max": _floats}, optional={"warn": _floats}),
)
CRITERIA = _dicts(
    errorRate=st.fixed_dictionaries({"max": _rate}, optional={"warn": _rate}),
    oodRate=st.fixed_dictionaries({"max": _rate}, optional={"warn": _rate}),
    drift=_dicts(metric=st.sampled_from(["klDivergence", "psi", "jsDivergence"]), max=_nonneg, warn=_nonneg),
    latencyP99Ms=st.fixed_dictionaries({"max": _nonneg}, optional={"warn": _floats}),
    custom=st.lists(_custom, max_size=4),
)
ROLLBACK_POLICIES = _dicts(
    mode=st.sampled_from(["Automatic", "IncidentOnly", "Disabled"]),
    playbook=st.sampled_from(["model_rollback", "x", "a.b-c_d"]),
    criteria=CRITERIA,
    minSamples=st.integers(0, 10**12),
    consecutiveBreaches=st.integers(1, 1000),
    warnRatio=st.floats(min_value=0, max_value=1, exclude_min=True),
    staleAfter=_durations,
    incidentOnWarning=st.booleans(),
)
PROMOTION_POLICIES = _dicts(
    minSandboxDuration=_durations,
    minHealthySnapshots=st.integers(0, 1_000_000),
    requireApproval=st.booleans(),
    requiredEvaluation=st.lists(
        st.fixed_dictionaries({"metric": _metric_names}, optional={"min": _floats, "max": _floats}),
        max_size=3,
    ),
)
SPECS = _dicts(
    targetStage=st.sampled_from(["Development", "Sandbox", "Production"]),
    promotionPolicy=PROMOTION_POLICIES,
    rollbackPolicy=ROLLBACK_POLICIES,
    snapshotHistoryLimit=st.integers(1, 10_000),
).map(lambda extra: model_spec(**extra))
DEFAULTS = st.builds(
    Defaults,
    drift_metric=st.sampled_from(["klDivergence", "psi", "jsDivergence"]),
    drift_max=_opt(st.floats(min_value=0, max_value=1e300)),
    warn_ratio=st.floats(min_value=0.01, max_value=1),
    error_rate_max=_rate,
)


@PROPS
@given(SPECS, DEFAULTS)
def test_effective_policy_never_raises_and_is_complete(spec: RegisteredModelSpec, defaults: Defaults) -> None:
    pol = effective_policy(spec, defaults)
    # A valid EffectivePolicy that survives the wire.
    again = EffectivePolicy.model_validate(pol.model_dump(by_alias=True))
    assert again.wire() == pol.wire()
    rb = pol.rollback_policy
    crit = rb.criteria
    assert crit.error_rate is not None and crit.ood_rate is not None
    assert crit.drift is not None and crit.drift.metric is not None and crit.drift.max is not None
    spec_rb = spec.rollback_policy
    spec_crit = spec_rb.criteria if spec_rb is not None else None
    spec_drift = spec_crit.drift if spec_crit is not None else None
    if spec_drift is not None and spec_drift.max is not None:
        assert crit.drift.max == spec_drift.max
    elif crit.drift.metric == defaults.drift_metric:
        assert crit.drift.max == defaults.effective_drift_max
    else:
        assert crit.drift.max == DRIFT_DEFAULT_MAX[crit.drift.metric]
    expected_custom = spec_crit.custom if spec_crit is not None and spec_crit.custom is not None else []
    assert crit.custom == expected_custom
    assert crit.latency_p99_ms == (spec_crit.latency_p99_ms if spec_crit is not None else None)
    if spec_rb is not None and spec_rb.min_samples is not None:
        assert rb.min_samples == spec_rb.min_samples
    else:
        assert rb.min_samples == defaults.min_samples
    # Durations in the policy parse (or are rejected as out of range, never a syntax error).
    for text in (rb.stale_after, pol.promotion_policy.min_sandbox_duration):
        try:
            parse_duration(text)
        except ValueError as exc:
            assert "out of range" in str(exc)
