"""core.passplan: the write phase of a pass as data, in the kill-safe order (no cluster)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from modelreg.api.models import IncidentRef, IncidentSpec, RegisteredModelStatus
from modelreg.core.incidents import CountIncident, CreateIncident
from modelreg.core.lifecycle import Event
from modelreg.core.passplan import (
    CloseIncident,
    Opening,
    PatchSnapshotStatus,
    PatchVersionStatus,
    PostEvent,
    TakeClaim,
    WakeUp,
    WriteIncident,
    doomed,
    plan_writes,
    with_incident,
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


def created(name: str, trigger: str) -> CreateIncident:
    spec = IncidentSpec.model_validate(
        {
            "severity": "high",
            "summary": "m 2.0.0: errorRate 0.3 > 0.05",
            "modelRef": {"name": "m-v2", "modelName": "m", "version": "2.0.0"},
            "stage": "Production",
            "trigger": {"snapshot": trigger},
            "playbook": "model_rollback",
            "dedupKey": f"ns/m/2.0.0/{name}",
        }
    )
    return CreateIncident(name=name, labels={}, spec=spec)


def test_a_burst_of_breaches_is_one_incident_write_however_many_it_counts() -> None:
    """A pass that opens an Incident and counts three more snapshots into it writes it once
    (a create, then one status write of its count), not once per snapshot."""
    planned: tuple[WriteIncident, ...] = ()
    planned = with_incident(planned, "m-v2", "uid-2", created("inc-2", "s1"), "s1")
    for snap in ("s2", "s3", "s2", "s4"):  # s2 redelivered: counted once
        planned = with_incident(planned, "m-v2", "uid-2", CountIncident("inc-2"), snap)
    planned = with_incident(planned, "m-v2", "uid-2", CountIncident("inc-2"), "s1")  # its own trigger
    assert len(planned) == 1
    assert planned[0].create is not None and planned[0].snapshots == ("s2", "s3", "s4")


def test_counts_into_an_incident_opened_earlier_are_one_write_of_their_own() -> None:
    planned = with_incident((), "m-v2", "uid-2", CountIncident("inc-old"), "s7")
    planned = with_incident(planned, "m-v3", "uid-3", created("inc-3", "t1"), "t1")
    planned = with_incident(planned, "m-v2", "uid-2", CountIncident("inc-old"), "s8")
    assert [(w.name, w.create is None, w.snapshots) for w in planned] == [
        ("inc-old", True, ("s7", "s8")),
        ("inc-3", False, ()),
    ]


def test_the_opening_writes_incidents_before_the_healer_claims_them() -> None:
    opening = Opening(
        incidents=with_incident((), "m-v2", "uid-2", created("inc-2", "s1"), "s1"),
        claims=(TakeClaim("inc-2", "m-v2"),),
    )
    assert [type(step).__name__ for step in opening.steps()] == ["WriteIncident", "TakeClaim"]
