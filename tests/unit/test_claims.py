"""The claim protocol's pure part (modelreg.core.claims; docs/{incidents,healing}.md)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from modelreg.api.models import MAX_LIST, IncidentAction, IncidentStatus
from modelreg.core import claims
from modelreg.core.claims import ClaimState

NOW = datetime(2026, 11, 20, 10, 0, tzinfo=UTC)
FOR = timedelta(seconds=30)


def incident(status: dict[str, Any] | None = None, playbook: str = "retrain") -> dict[str, Any]:
    return {
        "metadata": {
            "name": "m-1",
            "namespace": "risk",
            "resourceVersion": "7",
            "creationTimestamp": "2026-11-20T09:00:00Z",
        },
        "spec": {"playbook": playbook, "trigger": {"snapshot": "snap-1"}},
        **({"status": status} if status is not None else {}),
    }


def iso(dt: datetime) -> str:
    return dt.isoformat().replace("+00:00", "Z")


def test_states() -> None:
    st = IncidentStatus.model_validate
    assert claims.claim_state(st({}), "me", NOW) is ClaimState.FREE
    assert claims.claim_state(st({"phase": "Remediated", "claimedBy": "me"}), "me", NOW) is ClaimState.CLOSED
    assert claims.claim_state(st({"phase": "Resolved"}), "me", NOW) is ClaimState.CLOSED
    assert claims.claim_state(st({"claimedBy": "me", "claimExpiresAt": iso(NOW - FOR)}), "me", NOW) is ClaimState.OURS
    held = st({"phase": "Remediating", "claimedBy": "other", "claimExpiresAt": iso(NOW + FOR)})
    assert claims.claim_state(held, "me", NOW) is ClaimState.HELD
    assert claims.claim_state(held, "me", NOW + FOR) is ClaimState.EXPIRED  # expiry is inclusive
    assert claims.claim_state(st({"claimedBy": "other"}), "me", NOW) is ClaimState.EXPIRED  # no expiry: takeable


def test_claimable_only_for_its_playbook() -> None:
    assert claims.claimable(incident(), "retrain", "me", NOW)
    assert not claims.claimable(incident(playbook="model_rollback"), "retrain", "me", NOW)
    held = {"claimedBy": "other", "claimExpiresAt": iso(NOW + FOR)}
    assert not claims.claimable(incident(held), "retrain", "me", NOW)


def test_claim_of_an_incident_without_status_counts_its_trigger() -> None:
    plan = claims.claimed_status(incident(), "retrain", "me", NOW, FOR)
    assert plan is not None and plan.taken_over_from is None
    st = plan.status
    assert (st.phase, st.claimed_by, st.claim_expires_at) == ("Remediating", "me", NOW + FOR)
    assert st.occurrences == 1 and st.snapshots == ["snap-1"]
    assert st.first_seen == datetime(2026, 11, 20, 9, 0, tzinfo=UTC)
    assert st.actions == []


def test_claim_takes_over_an_expired_claim_and_says_so() -> None:
    body = incident({"phase": "Remediating", "occurrences": 3, "claimedBy": "dead", "claimExpiresAt": iso(NOW)})
    plan = claims.claimed_status(body, "retrain", "me", NOW, FOR)
    assert plan is not None and plan.taken_over_from == "dead"
    assert plan.status.occurrences == 3
    [taken] = plan.status.actions
    assert (taken.action, taken.result, taken.playbook) == ("ClaimTakenOver", "Succeeded", "retrain")
    assert "dead" in taken.message


def test_no_claim_while_held_or_closed() -> None:
    held = incident({"claimedBy": "other", "claimExpiresAt": iso(NOW + timedelta(seconds=1))})
    assert claims.claimed_status(held, "retrain", "me", NOW, FOR) is None
    assert claims.claimed_status(incident({"phase": "Failed"}), "retrain", "me", NOW, FOR) is None
    assert claims.claimed_status(incident(playbook="x"), "retrain", "me", NOW, FOR) is None


def test_close_is_on_top_of_the_current_status() -> None:
    current = IncidentStatus.model_validate(
        {
            "phase": "Remediating",
            "occurrences": 4,
            "claimedBy": "me",
            "claimExpiresAt": iso(NOW + FOR),
            "actions": [{"playbook": "retrain", "action": "JobCreated", "at": iso(NOW), "result": "Succeeded"}],
            "conditions": [{"type": "Acknowledged", "status": "True"}],
        }
    )
    done = IncidentAction(playbook="retrain", action="JobSucceeded", at=NOW, result="Succeeded")
    st = claims.closed_status(current, "Failed", "JobFailed", [done], NOW)
    assert (st.phase, st.reason, st.closed_at, st.claim_expires_at, st.claimed_by) == (
        "Failed",
        "JobFailed",
        NOW,
        None,
        "me",
    )
    assert [a.action for a in st.actions] == ["JobCreated", "JobSucceeded"]
    assert st.occurrences == 4 and st.conditions[0].type == "Acknowledged"


def test_actions_are_bounded_oldest_dropped() -> None:
    old = [IncidentAction(playbook="p", action=f"a{i}", at=NOW, result="Succeeded") for i in range(MAX_LIST)]
    st = claims.recorded_status(
        IncidentStatus(actions=old), [IncidentAction(playbook="p", action="new", at=NOW, result="Failed")]
    )
    assert len(st.actions) == MAX_LIST and st.actions[0].action == "a1" and st.actions[-1].action == "new"


def test_release_reopens_and_patch_clears_owned_fields() -> None:
    st = claims.released_status(IncidentStatus(phase="Remediating", claimed_by="me", claim_expires_at=NOW))
    patch = claims.status_patch(st, "42")
    assert patch["metadata"] == {"resourceVersion": "42"}
    assert patch["status"]["phase"] == "Open"
    for key in ("claimedBy", "claimExpiresAt", "reason", "closedAt"):
        assert key in patch["status"] and patch["status"][key] is None
