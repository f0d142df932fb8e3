"""core.remediation: the healer's and the manual path's Remediation, decided without I/O."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from modelreg.api.models import IncidentStatus, RegisteredModelStatus
from modelreg.core.lifecycle import RollbackOutcome
from modelreg.core.remediation import from_rollback, healer_remediation, manual_remediation, rollback_events, served

NOW = datetime(2026, 11, 30, 2, 0, tzinfo=UTC)
VERSIONS = {"m-v1": "1.0.0", "m-v2": "2.0.0"}


def statuses(v2_stage: str = "Production", with_archived: bool = True) -> dict[str, RegisteredModelStatus]:
    v1 = RegisteredModelStatus(stage="Archived", archived_at=NOW - timedelta(hours=1)) if with_archived else None
    v2 = RegisteredModelStatus(stage=v2_stage)
    return {"m-v2": v2, **({"m-v1": v1} if v1 is not None else {})}


def test_healer_rolls_back_a_production_version_and_restores_the_archived_one() -> None:
    st = statuses()
    r, outcome = healer_remediation("inc-1", "m-v2", st, VERSIONS, NOW, NOW - timedelta(minutes=1))
    assert outcome is not None and outcome.restored == "m-v1"
    assert st["m-v2"].stage == "RolledBack" and st["m-v1"].stage == "Production"
    assert (r.phase, r.reason, r.restored, r.version) == ("Remediated", "", "m-v1", "m-v2")
    assert [(a.action, a.result, a.playbook) for a in r.actions] == [("RolledBack", "Succeeded", "model_rollback")]
    assert r.actions[0].message == "2.0.0 rolled back to 1.0.0"
    assert r.opened_at == NOW - timedelta(minutes=1)


def test_healer_without_restore_target_fails_the_incident() -> None:
    st = statuses(with_archived=False)
    r, outcome = healer_remediation("inc-1", "m-v2", st, VERSIONS, NOW)
    assert outcome is not None and outcome.reason == "NoRestoreTarget"
    assert st["m-v2"].stage == "Production"
    assert (r.phase, r.reason, r.restored) == ("Failed", "NoRestoreTarget", None)
    assert [(a.action, a.result) for a in r.actions] == [("RollBack", "Failed")]


def test_healer_after_a_dead_holder_only_closes() -> None:
    st = statuses(v2_stage="RolledBack")
    st["m-v2"].rolled_back_to = "1.0.0"
    st["m-v1"].stage = "Production"
    r, outcome = healer_remediation("inc-1", "m-v2", st, VERSIONS, NOW)
    assert outcome is None
    assert (r.phase, r.restored) == ("Remediated", "m-v1")
    assert [(a.action, a.result, a.message) for a in r.actions] == [
        ("RolledBack", "Succeeded", "already rolled back to 1.0.0")
    ]


def test_healer_skips_a_version_not_in_production() -> None:
    st = statuses(v2_stage="Sandbox")
    r, outcome = healer_remediation("inc-1", "m-v2", st, VERSIONS, NOW)
    assert outcome is None and st["m-v2"].stage == "Sandbox"
    assert (r.phase, r.reason) == ("Failed", "NotInProduction")
    assert [(a.action, a.result) for a in r.actions] == [("RollBack", "Skipped")]


def test_manual_rollback_closes_under_the_incidents_playbook() -> None:
    outcome = RollbackOutcome("m-v2", "m-v1", "1.0.0", "RolledBack", "2.0.0 rolled back to 1.0.0")
    r = manual_remediation("inc-1", IncidentStatus(), "retrain", outcome, NOW)
    assert r is not None and (r.phase, r.reason, r.restored) == ("Remediated", "", "m-v1")
    assert [(a.playbook, a.action, a.result, a.message) for a in r.actions] == [
        ("retrain", "RolledBack", "Succeeded", "manual rollback: 2.0.0 rolled back to 1.0.0")
    ]
    failed = RollbackOutcome("m-v2", None, None, "NoRestoreTarget", "nothing to restore")
    r = manual_remediation("inc-1", IncidentStatus(), "model_rollback", failed, NOW)
    assert r is not None and (r.phase, r.reason) == ("Failed", "NoRestoreTarget")


def test_manual_rollback_leaves_an_incident_a_healer_holds() -> None:
    outcome = RollbackOutcome("m-v2", "m-v1", "1.0.0", "RolledBack", "rolled back")
    held = IncidentStatus(claimed_by="other", claim_expires_at=NOW + timedelta(seconds=5))
    assert manual_remediation("inc-1", held, "model_rollback", outcome, NOW) is None
    expired = IncidentStatus(claimed_by="other", claim_expires_at=NOW - timedelta(seconds=5))
    assert manual_remediation("inc-1", expired, "model_rollback", outcome, NOW) is not None


def test_both_paths_share_one_mapping() -> None:
    outcome = RollbackOutcome("m-v2", "m-v1", "1.0.0", "RolledBack", "msg")
    assert from_rollback("i", outcome, NOW, note="manual rollback: ", playbook="p") == manual_remediation(
        "i", IncidentStatus(), "p", outcome, NOW
    )


class Result:
    def __init__(self, ok: bool, reason: str = "", message: str = "") -> None:
        self.ok, self.reason, self.message = ok, reason, message


def test_serving_follows_a_rollback_or_fails_its_incident() -> None:
    outcome = RollbackOutcome("m-v2", "m-v1", "1.0.0", "RolledBack", "rolled back")
    none, ok, bad = (from_rollback("i", outcome, NOW) for _ in range(3))
    skipped = from_rollback("j", RollbackOutcome("m-v2", None, None, "NoRestoreTarget", "x"), NOW)
    served([none], None, NOW)
    served([ok], Result(True, message="applied"), NOW)
    served([bad, skipped], Result(False, "ApplyFailed", "forbidden"), NOW)
    assert [(a.action, a.result, a.message) for a in none.actions[1:]] == [
        ("ServingRestored", "Skipped", "no serving workload configured")
    ]
    assert [(a.action, a.result) for a in ok.actions[1:]] == [
        ("ServingRestored", "Succeeded")
    ] and ok.phase == "Remediated"
    assert (bad.phase, bad.reason, bad.actions[-1].result) == ("Failed", "ApplyFailed", "Failed")
    assert len(skipped.actions) == 1  # nothing was restored: serving is not its business


def test_rollback_events_name_the_restored_version() -> None:
    outcome = RollbackOutcome("m-v2", "m-v1", "1.0.0", "RolledBack", "2.0.0 rolled back to 1.0.0")
    events = rollback_events([from_rollback("i", outcome, NOW)])
    assert [(e.object_name, e.reason) for e in events] == [("m-v2", "RolledBack"), ("m-v1", "Restored")]
    failed = from_rollback("i", RollbackOutcome("m-v2", None, None, "NoRestoreTarget", "x"), NOW)
    assert rollback_events([failed]) == []
