"""core.passplan: the write phase of a pass as data, in the kill-safe order (no cluster)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from modelreg.api.models import IncidentRef, RegisteredModelStatus
from modelreg.core.lifecycle import Event
from modelreg.core.passplan import (
    CloseIncident,
    PatchSnapshotStatus,
    PatchVersionStatus,
    PostEvent,
    WakeUp,
    doomed,
    plan_writes,
)
from modelreg.core.remediation import Remediation

NOW = datetime(2026, 11, 30, 2, 0, tzinfo=UTC)


def rollback_pass() -> dict[str, RegisteredModelStatus]:
    """v2 rolled back (leaving Production), v1 restored (entering it), v0 archived."""
    return {
        "m-v1": RegisteredModelStatus(stage="Production"),
        "m-v2": RegisteredModelStatus(stage="RolledBack", incident=IncidentRef(name="inc-2", severity="high")),
        "m-v0": RegisteredModelStatus(stage="Archived"),
    }


def test_versions_leaving_production_are_written_before_the_one_entering_it() -> None:
    writes = plan_writes(rollback_pass(), [], [], [], {}, None)
    assert [v.name for v in writes.versions] == ["m-v0", "m-v2", "m-v1"]


def test_the_write_order_of_a_rollback_pass() -> None:
    r = Remediation("inc-2", "m-v2", restored="m-v1")
    events = [
        Event("m-v2", "Warning", "RollbackTriggered", "incident inc-2 (high): errorRate"),
        Event("m-v2", "Normal", "RolledBack", "2.0.0 rolled back to 1.0.0"),
    ]
    writes = plan_writes(
        rollback_pass(), [r], [("s1", {"verdict": "Critical"})], events, {"m-v2": "uid-2"}, NOW + timedelta(minutes=5)
    )
    kinds = [type(step).__name__ for step in writes.steps()]
    assert kinds == [
        "PatchVersionStatus",
        "PatchVersionStatus",
        "PatchVersionStatus",
        "CloseIncident",
        "PatchSnapshotStatus",
        "PostEvent",
        "WakeUp",
    ]
    steps = writes.steps()
    assert steps[3] == CloseIncident(r)
    assert steps[4] == PatchSnapshotStatus("s1", {"verdict": "Critical"})
    post = steps[5]
    assert isinstance(post, PostEvent) and post.uid == "uid-2" and post.event.reason == "RolledBack"
    assert "rolled back" in post.event.message  # the trigger folded into its rollback
    assert steps[6] == WakeUp(NOW + timedelta(minutes=5))


def test_a_version_lets_go_of_the_incident_this_pass_closes() -> None:
    writes = plan_writes(rollback_pass(), [Remediation("inc-2", "m-v2")], [], [], {}, None)
    v2 = next(v for v in writes.versions if v.name == "m-v2")
    assert v2 == PatchVersionStatus("m-v2", v2.status) and v2.status.incident is None


def test_a_failed_remediation_keeps_the_incident_while_the_streak_goes_on() -> None:
    statuses = rollback_pass()
    statuses["m-v2"] = statuses["m-v2"].model_copy(update={"consecutive_breaches": 2})
    writes = plan_writes(statuses, [Remediation("inc-2", "m-v2", phase="Failed")], [], [], {}, None)
    v2 = next(v for v in writes.versions if v.name == "m-v2")
    assert v2.status.incident is not None and v2.status.incident.name == "inc-2"


def test_no_wake_up_without_a_time_based_look() -> None:
    assert plan_writes(rollback_pass(), [], [], [], {}, None).wake_up is None


def test_retention_keeps_the_newest_and_what_an_open_incident_cites() -> None:
    names = ["s1", "s2", "s3", "s4", "s5"]
    assert doomed(names, set(), 5) == []
    assert doomed(names, set(), 3) == ["s1", "s2"]
    assert doomed(names, {"s1"}, 3) == ["s2", "s3"]
