"""The built-in healer: runs the ``model_rollback`` playbook of open Incidents (docs/incidents.md).

It acts only on Incidents whose playbook is ``model_rollback`` and whose
version's ``rollbackPolicy.mode`` is Automatic. The claim protocol is
:mod:`modelreg.healing`'s, the same library users write their own healers
with: a resourceVersion-checked claim (``claimedBy``, ``claimExpiresAt``), so
of two healers only one wins; a claim not renewed by its expiry may be taken
over. It then rolls the version back inside the model's serialized reconcile
(the same :func:`modelreg.core.lifecycle.rollback.rollback` the manual annotation
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
from collections.abc import Awaitable, Callable, Hashable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol

from modelreg.api.models import RegisteredModelStatus
from modelreg.controller.closing import IncidentCloser
from modelreg.controller.store import IncidentRec, Store
from modelreg.core import claims, lifecycle, timefmt
from modelreg.core.passplan import TakeClaim
from modelreg.core.policy import Defaults, effective_policy
from modelreg.core.remediation import PLAYBOOK, Remediation, healer_remediation
from modelreg.healing import Claim

log = logging.getLogger("modelreg.healer")

#: ``(namespace, model name, seen)`` → whether the model's versions moved since they were read as ``seen``.
Reread = Callable[[str, str, dict[str, Any]], Awaitable[bool]]


class Scheduler(Protocol):
    """The part of the work queue the healer uses: look at a model again, now or later."""

    def schedule(self, key: Hashable, *, urgent: bool = False) -> None: ...

    def call_at(self, when: datetime, key: Hashable) -> None: ...


@dataclass(frozen=True)
class Planned:
    """A remediation the built-in healer decided; it acts once the claim is taken."""

    remediation: Remediation
    #: The rollback made, when one was (for the rollback metrics).
    outcome: lifecycle.RollbackOutcome | None


class Healer:
    def __init__(
        self, store: Store, queue: Scheduler, closer: IncidentCloser, defaults: Defaults, reread: Reread
    ) -> None:
        self.store = store
        self.queue = queue
        self.closer = closer
        self.defaults = defaults
        self.reread = reread
        self.healing = closer.for_playbook(PLAYBOOK)

    def _actionable(self, rec: IncidentRec, view: lifecycle.VersionView) -> bool:
        if not rec.is_open or rec.body.get("spec", {}).get("playbook") != PLAYBOOK or view.spec is None:
            return False
        policy = effective_policy(view.spec, self.defaults)
        return policy.rollback_policy.mode == "Automatic"

    def plan(
        self,
        ns: str,
        model_name: str,
        views: dict[str, lifecycle.VersionView],
        statuses: dict[str, RegisteredModelStatus],
        now: datetime,
        open_incident: Callable[[str], IncidentRec | None],
    ) -> list[Planned]:
        """The remediation of each actionable open Incident of the model, rolled back in
        ``statuses`` (no I/O): the claims are taken afterwards (:meth:`take`), before
        anything of the rollback is written. ``open_incident``: a version's open Incident,
        one the pass is about to open included."""
        out: list[Planned] = []
        versions = {n: v.spec.version for n, v in views.items() if v.spec is not None}
        for name, view in sorted(views.items()):
            rec = open_incident(name)
            if rec is None or not self._actionable(rec, view):
                continue
            if self.healing.state(rec.body, now) is claims.ClaimState.HELD:
                status = claims.status_of(rec.body)
                expires = status.claim_expires_at
                assert expires is not None
                log.info("incident %s/%s is claimed by %s until %s", ns, rec.name, status.claimed_by, expires)
                # Another healer holds it; look again when its claim expires.
                self.queue.call_at(expires + timedelta(milliseconds=200), ("model", ns, model_name))
                continue
            opened_at = timefmt.parse_or_none(rec.body["metadata"].get("creationTimestamp"))
            remediation, outcome = healer_remediation(rec.name, name, statuses, versions, now, opened_at)
            out.append(Planned(remediation, outcome))
        return out

    async def take(
        self, ns: str, model_name: str, steps: Sequence[TakeClaim], now: datetime, seen: dict[str, Any]
    ) -> dict[str, Claim] | None:
        """Take the planned claims: Incident name → claim held; None when one was lost to
        another healer or the model changed under us since the pass read it (``seen``: name →
        :func:`~modelreg.controller.applier.material`; the claim stays ours). The pass stops
        there and the model is run again (already scheduled)."""
        held: dict[str, Claim] = {}
        for step in steps:
            rec = self.store.incidents.get((ns, step.incident))
            if rec is None:
                self.queue.schedule(("model", ns, model_name))
                return None
            # The claim and the re-read of the model are independent requests: one round
            # trip for both on the remediation path. A change after the re-read still
            # fails the resourceVersion-checked version writes that follow.
            claim, moved = await asyncio.gather(
                self.healing.claim(rec.body, now=now), self.reread(ns, model_name, seen)
            )
            if claim is None:
                log.info("claim of incident %s/%s lost a race; looking again", ns, step.incident)
                self.queue.schedule(("model", ns, model_name))
                return None
            if moved:
                log.info("claimed incident %s/%s but %s moved meanwhile; starting over", ns, step.incident, model_name)
                self.queue.schedule(("model", ns, model_name))
                return None
            log.info("claimed incident %s/%s (playbook %s)", ns, step.incident, PLAYBOOK)
            held[step.incident] = claim
        return held
