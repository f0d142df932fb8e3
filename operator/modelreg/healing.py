"""``modelreg.healing``: write your own healing controller for Incidents (docs/{incidents,healing}.md).

An Incident names a ``spec.playbook``. The built-in healer runs
``model_rollback``; any other name is left to a controller of yours, which
must follow the same claim protocol so that two controllers never act on one
Incident. This module is that protocol as a few calls, usable from Kopf
handlers or from a plain asyncio program::

    from modelreg.healing import Healing

    healing = Healing(client, identity="retrain-healer-0", playbook="retrain")

    for incident in await healing.claimable(namespace="risk"):
        claim = await healing.claim(incident)   # None: another healer won it
        if claim is None:
            continue
        fresh = await healing.reread(claim)     # act on what is stored now
        ...                                     # do the work
        await healing.record(claim, "JobCreated", "Succeeded", "job retrain-7c2e9a1f")
        await healing.close(claim, "Remediated")            # or "Failed", reason="..."

The rules it implements:

* **Claim** writes ``claimedBy`` (your identity), ``claimExpiresAt`` (now +
  ``claim_for``) and phase Remediating with a resourceVersion precondition: of
  two healers writing at once, one gets a conflict and :meth:`Healing.claim`
  returns None for it. A claim held by another identity is respected until it
  expires; an expired one is taken over (recorded as a ``ClaimTakenOver``
  action). A claim you already hold is returned without a write.
* **Renew** before ``claimExpiresAt`` while the work takes long
  (:meth:`Healing.renew`, or :meth:`Healing.keep_renewed` as a context).
* **Re-read before acting** (:meth:`Healing.reread`): raises :class:`ClaimLost`
  when the Incident is gone, closed, or claimed by someone else meanwhile.
* **Record** each action (:meth:`Healing.record`) and **close** as Remediated
  or Failed with a reason (:meth:`Healing.close`), on top of the Incident's
  current status, so nobody else's status fields are overwritten. Closing an
  Incident you do not hold raises :class:`NotHolder`.
* **Release** (:meth:`Healing.release`) clears the claim and reopens the
  Incident for another healer when you give up without closing it.

Every write is a resourceVersion-checked merge patch of the Incident's
``status`` subresource; a conflict re-reads the Incident, checks the claim is
still yours and tries again. The client is modelreg's async
:class:`~modelreg.kube.client.KubeClient`; your controller needs ``get``,
``list`` (and ``watch`` with Kopf) on ``incidents`` and ``patch`` on
``incidents/status`` in its namespaces.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable, Iterable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from modelreg import GROUP, VERSION
from modelreg.api.models import IncidentAction, IncidentStatus
from modelreg.core import claims
from modelreg.core.claims import ActionResult, ClaimState, ClosedPhase
from modelreg.kube.client import ApiError, KubeClient, path_for

__all__ = [
    "Claim",
    "ClaimError",
    "ClaimLost",
    "ClaimState",
    "Healing",
    "NotHolder",
    "action",
    "incident_path",
]

log = logging.getLogger("modelreg.healing")

JSON = dict[str, Any]
#: How many times a write is retried after a resourceVersion conflict (each after a re-read).
CONFLICT_ATTEMPTS = 8


class ClaimError(Exception):
    """The claim protocol forbids what was asked."""

    def __init__(self, namespace: str, name: str, message: str) -> None:
        super().__init__(f"incident {namespace}/{name}: {message}")
        self.namespace = namespace
        self.name = name


class NotHolder(ClaimError):
    """This healer does not hold the Incident's claim (someone else does, or nobody)."""


class ClaimLost(NotHolder):
    """The Incident was deleted, closed or claimed by another healer since it was claimed."""


def utcnow() -> datetime:
    return datetime.now(UTC)


def incident_path(namespace: str, name: str | None = None) -> str:
    return path_for(GROUP, VERSION, "incidents", namespace, name)


def action(
    playbook: str, name: str, result: ActionResult, message: str = "", at: datetime | None = None
) -> IncidentAction:
    """One ``status.actions`` entry."""
    return IncidentAction(playbook=playbook, action=name, at=at or utcnow(), result=result, message=message)


@dataclass(frozen=True)
class Claim:
    """A claim this healer holds, with the Incident as of the last read or write."""

    namespace: str
    name: str
    identity: str
    playbook: str
    incident: JSON = field(repr=False)
    #: The identity whose expired claim this one took over, if any.
    taken_over_from: str | None = None

    @property
    def uid(self) -> str:
        return str(self.incident["metadata"].get("uid", ""))

    @property
    def resource_version(self) -> str:
        return str(self.incident["metadata"]["resourceVersion"])

    @property
    def status(self) -> IncidentStatus:
        return claims.status_of(self.incident)

    @property
    def expires_at(self) -> datetime | None:
        return self.status.claim_expires_at

    @property
    def spec(self) -> JSON:
        return dict(self.incident.get("spec") or {})

    def has_action(self, name: str, result: ActionResult | None = None) -> bool:
        """True when ``status.actions`` already holds an action ``name`` (of ``result``)."""
        return any(a.action == name and (result is None or a.result == result) for a in self.status.actions)


class Healing:
    """The claim protocol for one playbook, under one identity.

    ``identity`` names this healer in ``claimedBy``; replicas of one controller
    share it (so a successor takes over a killed one's claims at once), distinct
    controllers must not. ``observe`` and ``forget`` (optional) are called with
    every Incident this object reads or writes and with each one found deleted,
    for a controller that keeps a cache.
    """

    def __init__(
        self,
        client: KubeClient,
        identity: str,
        playbook: str,
        *,
        claim_for: timedelta = timedelta(seconds=30),
        clock: Callable[[], datetime] = utcnow,
        observe: Callable[[JSON], object] | None = None,
        forget: Callable[[str, str], object] | None = None,
    ) -> None:
        if not identity:
            raise ValueError("identity must not be empty")
        if claim_for <= timedelta(0):
            raise ValueError("claim_for must be positive")
        self.client = client
        self.identity = identity
        self.playbook = playbook
        self.claim_for = claim_for
        self.clock = clock
        self._observe = observe
        self._forget = forget

    # --- reads --------------------------------------------------------------------------

    def state(self, incident: JSON, now: datetime | None = None) -> ClaimState:
        """Who may act on ``incident`` now, as this healer sees it."""
        return claims.claim_state(claims.status_of(incident), self.identity, now or self.clock())

    def is_claimable(self, incident: JSON, now: datetime | None = None) -> bool:
        """Its playbook is ours and it is open and free, expired, or already ours."""
        return claims.claimable(incident, self.playbook, self.identity, now or self.clock())

    async def claimable(self, namespace: str | None = None, *, label_selector: str | None = None) -> list[JSON]:
        """The Incidents of this playbook that may be claimed now (one list request)."""
        path = incident_path(namespace) if namespace else f"/apis/{GROUP}/{VERSION}/incidents"
        params = {"labelSelector": label_selector} if label_selector else {}
        listing = await self.client.list(path, **params)
        now = self.clock()
        out = []
        for item in listing.get("items", []):
            item.setdefault("apiVersion", f"{GROUP}/{VERSION}")
            item.setdefault("kind", "Incident")
            if self.is_claimable(item, now):
                out.append(item)
        return out

    async def get(self, namespace: str, name: str) -> JSON | None:
        """The Incident as stored now; None when it does not exist."""
        try:
            body = await self.client.get(incident_path(namespace, name))
        except ApiError as err:
            if err.not_found:
                self._gone(namespace, name)
                return None
            raise
        self._seen(body)
        return body

    async def held(self, namespace: str, name: str) -> Claim | None:
        """Our claim on the Incident as stored now, or None when this healer does not hold it open."""
        body = await self.get(namespace, name)
        if body is None or self.state(body) is not ClaimState.OURS:
            return None
        return Claim(namespace, name, self.identity, self.playbook, body)

    async def reread(self, claim: Claim) -> Claim:
        """Read the Incident again before acting; :class:`ClaimLost` when it is no longer ours."""
        body = await self.get(claim.namespace, claim.name)
        if body is None:
            raise ClaimLost(claim.namespace, claim.name, "deleted")
        self._check_holder(claim, body)
        return replace(claim, incident=body)

    # --- writes -------------------------------------------------------------------------

    async def claim(self, incident: JSON, *, now: datetime | None = None) -> Claim | None:
        """Claim ``incident`` (a body as read, with its resourceVersion).

        Returns the claim, or None when the Incident is not this playbook's, is
        closed, is held by another healer whose claim has not expired, was
        deleted, or another healer's write got there first (a resourceVersion
        conflict: the Incident changed since it was read). A claim this healer
        already holds is returned as it is, without a write (:meth:`renew`
        extends it).
        """
        now = now or self.clock()
        meta = incident["metadata"]
        ns, name = str(meta["namespace"]), str(meta["name"])
        if self.state(incident, now) is ClaimState.OURS and claims.playbook_of(incident) == self.playbook:
            return Claim(ns, name, self.identity, self.playbook, incident)
        plan = claims.claimed_status(incident, self.playbook, self.identity, now, self.claim_for)
        if plan is None:
            return None
        out = await self._patch(ns, name, claims.status_patch(plan.status, str(meta["resourceVersion"])))
        if out is None:
            if self._observe is not None:
                await self.get(ns, name)  # a cache holding the stale copy would lose every retry
            return None
        if plan.taken_over_from:
            log.info("incident %s/%s: took over the expired claim of %s", ns, name, plan.taken_over_from)
        return Claim(ns, name, self.identity, self.playbook, out, plan.taken_over_from)

    async def renew(self, claim: Claim, *, now: datetime | None = None) -> Claim:
        """Extend the claim to now + ``claim_for``; :class:`ClaimLost` when it is no longer ours."""
        return await self._update(claim, lambda st: claims.renewed_status(st, now or self.clock(), self.claim_for))

    async def record(
        self, claim: Claim, name: str, result: ActionResult, message: str = "", *, at: datetime | None = None
    ) -> Claim:
        """Append one action to ``status.actions`` (see :meth:`record_actions`)."""
        return await self.record_actions(claim, [action(claim.playbook, name, result, message, at or self.clock())])

    async def record_actions(self, claim: Claim, actions: Iterable[IncidentAction]) -> Claim:
        """Append actions to ``status.actions`` on top of the current status."""
        new = list(actions)
        return await self._update(claim, lambda st: claims.recorded_status(st, new))

    async def close(
        self,
        claim: Claim,
        phase: ClosedPhase,
        reason: str = "",
        actions: Iterable[IncidentAction] = (),
        *,
        now: datetime | None = None,
    ) -> Claim:
        """Close the Incident as Remediated or Failed with ``reason``, appending ``actions``.

        Written on top of the Incident's current status with a resourceVersion
        precondition; raises :class:`NotHolder` (or :class:`ClaimLost`) when this
        healer does not hold the claim, and never closes it then.
        """
        if phase not in ("Remediated", "Failed"):
            raise ValueError(f"phase must be Remediated or Failed, not {phase!r}")
        new = list(actions)
        when = now or self.clock()
        return await self._update(claim, lambda st: claims.closed_status(st, phase, reason, new, when))

    async def release(self, claim: Claim, actions: Iterable[IncidentAction] = ()) -> Claim:
        """Give the Incident up without closing it: phase Open, no claim."""
        new = list(actions)
        return await self._update(claim, lambda st: claims.released_status(st, new))

    @contextlib.asynccontextmanager
    async def keep_renewed(self, claim: Claim, *, every: timedelta | None = None) -> AsyncIterator[list[Claim]]:
        """Renew ``claim`` in the background while the block runs (every third of ``claim_for``).

        Yields a one-element list holding the latest claim. A renewal that finds
        the claim lost cancels nothing: the next :meth:`reread`, :meth:`record`
        or :meth:`close` raises :class:`ClaimLost`.
        """
        latest = [claim]
        period = (every or self.claim_for / 3).total_seconds()

        async def loop() -> None:
            while True:
                await asyncio.sleep(period)
                try:
                    latest[0] = await self.renew(latest[0])
                except ClaimError as err:
                    log.warning("%s", err)
                    return
                except (ApiError, OSError, TimeoutError) as err:
                    log.warning("renewing the claim of %s/%s failed: %s", claim.namespace, claim.name, err)

        task = asyncio.create_task(loop())
        try:
            yield latest
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    # --- plumbing -----------------------------------------------------------------------

    def _check_holder(self, claim: Claim, body: JSON) -> None:
        """This healer (its own identity, whatever the claim object says) holds the open Incident."""
        if claim.identity != self.identity:
            raise NotHolder(claim.namespace, claim.name, f"the claim is {claim.identity}'s, not {self.identity}'s")
        status = claims.status_of(body)
        if status.claimed_by != self.identity:
            holder = status.claimed_by or "nobody"
            raise ClaimLost(claim.namespace, claim.name, f"claimed by {holder}, not {self.identity}")
        if claims.claim_state(status, self.identity, self.clock()) is ClaimState.CLOSED:
            raise ClaimLost(claim.namespace, claim.name, f"already {status.phase}")

    async def _update(self, claim: Claim, change: Callable[[IncidentStatus], IncidentStatus]) -> Claim:
        """Apply ``change`` to the current status while the claim is ours (conflicts re-read)."""
        body = claim.incident
        self._check_holder(claim, body)
        for _attempt in range(CONFLICT_ATTEMPTS):
            patch = claims.status_patch(change(claims.status_of(body)), str(body["metadata"]["resourceVersion"]))
            out = await self._patch(claim.namespace, claim.name, patch)
            if out is not None:
                return replace(claim, incident=out)
            fresh = await self.get(claim.namespace, claim.name)
            if fresh is None:
                raise ClaimLost(claim.namespace, claim.name, "deleted")
            self._check_holder(claim, fresh)
            body = fresh
        raise ClaimError(claim.namespace, claim.name, f"still conflicting after {CONFLICT_ATTEMPTS} attempts")

    async def _patch(self, ns: str, name: str, patch: JSON) -> JSON | None:
        """The resourceVersion-checked status write; None on a conflict or when the Incident is gone."""
        try:
            out = await self.client.merge_patch(incident_path(ns, name) + "/status", patch)
        except ApiError as err:
            if err.conflict:
                return None
            if err.not_found:
                self._gone(ns, name)
                return None
            raise
        self._seen(out)
        return out

    def _seen(self, body: JSON) -> None:
        if self._observe is not None:
            body.setdefault("apiVersion", f"{GROUP}/{VERSION}")
            body.setdefault("kind", "Incident")
            self._observe(body)

    def _gone(self, ns: str, name: str) -> None:
        if self._forget is not None:
            self._forget(ns, name)
