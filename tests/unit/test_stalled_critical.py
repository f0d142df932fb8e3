"""A Critical Production version with no rollback coming is Stalled, so kstatus says Failed.

The rules: docs/registeredmodel.md.
"""

from __future__ import annotations

from datetime import timedelta

import pytest

from modelreg.api.models import IncidentRef, PerformanceSnapshotSpec
from modelreg.core.conditions import get_condition
from modelreg.core.evaluation import evaluate
from modelreg.core.lifecycle.snapshots import apply_snapshot
from modelreg.core.lifecycle.stages import VersionView
from modelreg.core.policy import effective_policy
from tests.unit.test_lifecycle import DEFAULTS, cond, promote_to_production, run, spec, view


def critical(views: list[VersionView], name: str, mode: str, now, incident: str | None = "fraud-v-1a2b"):
    """Fold one breaching snapshot into ``name`` (rollback mode ``mode``) and reconcile the model."""
    s = spec(next(v for v in views if v.name == name).spec.version, rollbackPolicy={"mode": mode})
    policy = effective_policy(s, DEFAULTS)
    bad = evaluate(
        PerformanceSnapshotSpec.model_validate(
            {"modelRef": {"name": name}, "sampleCount": 1000, "metrics": {"errorRate": 0.5, "oodRate": 0.0}}
        ),
        policy.rollback_policy,
    )
    out = []
    for v in views:
        if v.name == name:
            v = VersionView(**{**v.__dict__, "spec": s})
            status = apply_snapshot(v, v.status, policy, bad, "bad-1", now, now).status
            if incident:
                status = status.model_copy(update={"incident": IncidentRef(name=incident, severity="high")})
            v = VersionView(**{**v.__dict__, "status": status})
        out.append(v)
    views, _ = run(out, now + timedelta(seconds=1))
    return {v.name: v.status for v in views}


@pytest.mark.parametrize(
    ("mode", "reason"),
    [("IncidentOnly", "CriticalNoAutoRollback"), ("Disabled", "CriticalRollbackDisabled")],
)
def test_critical_without_automatic_rollback_is_stalled_naming_the_incident(mode: str, reason: str) -> None:
    views, now = promote_to_production()
    # An archived sibling exists, so only the mode keeps the rollback from coming.
    views, _ = run([*views, view("v2", spec("2.0.0"), created=now)], now)
    views, _ = run(views, now + timedelta(minutes=10))
    by = critical(views, "v2", mode, now + timedelta(minutes=11))
    st = by["v2"]
    assert st.stage == "Production" and st.health == "Critical"
    assert cond(st, "Stalled") == ("True", reason)
    assert "fraud-v-1a2b" in get_condition(st.conditions, "Stalled").message
    assert cond(st, "Reconciling") == ("False", "Idle")
    assert cond(st, "Ready") == ("False", "Critical")


def test_critical_with_a_restore_target_in_automatic_mode_is_not_stalled() -> None:
    views, now = promote_to_production()
    views, _ = run([*views, view("v2", spec("2.0.0"), created=now)], now)
    views, _ = run(views, now + timedelta(minutes=10))
    by = critical(views, "v2", "Automatic", now + timedelta(minutes=11))
    assert by["v2"].health == "Critical"
    assert cond(by["v2"], "Stalled") == ("False", "NotStalled")  # the rollback is coming
    assert cond(by["v2"], "Ready") == ("False", "Critical")


def test_critical_with_no_restore_target_is_stalled_no_restore_target() -> None:
    views, now = promote_to_production()  # the only version of the model
    by = critical(views, "v1", "Automatic", now + timedelta(minutes=1), incident=None)
    st = by["v1"]
    assert cond(st, "Stalled") == ("True", "NoRestoreTarget")
    assert "no Incident is open" in get_condition(st.conditions, "Stalled").message


def test_stall_clears_when_the_version_recovers() -> None:
    views, now = promote_to_production()
    by = critical(views, "v1", "IncidentOnly", now + timedelta(minutes=1))
    assert cond(by["v1"], "Stalled")[0] == "True"
    s = spec(rollbackPolicy={"mode": "IncidentOnly"})
    policy = effective_policy(s, DEFAULTS)
    good = evaluate(
        PerformanceSnapshotSpec.model_validate(
            {"modelRef": {"name": "v1"}, "sampleCount": 1000, "metrics": {"errorRate": 0.0, "oodRate": 0.0}}
        ),
        policy.rollback_policy,
    )
    v = view("v1", s, by["v1"])
    later = now + timedelta(minutes=2)
    status = apply_snapshot(v, v.status, policy, good, "good-1", later, later).status
    views, _ = run([view("v1", s, status)], later)
    assert views[0].status.health == "Healthy"
    assert cond(views[0].status, "Stalled") == ("False", "NotStalled")
    assert cond(views[0].status, "Ready") == ("True", "AtTarget")
