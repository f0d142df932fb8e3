"""`modelreg fleet` shows the last conclusive snapshot's values and marks an Inconclusive latest one."""

from __future__ import annotations

from modelreg.cli import view
from tests.unit.test_cli_format import NOW, ago, rmodel


def test_an_inconclusive_latest_snapshot_never_supplies_the_values() -> None:
    # As a new user saw it: 10 samples, ERROR 0.9 shown beside health Degraded.
    model = rmodel(
        health="Degraded",
        last={"name": "few", "at": ago(seconds=30), "verdict": "Inconclusive", "metrics": {"errorRate": 0.9}},
        lastConclusive={
            "name": "good",
            "at": ago(minutes=5),
            "verdict": "Degraded",
            "metrics": {"errorRate": 0.045, "oodRate": 0.1, "psi": 0.05},
            "drift": 0.05,
        },
    )
    row = view.fleet_row(model, [], NOW)
    assert row["errorRate"] == 0.045 and row["oodRate"] == 0.1 and row["drift"] == 0.05
    assert row["valuesFrom"] == "good" and row["latestInconclusive"] is True
    cells = view.fleet_table([row]).splitlines()[1].split()
    assert cells[4:7] == ["30s", "(Inconclusive)", "0.045"]


def test_no_conclusive_snapshot_shows_no_values() -> None:
    model = rmodel(last={"name": "few", "verdict": "Inconclusive", "metrics": {"errorRate": 0.9, "psi": 0.4}})
    row = view.fleet_row(model, [], NOW)
    assert row["errorRate"] is None and row["drift"] is None and row["valuesFrom"] is None
    assert row["latestInconclusive"] is True


def test_a_conclusive_latest_snapshot_is_not_marked() -> None:
    last = {"name": "s", "at": ago(seconds=5), "verdict": "Healthy", "metrics": {"errorRate": 0.01}}
    row = view.fleet_row(rmodel(last=last, lastConclusive={**last}), [], NOW)
    assert row["latestInconclusive"] is False and row["errorRate"] == 0.01
    assert view.fleet_table([row]).splitlines()[1].split()[4] == "5s"


def test_status_keeps_the_last_conclusive_values_past_an_inconclusive_snapshot() -> None:
    from datetime import timedelta

    from modelreg.api.models import PerformanceSnapshotSpec
    from modelreg.core.evaluation import evaluate
    from modelreg.core.lifecycle.snapshots import apply_snapshot
    from modelreg.core.policy import effective_policy
    from tests.unit.test_lifecycle import DEFAULTS, promote_to_production

    views, now = promote_to_production()
    v = views[0]
    policy = effective_policy(v.spec, DEFAULTS)

    def ev(samples: int, error: float):
        spec = {"modelRef": {"name": "v1"}, "sampleCount": samples, "metrics": {"errorRate": error, "oodRate": 0.1}}
        return evaluate(PerformanceSnapshotSpec.model_validate(spec), policy.rollback_policy)

    st = apply_snapshot(v, v.status, policy, ev(1000, 0.02), "ok", now, now).status
    later = now + timedelta(seconds=5)
    st = apply_snapshot(v, st, policy, ev(10, 0.9), "few", later, later).status
    assert st.last_snapshot.name == "few" and st.last_snapshot.verdict == "Inconclusive"
    assert st.last_conclusive.name == "ok" and st.last_conclusive.metrics["errorRate"] == 0.02
    row = view.fleet_row({"metadata": {"name": "v1"}, "spec": {}, "status": st.wire()}, [], NOW)
    assert row["errorRate"] == 0.02 and row["latestInconclusive"] is True
