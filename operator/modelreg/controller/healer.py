"""The built-in healer: runs the ``model_rollback`` playbook of open Incidents (SPEC §3).

It acts only on Incidents whose playbook is ``model_rollback`` and whose
version's ``rollbackPolicy.mode`` is Automatic. It claims an Incident with a
resourceVersion-checked status write (``claimedBy``, ``claimExpiresAt``), so of
two healers only one wins; a claim not renewed by its expiry may be taken
over. It then rolls the version back inside the model's serialized
reconcile (the same :func:`modelreg.core.lifecycle.rollback` the manual
annotation uses), and after the version statuses and the serving workload
are written it records the actions and closes the Incident.

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
from typing import TYPE_CHECKING, Any

from modelreg import metrics
from modelreg.api.models import IncidentAction, IncidentStatus, RegisteredModelStatus
from modelreg.controller.store import IncidentRec, parse_time
from modelreg.core import incidents as inc
from modelreg.core import lifecycle
from modelreg.core.policy import effective_policy
from modelreg.kube.client import ApiError

if TYPE_CHECKING:
    from modelreg.controller.engine import Engine

log = logging.getLogger("modelreg.healer")

PLAYBOOK = "model_rollback"


@dataclass
class Remediation:
    """One Incident this reconcile is remediating, closed after the writes."""

    incident: str
    version: str
    status: IncidentStatus
    actions: list[IncidentAction] = field(default_factory=list)
    phase: str = "Remediated"
    reason: str = ""
    restored: str | None = None
    opened_at: datetime | None = None


def _iso(dt: datetime) -> str:
    return dt.isoformat().replace("+00:00", "Z")


class Healer:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.identity = engine.settings.identity
        self.claim_for = timedelta(seconds=engine.settings.claim_seconds)

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
            status = IncidentStatus.model_validate(rec.status)
            claimant = status.claimed_by
            expires = status.claim_expires_at
            if claimant and claimant != self.identity and expires is not None and expires > now:
                log.info("incident %s/%s is claimed by %s until %s", ns, rec.name, claimant, expires)
                # Another healer holds it; look again when its claim expires.
                self.engine.queue.call_at(expires + timedelta(milliseconds=200), ("model", ns, model_name))
                continue
            if not status.occurrences:
                trig = rec.body["spec"]["trigger"]["snapshot"]
                created = parse_time(rec.body["metadata"].get("creationTimestamp")) or now
                status = inc.opened_status(trig, created).model_copy(update={"snapshots": list(rec.snapshots)})
            claimed = status.model_copy(
                update={
                    "phase": "Remediating",
                    "claimed_by": self.identity,
                    "claim_expires_at": now + self.claim_for,
                }
            )
            if claimant and claimant != self.identity:
                claimed.actions = [
                    *claimed.actions,
                    IncidentAction(
                        playbook=PLAYBOOK,
                        action="ClaimTakenOver",
                        at=now,
                        result="Succeeded",
                        message=f"claim of {claimant} expired at {_iso(expires) if expires else '?'}",
                    ),
                ][-64:]
            # The claim and the re-read of the model are independent requests: one round
            # trip for both on the remediation path. A change after the re-read still
            # fails the resourceVersion-checked version writes that follow.
            claim = self._write(ns, rec, claimed, check=True)
            if seen is None:
                ok, moved = await claim, False
            else:
                ok, moved = await asyncio.gather(claim, self.engine.versions_moved(ns, model_name, seen))
            if not ok:
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
                status=claimed,
                opened_at=parse_time(rec.body["metadata"].get("creationTimestamp")),
            )
            current = statuses[name]
            if current.stage == "RolledBack":
                # A previous holder already rolled back before it died: only close.
                remediation.restored = None
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

        Only the fields the healer owns are written, on top of the Incident as it is
        now and with a resourceVersion precondition, so a concurrent writer's status
        (a user's condition, another controller's action) is never overwritten.
        """
        from modelreg.controller.engine import inc_path

        rec = self.engine.store.incidents.get((ns, remediation.incident))
        if rec is None:
            return
        for _attempt in range(8):
            current = IncidentStatus.model_validate(rec.status)
            base = remediation.status
            patch = {
                "metadata": {"resourceVersion": rec.body["metadata"]["resourceVersion"]},
                "status": {
                    "phase": remediation.phase,
                    "reason": remediation.reason or None,
                    "actions": [
                        a.model_dump(mode="json", by_alias=True, exclude_none=True)
                        for a in [*current.actions, *remediation.actions][-64:]
                    ],
                    "closedAt": now.isoformat().replace("+00:00", "Z"),
                    "claimExpiresAt": None,
                    "claimedBy": base.claimed_by,
                    "occurrences": max(current.occurrences, base.occurrences),
                    "snapshots": current.snapshots or base.snapshots,
                    "firstSeen": (current.first_seen or base.first_seen or now).isoformat().replace("+00:00", "Z"),
                    "lastSeen": (current.last_seen or base.last_seen or now).isoformat().replace("+00:00", "Z"),
                },
            }
            try:
                out = await self.engine.client.merge_patch(inc_path(ns, rec.name) + "/status", patch)
            except ApiError as err:
                if err.not_found:
                    self.engine.store.delete_incident(ns, rec.name)
                    return
                if not err.conflict:
                    raise
                fresh = await self.engine.client.get(inc_path(ns, rec.name))
                self.engine.store.upsert_incident(fresh)
                rec = self.engine.store.incidents[(ns, rec.name)]
                continue
            self.engine.store.upsert_incident(out)
            break
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
        await self.engine.post_event(
            ns,
            None,
            lifecycle.Event(remediation.incident, kind_type, reason, summary or remediation.phase),
            kind="Incident",
            uid=str(rec.body["metadata"].get("uid", "")),
        )

    async def _write(self, ns: str, rec: IncidentRec, status: IncidentStatus, *, check: bool) -> bool:
        from modelreg.controller.engine import inc_path

        patch: dict[str, Any] = {"status": status.wire()}
        for key in ("reason", "claimExpiresAt", "closedAt"):
            patch["status"].setdefault(key, None)
        if check:
            patch["metadata"] = {"resourceVersion": rec.body["metadata"]["resourceVersion"]}
        try:
            out = await self.engine.client.merge_patch(inc_path(ns, rec.name) + "/status", patch)
        except ApiError as err:
            if err.conflict:
                fresh = await self.engine.client.get(inc_path(ns, rec.name))
                self.engine.store.upsert_incident(fresh)
                return False
            if err.not_found:
                self.engine.store.delete_incident(ns, rec.name)
                return False
            raise
        self.engine.store.upsert_incident(out)
        return True
