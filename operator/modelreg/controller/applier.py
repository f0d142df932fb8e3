"""The applier: executes a pass's :class:`~modelreg.core.passplan.Writes` and reports what happened.

It decides nothing. :meth:`Applier.write_incidents` opens the Incidents of a
pass's :class:`~modelreg.core.passplan.Opening` and counts snapshots into them
(Incidents are written first, one write per Incident);
:meth:`Applier.sync_serving` and :meth:`Applier.apply_cards` apply the serving
workloads and the model cards and report their outcome. Version
statuses are written resourceVersion-checked in the plan's order; a conflict
that is more than another writer's own condition means the plan was made on
stale data: the applier stops there (``Applied.stale``) and the engine runs the
model again. Then the Incidents are closed, the snapshot statuses written
(several at a time), and the Events posted.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from modelreg import API_VERSION, metrics
from modelreg.api.models import IncidentStatus, ModelCardRef, RegisteredModelStatus
from modelreg.controller.closing import IncidentCloser
from modelreg.controller.events import EventRecorder
from modelreg.controller.serving import ModelServing, ServingResult, sync_model
from modelreg.controller.store import JSON, LAST_APPLIED, SnapshotRec, Store, utcnow
from modelreg.core import incidents as inc
from modelreg.core import lifecycle, modelcard
from modelreg.core.conditions import RM_CONDITION_TYPES, set_condition
from modelreg.core.names import label_value
from modelreg.core.passplan import WriteIncident, Writes, doomed
from modelreg.core.statuspatch import guarded_status_ops
from modelreg.healing import Claim
from modelreg.kube.client import ApiError, KubeClient
from modelreg.kube.paths import config_map_path, inc_path, rm_path, snap_path

log = logging.getLogger("modelreg.engine")

#: Snapshot status writes and retention deletes in flight at once for one model.
WRITES_IN_FLIGHT = 16


def merge_diff(old: Any, new: Any) -> Any:
    """A JSON merge patch turning ``old`` into ``new`` (lists replaced whole)."""
    if not isinstance(old, dict) or not isinstance(new, dict):
        return new
    out: JSON = {}
    for key in old.keys() - new.keys():
        out[key] = None
    for key, value in new.items():
        if key not in old:
            out[key] = value
        elif old[key] != value:
            out[key] = merge_diff(old[key], value)
    return out


def material(body: JSON) -> tuple[Any, ...]:
    """What a reconcile's decisions about a RegisteredModel depend on.

    Everything but the status conditions other writers own (a user's or another
    controller's condition type): a change to only those neither invalidates a
    plan nor may be overwritten by it.
    """
    meta = body.get("metadata", {})
    status = dict(body.get("status") or {})
    conditions = [c for c in status.pop("conditions", None) or [] if is_ours(c)]
    # The store drops kubectl's last-applied copy (see store.trim); a listed body still has it.
    annotations = {k: v for k, v in (meta.get("annotations") or {}).items() if k != LAST_APPLIED}
    return (meta.get("generation"), annotations, body.get("spec"), status, conditions)


def is_ours(condition: Mapping[str, Any]) -> bool:
    """A RegisteredModel condition the engine writes (any other type is another writer's)."""
    return condition.get("type") in RM_CONDITION_TYPES


async def in_batches(calls: list[Awaitable[None]]) -> None:
    """Await ``calls`` in order, WRITES_IN_FLIGHT at a time."""
    for i in range(0, len(calls), WRITES_IN_FLIGHT):
        await asyncio.gather(*calls[i : i + WRITES_IN_FLIGHT])


@dataclass
class Applied:
    """What applying a plan did."""

    #: Versions whose status is as planned now (written, unchanged, or found deleted), in order.
    written: list[str] = field(default_factory=list)
    #: A version write found the model changed: nothing after it was applied; run the model again.
    stale: bool = False


class Applier:
    def __init__(self, client: KubeClient, store: Store, closer: IncidentCloser, events: EventRecorder) -> None:
        self.client = client
        self.store = store
        self.closer = closer
        self.events = events

    async def apply(
        self,
        ns: str,
        writes: Writes,
        bodies: list[JSON],
        claims: Mapping[str, Claim],
        now: datetime,
        opened: Sequence[datetime] = (),
    ) -> Applied:
        """Execute ``writes`` for the versions read as ``bodies``; ``claims``: the healer's, per Incident;
        ``opened``: creation times of the snapshots that opened an Incident (for breach → incident)."""
        applied = Applied()
        for step in writes.versions:
            if not await self.write_version_status(ns, step.name, bodies, step.status):
                applied.stale = True
                return applied
            applied.written.append(step.name)
        for close in writes.closes:
            r = close.remediation
            await self.closer.close(ns, r, now, claims.get(r.incident))  # the closedAt the cards were rendered with
        await in_batches([self.write_snapshot_status(ns, s.name, dict(s.status)) for s in writes.snapshots])
        for created in opened:
            metrics.breach_to_incident.observe(max(0.0, (utcnow() - created).total_seconds()))
        for post in writes.events:
            await self.events.post(ns, post.event, uid=post.uid)
        return applied

    async def write_version_status(self, ns: str, name: str, bodies: list[JSON], new: RegisteredModelStatus) -> bool:
        """Write one version's status, resourceVersion-checked; False when the plan is stale.

        On a conflict the object is read again: if only foreign conditions changed
        (another writer's own condition type), the same plan is written on top of
        them; any other change means the plan was made on stale data.
        """
        body = next(b for b in bodies if b["metadata"]["name"] == name)
        new_wire = new.wire()
        base = body
        for _attempt in range(5):
            try:
                if base is body:
                    diff = merge_diff(base.get("status") or {}, new_wire)
                    if not diff:
                        return True
                    patch = {"metadata": {"resourceVersion": base["metadata"]["resourceVersion"]}, "status": diff}
                    out = await self.client.merge_patch(rm_path(ns, name) + "/status", patch)
                else:
                    # Only another writer's conditions changed since the plan's read: a patch
                    # that tests what it replaces cannot be starved by that writer (core/statuspatch).
                    ops = guarded_status_ops(base, new_wire, is_ours, add_absent=True)
                    if ops == []:
                        return True
                    if ops is None:
                        return False
                    out = await self.client.json_patch(rm_path(ns, name) + "/status", ops)
            except ApiError as err:
                if err.not_found:
                    self.store.delete_model(ns, name)
                    return True
                if not (err.conflict or (base is not body and err.status == 422)):
                    raise
                fresh = await self.client.get(rm_path(ns, name))
                self.store.upsert_model(fresh)
                if material(fresh) != material(body):
                    return False
                base = fresh
                continue
            self.store.upsert_model(out)
            return True
        return False

    async def write_snapshot_status(self, ns: str, name: str, status: JSON) -> None:
        try:
            out = await self.client.merge_patch(snap_path(ns, name) + "/status", {"status": status})
        except ApiError as err:
            if err.not_found:
                self.store.delete_snapshot(ns, name)
                return
            raise
        self.store.upsert_snapshot(out)

    async def apply_cards(
        self,
        ns: str,
        views: dict[str, lifecycle.VersionView],
        statuses: dict[str, RegisteredModelStatus],
        jobs: dict[str, modelcard.CardJob],
    ) -> dict[str, ModelCardRef | None]:
        """Apply the rendered cards concurrently; the card reference each status gets."""
        done = await asyncio.gather(*(self.apply_card(ns, views[n], statuses[n], job) for n, job in jobs.items()))
        return {name: status.model_card for name, status in zip(jobs, done, strict=True)}

    async def apply_card(
        self, ns: str, view: lifecycle.VersionView, status: RegisteredModelStatus, job: modelcard.CardJob
    ) -> RegisteredModelStatus:
        cm_name = modelcard.config_map_name(view.name)
        body = {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {
                "name": cm_name,
                "namespace": ns,
                "labels": {
                    "app.kubernetes.io/managed-by": "modelreg",
                    "modelreg.io/registered-model": label_value(view.name),
                },
                "ownerReferences": [
                    {"apiVersion": API_VERSION, "kind": "RegisteredModel", "name": view.name, "uid": view.uid}
                ],
            },
            "data": {modelcard.CARD_KEY: modelcard.render_model_card(job.inputs)},
        }
        try:
            await self.client.apply(config_map_path(ns, cm_name), body)
        except ApiError as err:
            log.warning("model card %s/%s not written: %s", ns, cm_name, err)
            return status
        return status.model_copy(update={"model_card": job.ref(status)})

    async def sync_serving(
        self,
        ns: str,
        views: dict[str, lifecycle.VersionView],
        plan: lifecycle.ModelPlan,
        now: datetime,
        events: list[lifecycle.Event] | None = None,
    ) -> ServingResult | None:
        """Make every workload the model targets carry its live Production artifact (and canary).

        The decisions are :mod:`modelreg.core.serving`'s; ServingSynced, ``status.canary`` and
        the canary Events land on the versions concerned. Returns the Production version's result.
        """
        model_name = next((v.spec.model_name for v in views.values() if v.spec is not None), "")
        try:
            outcome = await sync_model(self.client, ns, model_name, views, plan.statuses, now)
        except ApiError as err:
            name = plan.production
            if name is None or views[name].spec is None or views[name].spec.serving is None:  # type: ignore[union-attr]
                return None
            outcome = ModelServing(results={name: ServingResult(False, "ApplyFailed", str(err))})
            outcome.production = outcome.results[name]
        for name, canary in outcome.canaries.items():
            plan.statuses[name] = plan.statuses[name].model_copy(update={"canary": canary})
        for name, result in outcome.results.items():
            status = plan.statuses[name]
            plan.statuses[name] = status.model_copy(
                update={
                    "conditions": set_condition(
                        status.conditions,
                        "ServingSynced",
                        result.ok,
                        result.reason,
                        result.message,
                        now,
                        views[name].generation,
                    )
                }
            )
            if not result.ok:
                log.warning("serving of %s/%s not synced: %s", ns, name, result.message)
        if events is not None:
            events.extend(outcome.events)
        return outcome.production

    async def retain(self, ns: str, name: str, limit: int) -> None:
        """Delete the version's evaluated history beyond ``limit``, oldest first (:func:`doomed`)."""
        evaluated = [s for s in self.store.snapshots_of(ns, name) if s.evaluated]
        if len(evaluated) <= limit:
            return
        cited: set[str] = set()
        for rec in self.store.incidents_of(ns, name):
            if rec.is_open:
                cited.update(rec.snapshots)
                cited.add(rec.body.get("spec", {}).get("trigger", {}).get("snapshot", ""))
        by_name = {s.name: s for s in evaluated}

        async def drop(snap: SnapshotRec) -> None:
            await self.client.delete(snap_path(ns, snap.name), precondition_uid=snap.uid)
            self.store.delete_snapshot(ns, snap.name)

        # Oldest first, several at a time: one at a time could not keep up with a
        # flood of snapshots for one version (the history grew without bound).
        await in_batches([drop(by_name[n]) for n in doomed([s.name for s in evaluated], cited, limit)])

    async def write_incidents(self, ns: str, planned: Sequence[WriteIncident], now: datetime) -> bool:
        """Step 0 of a pass: each planned Incident created or counted into, in order.

        False when one is found gone (its episode ended while the pass was decided):
        nothing after it is written, and the queue runs the model again.
        """
        for write in planned:
            if not await self.write_incident(ns, write, now):
                return False
        return True

    async def write_incident(self, ns: str, write: WriteIncident, now: datetime) -> bool:
        """Open the Incident (owned by the version) and/or count snapshots into it; a create
        that finds it existing (a redelivery after a kill) counts its trigger too.
        False: it no longer exists."""
        counts = write.snapshots
        if write.create is not None:
            body: JSON = {
                "apiVersion": API_VERSION,
                "kind": "Incident",
                "metadata": {
                    "name": write.name,
                    "namespace": ns,
                    "labels": write.create.labels,
                    "ownerReferences": [
                        {
                            "apiVersion": API_VERSION,
                            "kind": "RegisteredModel",
                            "name": write.version,
                            "uid": write.version_uid,
                        }
                    ],
                },
                "spec": write.create.spec.wire(),
            }
            created, fresh = await self.client.create(inc_path(ns), body)
            self.store.upsert_incident(created)
            if fresh:
                metrics.incidents_opened.labels(write.create.spec.severity).inc()
            else:
                counts = (write.create.spec.trigger.snapshot, *counts)
            if not counts:
                return True
        held = self.store.incidents.get((ns, write.name))
        if held is None:
            return False
        guarded = False
        for _attempt in range(5):
            counted = inc.count_into(held.body, counts, now)
            if counted is None:
                return True
            try:
                if not guarded:
                    # Only the fields counting changed: another writer's conditions or claim
                    # are never written back (the resourceVersion makes the read current).
                    old_status = IncidentStatus.model_validate(held.body.get("status") or {}).wire()
                    patch = {
                        "metadata": {"resourceVersion": held.body["metadata"]["resourceVersion"]},
                        "status": merge_diff(old_status, counted.wire()),
                    }
                    out = await self.client.merge_patch(inc_path(ns, write.name) + "/status", patch)
                else:
                    # After a conflict: the same count as a patch that tests the count it
                    # replaces, so a user acknowledging the Incident over and over cannot
                    # starve it. A first count (no count stored yet) cannot be tested.
                    ops = guarded_status_ops(held.body, counted.wire(), lambda _c: False, add_absent=False)
                    if not ops:
                        guarded = False
                        continue
                    out = await self.client.json_patch(inc_path(ns, write.name) + "/status", ops)
                self.store.upsert_incident(out)
                return True
            except ApiError as err:
                if err.not_found:
                    self.store.delete_incident(ns, write.name)
                    return False
                if not (err.conflict or (guarded and err.status == 422)):
                    raise
                guarded = True
                fresh_body = await self.client.get(inc_path(ns, write.name))
                self.store.upsert_incident(fresh_body)
                held = self.store.incidents[(ns, write.name)]
        # Five writers in a row got in first. Never report the snapshots as counted when they
        # are not: end the pass (no verdict is written, as after a kill) and let the queue
        # run the model again with backoff; counting is idempotent.
        raise ApiError(
            409, "Conflict", f"incident {write.name}: changed 5 times while counting {list(counts)}; will retry"
        )
