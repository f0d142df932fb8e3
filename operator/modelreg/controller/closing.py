"""Closing a remediated Incident: record its actions, move it to Remediated or Failed, post the Event.

Used by the built-in healer for the Incidents it claimed and by the engine for
a manual rollback's Incident (claimed here first, under its own playbook), with
or without the built-in healer.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from modelreg import metrics
from modelreg.controller.events import EventRecorder
from modelreg.controller.store import Store
from modelreg.core import claims, lifecycle
from modelreg.core.lifecycle.stages import EventType
from modelreg.core.remediation import Remediation
from modelreg.healing import Claim, ClaimError, Healing
from modelreg.kube.client import KubeClient

log = logging.getLogger("modelreg.healer")


class IncidentCloser:
    def __init__(
        self, client: KubeClient, store: Store, events: EventRecorder, identity: str, claim_for: timedelta
    ) -> None:
        self.client = client
        self.store = store
        self.events = events
        self.identity = identity
        self.claim_for = claim_for

    def for_playbook(self, playbook: str) -> Healing:
        """The claim protocol for ``playbook``, keeping the store up to date."""
        return Healing(
            self.client,
            self.identity,
            playbook,
            claim_for=self.claim_for,
            observe=self.store.upsert_incident,
            forget=self.store.delete_incident,
        )

    async def close(self, ns: str, remediation: Remediation, now: datetime, claim: Claim | None = None) -> None:
        """Record the actions and move the Incident to Remediated or Failed.

        Through :meth:`modelreg.healing.Healing.close`: only the fields the healer
        owns are written, on top of the Incident as it is now and with a
        resourceVersion precondition, so a concurrent writer's status (a user's
        condition, another controller's action) is never overwritten, and an
        Incident whose claim another healer took over meanwhile is not closed.
        Without a ``claim`` (a manual rollback) the Incident is claimed first, under its own playbook.
        """
        try:
            if claim is None:
                rec = self.store.incidents.get((ns, remediation.incident))
                if rec is None:
                    return
                claim = await self.for_playbook(claims.playbook_of(rec.body)).claim(rec.body, now=now)
                if claim is None:
                    log.info("incident %s/%s: claimed by another healer; it closes it", ns, remediation.incident)
                    return
            healing = self.for_playbook(claim.playbook)
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
        kind_type: EventType = "Normal" if remediation.phase == "Remediated" else "Warning"
        summary = "; ".join(f"{a.action}: {a.result} {a.message}".strip() for a in remediation.actions)
        await self.events.post(
            ns,
            lifecycle.Event(remediation.incident, kind_type, reason, summary or remediation.phase),
            kind="Incident",
            uid=closed.uid or None,
        )
