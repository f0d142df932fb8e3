"""README lifecycle rules that had no test of their own (issue 19), pure and clock-free.

* Development → Sandbox waits for ``requiredEvaluation`` (every entry present and in range);
* a rollback restores the most recently archived sibling, skipping any sibling
  rolled back since its last retry (and counting one retried since then again);
* a retry resets the soak clock and the healthy count, not only the approvals.
"""

from __future__ import annotations

from datetime import timedelta

from modelreg.api.models import Gates, RegisteredModelStatus, StageHistoryEntry
from modelreg.core.lifecycle.annotations import RETRY_ANNOTATION
from modelreg.core.lifecycle.rollback import restore_target, rollback
from tests.unit.test_lifecycle import T0, run, spec, view

NO_SOAK = {"minSandboxDuration": "0s", "minHealthySnapshots": 0, "requireApproval": False}


def _required(**extra: object) -> dict:
    return {
        **NO_SOAK,
        "requiredEvaluation": [
            {"metric": "auc", "min": 0.9},
            {"metric": "latencyMs", "max": 50},
        ],
        **extra,
    }


# --------------------------------------------------------------------------- requiredEvaluation


def test_required_evaluation_holds_development_until_every_entry_is_in_range() -> None:
    policy = _required()
    # None reported yet: both pending, stays in Development.
    views, _ = run([view("v1", spec(promotionPolicy=policy, targetStage="Sandbox"))], T0)
    st = views[0].status
    assert st.stage == "Development"
    assert st.gates is not None
    assert st.gates.pending == ["requiredEvaluation:auc", "requiredEvaluation:latencyMs"]
    # One below its min, one in range: only the failing one is pending.
    low = spec(
        promotionPolicy=policy,
        targetStage="Sandbox",
        evaluation=[{"metric": "auc", "value": 0.89}, {"metric": "latencyMs", "value": 50}],
    )
    views, _ = run([view("v1", low, st)], T0 + timedelta(seconds=1))
    st = views[0].status
    assert st.stage == "Development" and st.gates.pending == ["requiredEvaluation:auc"]
    # One above its max: pending again.
    slow = spec(
        promotionPolicy=policy,
        targetStage="Sandbox",
        evaluation=[{"metric": "auc", "value": 0.95}, {"metric": "latencyMs", "value": 50.5}],
    )
    views, _ = run([view("v1", slow, st)], T0 + timedelta(seconds=2))
    st = views[0].status
    assert st.stage == "Development" and st.gates.pending == ["requiredEvaluation:latencyMs"]
    # Both met (bounds inclusive): Sandbox.
    good = spec(
        promotionPolicy=policy,
        targetStage="Sandbox",
        evaluation=[{"metric": "auc", "value": 0.9}, {"metric": "latencyMs", "value": 50}],
    )
    views, _ = run([view("v1", good, st)], T0 + timedelta(seconds=3))
    assert views[0].status.stage == "Sandbox"


def test_required_evaluation_and_digest_are_both_gates() -> None:
    s = spec(
        promotionPolicy=_required(),
        artifact={"uri": "s3://m/1"},
        evaluation=[{"metric": "auc", "value": 0.99}],
    )
    views, _ = run([view("v1", s)], T0)
    assert views[0].status.stage == "Development"
    assert views[0].status.gates.pending == ["artifact.digest", "requiredEvaluation:latencyMs"]


# --------------------------------------------------------------------------- restore target


def _status(stage: str, archived_min: int | None, history: list[tuple[str, str]]) -> RegisteredModelStatus:
    return RegisteredModelStatus(
        stage=stage,
        archived_at=(T0 + timedelta(minutes=archived_min)) if archived_min is not None else None,
        stage_history=[
            StageHistoryEntry(stage=s, at=T0 + timedelta(seconds=i), reason=r, message="")
            for i, (s, r) in enumerate(history)
        ],
    )


PLAIN_ARCHIVED = [("Development", "Registered"), ("Sandbox", "Promoted"), ("Production", "Promoted")] + [
    ("Archived", "Superseded")
]


def test_rollback_restores_the_most_recently_archived_of_several_siblings() -> None:
    statuses = {
        "a": _status("Archived", 5, PLAIN_ARCHIVED),
        "b": _status("Archived", 30, PLAIN_ARCHIVED),  # the most recent
        "c": _status("Archived", 10, PLAIN_ARCHIVED),
        "d": _status("Production", None, PLAIN_ARCHIVED[:3]),
        "e": _status("Sandbox", None, PLAIN_ARCHIVED[:2]),
    }
    assert restore_target(statuses, exclude="d") == "b"
    out = rollback(statuses, {n: f"{i}.0.0" for i, n in enumerate("abcde")}, "d", T0 + timedelta(hours=1), "x")
    assert out.restored == "b" and out.restored_version == "1.0.0"
    assert statuses["b"].stage == "Production" and statuses["d"].stage == "RolledBack"
    assert statuses["a"].stage == statuses["c"].stage == "Archived"


def test_rollback_skips_a_sibling_rolled_back_since_its_last_retry() -> None:
    # "b" was archived most recently, but after its own rollback (never retried): not a target.
    rolled_back_then_archived = [
        *PLAIN_ARCHIVED[:3],
        ("RolledBack", "RolledBack"),
        ("Archived", "Superseded"),
    ]
    statuses = {
        "a": _status("Archived", 5, PLAIN_ARCHIVED),
        "b": _status("Archived", 30, rolled_back_then_archived),
        "d": _status("Production", None, PLAIN_ARCHIVED[:3]),
    }
    assert restore_target(statuses, exclude="d") == "a"
    # A retry after that rollback makes it eligible again.
    retried = [
        *rolled_back_then_archived[:4],
        ("Development", "Retried"),
        ("Sandbox", "Promoted"),
        ("Production", "Promoted"),
        ("Archived", "Superseded"),
    ]
    statuses["b"] = _status("Archived", 30, retried)
    assert restore_target(statuses, exclude="d") == "b"
    # Only rolled-back siblings: none to restore.
    statuses = {"b": _status("Archived", 30, rolled_back_then_archived), "d": statuses["d"]}
    assert restore_target(statuses, exclude="d") is None
    out = rollback(statuses, {"b": "1.0.0", "d": "2.0.0"}, "d", T0, "x")
    assert out.reason == "NoRestoreTarget" and statuses["d"].stage == "Production"


# --------------------------------------------------------------------------- retry resets


def test_retry_resets_the_soak_clock_and_the_healthy_count() -> None:
    policy = {"minSandboxDuration": "10m", "minHealthySnapshots": 2, "requireApproval": False}
    s = spec(promotionPolicy=policy)
    rolled_back = RegisteredModelStatus(
        stage="RolledBack",
        stage_history=[
            StageHistoryEntry(stage=st, at=T0, reason=r, message="")
            for st, r in [
                ("Development", "Registered"),
                ("Sandbox", "Promoted"),
                ("Production", "Promoted"),
                ("RolledBack", "RolledBack"),
            ]
        ],
        # What its first Sandbox stay left behind: a soak long passed and enough healthy snapshots.
        gates=Gates(sandbox_since=T0, healthy_snapshots=5, pending=[]),
        consecutive_breaches=3,
        rolled_back_to="0.9.0",
    )
    retry_at = T0 + timedelta(hours=5)
    v = view("v1", s, rolled_back, annotations={RETRY_ANNOTATION: "t1"})
    views, _ = run([v], retry_at)
    st = views[0].status
    # Development, then Sandbox at once (digest present): a new soak from the retry, zero healthy.
    assert st.stage == "Sandbox"
    assert [h.reason for h in st.stage_history][-2:] == ["Retried", "Promoted"]
    assert st.gates is not None
    assert st.gates.sandbox_since == retry_at
    assert st.gates.healthy_snapshots == 0
    assert st.gates.pending == ["minSandboxDuration", "minHealthySnapshots"]
    assert st.consecutive_breaches == 0 and st.rolled_back_to is None
    # Still held after the old soak would have passed (it restarted at the retry).
    views, plan = run(views, retry_at + timedelta(minutes=9))
    assert views[0].status.stage == "Sandbox"
    assert plan.requeue_at == retry_at + timedelta(minutes=10)


def test_retry_into_development_clears_the_gates_it_left_behind() -> None:
    """Held in Development after the retry (an unmet requiredEvaluation): the old Sandbox stay's
    soak start and healthy count are gone, not carried into the next Sandbox stay."""
    s = spec(promotionPolicy=_required())
    rolled_back = RegisteredModelStatus(
        stage="RolledBack",
        stage_history=[StageHistoryEntry(stage="RolledBack", at=T0, reason="RolledBack", message="")],
        gates=Gates(sandbox_since=T0, healthy_snapshots=5, pending=[]),
    )
    views, _ = run([view("v1", s, rolled_back, annotations={RETRY_ANNOTATION: "t1"})], T0 + timedelta(hours=1))
    st = views[0].status
    assert st.stage == "Development"
    assert st.gates is not None
    assert st.gates.sandbox_since is None and st.gates.healthy_snapshots == 0
