"""The built-in healer: runs the ``model_rollback`` playbook of open Incidents (docs/incidents.md).

It acts only on Incidents whose playbook is ``model_rollback`` and whose
version's ``rollbackPolicy.mode`` is Automatic. The claim protocol is
:mod:`modelreg.healing`'s, the same library users write their own healers
with: a resourceVersion-checked claim (``claimedBy``, ``claimExpiresAt``), so
of two healers only one wins; a claim not renewed by its expiry may be taken
over. It then rolls the version back inside the model's serialized reconcile
(the same :func:`modelreg.core.lifecycle.rollback` the manual annotation
uses), and after the version statuses and the serving workload are written it
records the actions and closes the Incident on top of its current status.

A healer killed between claim and close leaves an Incident in Remediating
with an expiring claim; whoever takes it over finds the version already
RolledBack (if the kill came after the status write) and only closes it, so
the rollback happens exactly once.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from modelreg import metrics
from modelreg.api.models import IncidentAction, IncidentStatus, RegisteredModelStatus
from modelreg.controller.store import IncidentRec, parse_time
from modelreg.core import claims, lifecycle
from modelreg.core.policy import effective_policy
from modelreg.healing import Claim, ClaimError, Healing

if TYPE_CHECKING:
    from typing import Any

    from modelreg.controller.engine import Engine

log = logging.getLogger("modelreg.healer")

PLAYBOOK = "model_rollback"


@dataclass
class Remediation:
    """One Incident this reconcile is remediating, closed after the writes.

    ``claim`` is the built-in healer's claim; a manual rollback (annotation)
    has none, and is claimed when it is closed.
    """

    incident: str
    version: str
    status: IncidentStatus | None = None
    actions: list[IncidentAction] = field(default_factory=list)
    phase: str = "Remediated"
    reason: str = ""
    restored: str | None = None
    opened_at: datetime | None = None
    claim: Claim | None = None


class Healer:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.identity = engine.settings.identity
        self.claim_for = timedelta(seconds=engine.settings.claim_seconds)
        self.healing = self.for_playbook(PLAYBOOK)

    def for_playbook(self, playbook: str) -> Healing:
        """The claim protocol for ``playbook``, keeping the engine's store up to date."""
        store = self.engine.store
        return Healing(
            self.engine.client,
            self.identity,
            playbook,
            claim_for=self.claim_for,
            observe=store.upsert_incident,
            forget=store.delete_incident,
        )

    def _actionable(self, rec: IncidentRec, view: lifecycle.VersionView) -> bool:
        if not rec.is_open or rec.body.get("spec", {}).get("playbook") != PLAYBOOK or view.spec is None:
            return False
        policy = effective_policy(view.spec, self.engine.defaults)
        return policy.rollback_policy.mode == "Automatic"

    async def claim_and_roll_back(
        self,
        ns: str,
        model_name: str,
        views: dict[str, lifecycle.VersionView],
        statuses: dict[str, RegisteredModelStatus],
        now: datetime,
        seen: dict[str, Any] | None = None,
    ) -> list[Remediation] | None:
        """Claim each actionable open Incident of the model and roll back in ``statuses``.

        Returns None when the model changed under us since this reconcile read it
        (``seen``: name → :func:`~modelreg.controller.engine.material`): the caller starts over;
        the claim stays ours.
        """
        store = self.engine.store
        out: list[Remediation] = []
        versions = {n: v.spec.version for n, v in views.items() if v.spec is not None}
        for name, view in sorted(views.items()):
            rec = store.open_incident(ns, name)
            if rec is None or not self._actionable(rec, view):
                continue
            status = claims.status_of(rec.body)
            if self.healing.state(rec.body, now) is claims.ClaimState.HELD:
                expires = status.claim_expires_at
                assert expires is not None
                log.info("incident %s/%s is claimed by %s until %s", ns, rec.name, status.claimed_by, expires)
                # Another healer holds it; look again when its claim expires.
                self.engine.queue.call_at(expires + timedelta(milliseconds=200), ("model", ns, model_name))
                continue
            # The claim and the re-read of the model are independent requests: one round
            # trip for both on the remediation path. A change after the re-read still
            # fails the resourceVersion-checked version writes that follow.
            claiming = self.healing.claim(rec.body, now=now)
            if seen is None:
                claim, moved = await claiming, False
            else:
                claim, moved = await asyncio.gather(claiming, self.engine.versions_moved(ns, model_name, seen))
            if claim is None:
                log.info("claim of incident %s/%s lost a race; looking again", ns, rec.name)
                self.engine.queue.schedule(("model", ns, model_name))
                continue
            if moved:
                log.info("claimed incident %s/%s but %s moved meanwhile; starting over", ns, rec.name, model_name)
                self.engine.queue.schedule(("model", ns, model_name))
                return None
            log.info("claimed incident %s/%s (playbook %s)", ns, rec.name, PLAYBOOK)
            remediation = Remediation(
                incident=rec.name,
                version=name,
                status=claim.status,
                opened_at=parse_time(rec.body["metadata"].get("creationTimestamp")),
                claim=claim,
            )
            current = statuses[name]
            if current.stage == "RolledBack":
                # A previous holder already rolled back before it died: only close.
                remediation.actions.append(
                    IncidentAction(
                        playbook=PLAYBOOK,
                        action="RolledBack",
                        at=now,
                        result="Succeeded",
                        message=f"already rolled back to {current.rolled_back_to}",
                    )
                )
                remediation.restored = next((n for n, s in statuses.items() if s.stage == "Production"), None)
            elif current.stage != "Production":
                remediation.phase, remediation.reason = "Failed", "NotInProduction"
                remediation.actions.append(
                    IncidentAction(
                        playbook=PLAYBOOK,
                        action="RollBack",
                        at=now,
                        result="Skipped",
                        message=f"version is {current.stage}, not Production",
                    )
                )
            else:
                outcome = lifecycle.rollback(statuses, versions, name, now, f"incident {rec.name}")
                metrics.rollbacks.labels(ns, model_name, outcome.reason).inc()
                if outcome.restored is None:
                    remediation.phase, remediation.reason = "Failed", "NoRestoreTarget"
                    remediation.actions.append(
                        IncidentAction(
                            playbook=PLAYBOOK,
                            action="RollBack",
                            at=now,
                            result="Failed",
                            message=outcome.message,
                        )
                    )
                else:
                    remediation.restored = outcome.restored
                    remediation.actions.append(
                        IncidentAction(
                            playbook=PLAYBOOK,
                            action="RolledBack",
                            at=now,
                            result="Succeeded",
                            message=outcome.message,
                        )
                    )
            out.append(remediation)
        return out

    async def close(self, ns: str, remediation: Remediation, now: datetime) -> None:
        """Record the actions and move the Incident to Remediated or Failed.

        Through :meth:`modelreg.healing.Healing.close`: only the fields the healer
        owns are written, on top of the Incident as it is now and with a
        resourceVersion precondition, so a concurrent writer's status (a user's
        condition, another controller's action) is never overwritten, and an
        Incident whose claim another healer took over meanwhile is not closed.
        A manual rollback's Incident is claimed first, under its own playbook.
        """
        claim = remediation.claim
        try:
            if claim is None:
                rec = self.engine.store.incidents.get((ns, remediation.incident))
                if rec is None:
                    return
                claim = await self.for_playbook(claims.playbook_of(rec.body)).claim(rec.body, now=now)
                if claim is None:
                    log.info("incident %s/%s: claimed by another healer; it closes it", ns, remediation.incident)
                    return
                healing = self.for_playbook(claim.playbook)
            else:
                healing = self.healing
            if remediation.phase not in ("Remediated", "Failed"):
                raise ValueError(f"cannot close with phase {remediation.phase}")
            phase: claims.ClosedPhase = "Remediated" if remediation.phase == "Remediated" else "Failed"
            closed = await healing.close(claim, phase, remediation.reason, remediation.actions, now=now)
        except ClaimError as err:
            log.warning("not closed: %s", err)
            return
        log.info(
            "incident %s/%s %s%s: %s",
            ns,
            remediation.incident,
            remediation.phase,
            f" ({remediation.reason})" if remediation.reason else "",
            "; ".join(f"{a.action} {a.result}" for a in remediation.actions),
        )
        if remediation.phase == "Remediated" and remediation.opened_at is not None:
            metrics.breach_to_remediated.observe(max(0.0, (now - remediation.opened_at).total_seconds()))
        reason = "IncidentRemediated" if remediation.phase == "Remediated" else "IncidentFailed"
        kind_type: lifecycle.EventType = "Normal" if remediation.phase == "Remediated" else "Warning"
        summary = "; ".join(f"{a.action}: {a.result} {a.message}".strip() for a in remediation.actions)
        await self.engine.events.post(
            ns,
            lifecycle.Event(remediation.incident, kind_type, reason, summary or remediation.phase),
            kind="Incident",
            uid=closed.uid or None,
        )
