"""What remediating an Incident does to a model, decided without I/O (docs/incidents.md).

Two paths close an Incident with a rollback: the built-in healer, after it has
claimed an Incident of the ``model_rollback`` playbook, and a manual rollback
(the annotation), which closes the version's open Incident under its own
playbook. Both turn a :class:`~modelreg.core.lifecycle.RollbackOutcome` into a
:class:`Remediation` through one function, :func:`from_rollback`; the shell
(:mod:`modelreg.controller.healer`, :mod:`modelreg.controller.closing`) claims,
writes and closes.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

from modelreg.api.models import IncidentAction, IncidentStatus, RegisteredModelStatus
from modelreg.core.claims import ActionResult
from modelreg.core.lifecycle.rollback import rollback
from modelreg.core.lifecycle.rollback import rollback_events as outcome_events
from modelreg.core.lifecycle.stages import Event, RollbackOutcome

#: The playbook the built-in healer runs.
PLAYBOOK = "model_rollback"


@dataclass
class Remediation:
    """One Incident a reconcile is remediating, closed after the writes."""

    incident: str
    version: str
    actions: list[IncidentAction] = field(default_factory=list)
    phase: str = "Remediated"
    reason: str = ""
    restored: str | None = None
    opened_at: datetime | None = None


def from_rollback(
    incident: str,
    outcome: RollbackOutcome,
    now: datetime,
    *,
    playbook: str = PLAYBOOK,
    note: str = "",
    opened_at: datetime | None = None,
) -> Remediation:
    """The Remediation of ``incident`` by the rollback ``outcome`` (failed without a restore target).

    ``note`` prefixes the recorded action's message (``"manual rollback: "`` on the manual path).
    """
    ok = outcome.restored is not None
    return Remediation(
        incident=incident,
        version=outcome.rolled_back,
        actions=[
            IncidentAction(
                playbook=playbook,
                action="RolledBack" if ok else "RollBack",
                at=now,
                result="Succeeded" if ok else "Failed",
                message=f"{note}{outcome.message}",
            )
        ],
        phase="Remediated" if ok else "Failed",
        reason="" if ok else outcome.reason,
        restored=outcome.restored,
        opened_at=opened_at,
    )


def healer_remediation(
    incident: str,
    version: str,
    statuses: dict[str, RegisteredModelStatus],
    versions: Mapping[str, str],
    now: datetime,
    opened_at: datetime | None = None,
) -> tuple[Remediation, RollbackOutcome | None]:
    """The built-in healer's remediation of its claimed ``incident`` on ``version``; rolls back in ``statuses``.

    A version already RolledBack (a previous holder died after its status write) is only
    closed; one not in Production is left as it is (Failed, NotInProduction). The rollback
    outcome, when one was made, comes back for the caller's metrics.
    """
    current = statuses[version]
    if current.stage == "RolledBack":
        restored = next((n for n, s in statuses.items() if s.stage == "Production"), None)
        done = IncidentAction(
            playbook=PLAYBOOK,
            action="RolledBack",
            at=now,
            result="Succeeded",
            message=f"already rolled back to {current.rolled_back_to}",
        )
        return Remediation(incident, version, [done], restored=restored, opened_at=opened_at), None
    if current.stage != "Production":
        skipped = IncidentAction(
            playbook=PLAYBOOK,
            action="RollBack",
            at=now,
            result="Skipped",
            message=f"version is {current.stage}, not Production",
        )
        return Remediation(incident, version, [skipped], "Failed", "NotInProduction", opened_at=opened_at), None
    outcome = rollback(statuses, versions, version, now, f"incident {incident}")
    return from_rollback(incident, outcome, now, opened_at=opened_at), outcome


def manual_remediation(
    incident: str,
    status: IncidentStatus,
    playbook: str,
    outcome: RollbackOutcome,
    now: datetime,
    opened_at: datetime | None = None,
) -> Remediation | None:
    """A manual rollback (annotation) closes the version's open ``incident`` too, unless a
    healer holds a live claim on it (that healer records the rollback and closes it)."""
    if status.claimed_by and status.claim_expires_at is not None and status.claim_expires_at > now:
        return None
    return from_rollback(incident, outcome, now, playbook=playbook, note="manual rollback: ", opened_at=opened_at)


class ServingResult(Protocol):
    """How the serving workload took the pass's Production version."""

    @property
    def ok(self) -> bool: ...

    @property
    def reason(self) -> str: ...

    @property
    def message(self) -> str: ...


def served(remediations: Iterable[Remediation], serving: ServingResult | None, now: datetime) -> None:
    """Record on each successful rollback how serving followed the restored version; a rollback
    whose workload could not be updated fails its Incident with the serving reason."""
    for r in remediations:
        if not (r.restored and r.phase == "Remediated"):
            continue
        result: ActionResult = "Skipped" if serving is None else "Succeeded" if serving.ok else "Failed"
        message = "no serving workload configured" if serving is None else serving.message
        r.actions.append(
            IncidentAction(playbook=PLAYBOOK, action="ServingRestored", at=now, result=result, message=message)
        )
        if serving is not None and not serving.ok:
            r.phase, r.reason = "Failed", serving.reason


def rollback_events(remediations: Iterable[Remediation]) -> list[Event]:
    """The RolledBack Events of the rollbacks these remediations made (or found made)."""
    out: list[Event] = []
    for r in remediations:
        for action in r.actions:
            if action.action == "RolledBack" and r.restored:
                out.extend(outcome_events(RollbackOutcome(r.version, r.restored, None, "RolledBack", action.message)))
    return out
