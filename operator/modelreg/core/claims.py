"""The Incident claim protocol of docs/incidents.md, as pure functions (no I/O, no clock).

A healer acts on an Incident only while it holds the Incident's claim:
``status.claimedBy`` is its identity. A claim is taken, renewed and released
with resourceVersion-checked status writes (see :mod:`modelreg.healing`, the
shell around these functions); a claim not renewed by ``claimExpiresAt`` may
be taken over by another healer.

Every function takes the Incident's status as it was read and returns the
status to write, so what is written is always "the current status plus the
healer's own fields" and never a stale copy of someone else's.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any, Literal

from modelreg.api.models import MAX_LIST, IncidentAction, IncidentStatus
from modelreg.core import timefmt
from modelreg.core.incidents import OPEN_PHASES, with_opening

ClosedPhase = Literal["Remediated", "Failed"]
ActionResult = Literal["Succeeded", "Failed", "Skipped"]


class ClaimState(StrEnum):
    """Who may act on an Incident now."""

    CLOSED = "Closed"  # Remediated, Failed or Resolved: nobody acts
    FREE = "Free"  # open and unclaimed
    OURS = "Ours"  # claimed by this identity (whether or not expired)
    EXPIRED = "Expired"  # claimed by another identity whose claim has expired
    HELD = "Held"  # claimed by another identity until claimExpiresAt


def status_of(body: Mapping[str, Any]) -> IncidentStatus:
    return IncidentStatus.model_validate(body.get("status") or {})


def claim_state(status: IncidentStatus, identity: str, now: datetime) -> ClaimState:
    if (status.phase or "Open") not in OPEN_PHASES:
        return ClaimState.CLOSED
    holder = status.claimed_by
    if not holder:
        return ClaimState.FREE
    if holder == identity:
        return ClaimState.OURS
    expires = status.claim_expires_at
    if expires is None or expires <= now:
        return ClaimState.EXPIRED
    return ClaimState.HELD


def playbook_of(body: Mapping[str, Any]) -> str:
    return str((body.get("spec") or {}).get("playbook") or "")


def claimable(body: Mapping[str, Any], playbook: str, identity: str, now: datetime) -> bool:
    """True when ``identity`` may claim the Incident for ``playbook`` now (free, expired or its own)."""
    if playbook_of(body) != playbook:
        return False
    return claim_state(status_of(body), identity, now) in (ClaimState.FREE, ClaimState.EXPIRED, ClaimState.OURS)


def appended(actions: Iterable[IncidentAction], new: Iterable[IncidentAction]) -> list[IncidentAction]:
    """The action log with ``new`` appended, bounded to the schema's limit (oldest dropped)."""
    return [*actions, *new][-MAX_LIST:]


@dataclass(frozen=True)
class ClaimPlan:
    """The status a claim writes, and whether it takes over someone else's expired claim."""

    status: IncidentStatus
    taken_over_from: str | None


def claimed_status(
    body: Mapping[str, Any], playbook: str, identity: str, now: datetime, claim_for: timedelta
) -> ClaimPlan | None:
    """The status that claims the Incident for ``identity``; None when it may not be claimed."""
    status = status_of(body)
    state = claim_state(status, identity, now)
    if playbook_of(body) != playbook or state in (ClaimState.CLOSED, ClaimState.HELD):
        return None
    status = with_opening(status, body, now)
    previous = status.claimed_by if state is ClaimState.EXPIRED else None
    actions = status.actions
    if previous:
        expired = status.claim_expires_at
        actions = appended(
            actions,
            [
                IncidentAction(
                    playbook=playbook,
                    action="ClaimTakenOver",
                    at=now,
                    result="Succeeded",
                    message=f"claim of {previous} expired at {timefmt.rfc3339(expired) if expired else '?'}",
                )
            ],
        )
    return ClaimPlan(
        status.model_copy(
            update={
                "phase": "Remediating",
                "claimed_by": identity,
                "claim_expires_at": now + claim_for,
                "actions": actions,
                "reason": None,
                "closed_at": None,
            }
        ),
        previous,
    )


def renewed_status(status: IncidentStatus, now: datetime, claim_for: timedelta) -> IncidentStatus:
    return status.model_copy(update={"claim_expires_at": now + claim_for})


def recorded_status(status: IncidentStatus, actions: Iterable[IncidentAction]) -> IncidentStatus:
    return status.model_copy(update={"actions": appended(status.actions, actions)})


def closed_status(
    status: IncidentStatus,
    phase: ClosedPhase,
    reason: str,
    actions: Iterable[IncidentAction],
    now: datetime,
) -> IncidentStatus:
    """Closed on top of ``status`` (the current one): actions appended, the claim's expiry cleared.

    ``claimedBy`` is kept: it names the healer that closed the Incident.
    """
    return status.model_copy(
        update={
            "phase": phase,
            "reason": reason or None,
            "actions": appended(status.actions, actions),
            "closed_at": now,
            "claim_expires_at": None,
        }
    )


def released_status(status: IncidentStatus, actions: Iterable[IncidentAction] = ()) -> IncidentStatus:
    """Back to Open with no claim, so another healer may take it."""
    return status.model_copy(
        update={
            "phase": "Open",
            "claimed_by": None,
            "claim_expires_at": None,
            "actions": appended(status.actions, actions),
        }
    )


#: Status fields the claim protocol writes; a merge patch sets the absent ones to null.
OWNED_NULLABLE = ("reason", "claimedBy", "claimExpiresAt", "closedAt")


def status_patch(status: IncidentStatus, resource_version: str) -> dict[str, Any]:
    """A resourceVersion-checked merge patch of ``status`` (absent owned fields cleared)."""
    wire = status.wire()
    for key in OWNED_NULLABLE:
        wire.setdefault(key, None)
    return {"metadata": {"resourceVersion": resource_version}, "status": wire}
