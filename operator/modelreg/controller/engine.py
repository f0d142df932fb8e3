"""The thin shell: read the store, call the pure core, write the results.

All decisions for one ``(namespace, modelName)`` run through one key of the
work queue, so they are serialized. One run:

1. evaluates the model's unevaluated snapshots in window order
   (:func:`modelreg.core.evaluation.evaluate`), folds each into its version
   (:func:`modelreg.core.lifecycle.apply_snapshot`) and decides to open or count
   the episode's Incident (:func:`modelreg.core.incidents.decide`), one planned
   write per Incident (:func:`modelreg.core.passplan.with_incident`);
2. decides every version's stage and status (:func:`modelreg.core.lifecycle.reconcile`)
   and the healer's and the manual rollbacks (:mod:`modelreg.core.remediation`),
   all without I/O;
3. applies the :class:`~modelreg.core.passplan.Opening`: the Incidents first, then
   the healer's claims (an Incident found gone or a claim lost ends the pass and
   the model runs again); then serving and cards;
4. turns the outcome into a :class:`~modelreg.core.passplan.Writes` plan
   (:func:`~modelreg.core.passplan.plan_writes`) that :mod:`modelreg.controller.applier`
   executes: version statuses (resourceVersion-checked), Incident closes, snapshot
   statuses, Events; then retention and the next time-based look.

The write order makes a kill at any instant safe: an Incident is created under
a name derived from the opening snapshot's UID (a repeat is a no-op), a
version's ``lastSnapshot`` marks which snapshots it has counted (a redelivered
snapshot is never counted twice), and a snapshot without a verdict is simply
evaluated again after a restart.
"""

from __future__ import annotations

import asyncio
import fnmatch
import logging
import time
from collections import OrderedDict
from collections.abc import Hashable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from pydantic import ValidationError

from modelreg import API_VERSION, metrics
from modelreg.api.models import (
    IncidentRef,
    IncidentStatus,
    PerformanceSnapshotSpec,
    PerformanceSnapshotStatus,
    RegisteredModelSpec,
    RegisteredModelStatus,
)
from modelreg.controller.applier import Applied, Applier, material
from modelreg.controller.closing import IncidentCloser
from modelreg.controller.events import EventRecorder
from modelreg.controller.healer import Healer
from modelreg.controller.store import (
    JSON,
    IncidentRec,
    SnapshotRec,
    Store,
    utcnow,
)
from modelreg.core import gauges, lifecycle, modelcard, timefmt
from modelreg.core import incidents as inc
from modelreg.core.durations import parse_duration
from modelreg.core.evaluation import Evaluation, evaluate
from modelreg.core.lifecycle import later
from modelreg.core.passplan import Opening, TakeClaim, WriteIncident, Writes, plan_writes, with_incident
from modelreg.core.policy import Defaults, effective_policy
from modelreg.core.remediation import Remediation, manual_remediation, rollback_events, served
from modelreg.healing import Claim
from modelreg.kube.client import KubeClient
from modelreg.kube.paths import inc_path, rm_path, snap_path

log = logging.getLogger("modelreg.engine")

#: Snapshots of one version evaluated per pass (the rest in the next pass, right after).
SNAPSHOTS_PER_PASS = 64


def _error_text(err: ValidationError) -> str:
    parts = []
    for e in err.errors()[:5]:
        loc = ".".join(str(p) for p in e["loc"])
        parts.append(f"spec.{loc}: {e['msg']}")
    return "; ".join(parts)


class _Lru(OrderedDict[str, Any]):
    """A dict that keeps only its ``size`` most recently used entries."""

    def __init__(self, size: int) -> None:
        super().__init__()
        self.size = size

    def hit(self, key: str) -> Any:
        value = self.get(key)
        if value is not None:
            self.move_to_end(key)
        return value

    def put(self, key: str, value: Any) -> None:
        self[key] = value
        self.move_to_end(key)
        if len(self) > self.size:
            self.popitem(last=False)


#: Parsed objects are ~16 KiB per version (a status with its conditions, history and
#: policy): the most recently used ones are kept, not one per version of the fleet.
PARSE_CACHE_SIZE = 2048
# Per RegisteredModel (by uid): the latest parse of its spec and of its status.
# A parsed status is about 18 KiB and parsing one about 90 µs; every status write of ours
# changes the resourceVersion (a miss anyway), so only the hot siblings are worth keeping:
# at 1,400 versions the full cache was 25 MiB for a saving of well under 1% of a core.
STATUS_CACHE_SIZE = 256
_SPEC_CACHE = _Lru(PARSE_CACHE_SIZE)  # uid -> (generation, defaults, spec, error, policy)
_STATUS_CACHE = _Lru(STATUS_CACHE_SIZE)  # uid -> (resourceVersion, status)


def forget_parsed(uid: str) -> None:
    _SPEC_CACHE.pop(uid, None)
    _STATUS_CACHE.pop(uid, None)


def parsed_spec(body: JSON, defaults: Defaults | None = None) -> tuple[Any, str | None, Any]:
    """(spec, error text, effective policy) of a RegisteredModel body, kept per uid + generation."""
    meta = body["metadata"]
    uid = str(meta.get("uid", ""))
    generation = int(meta.get("generation") or 0)
    hit = _SPEC_CACHE.hit(uid) if uid else None
    if hit is not None and hit[0] == generation and hit[1] == defaults:
        return hit[2], hit[3], hit[4]
    spec = None
    error = None
    try:
        spec = RegisteredModelSpec.model_validate(body.get("spec") or {})
    except ValidationError as err:
        error = _error_text(err)
    policy = effective_policy(spec, defaults) if spec is not None and defaults is not None else None
    if uid:
        _SPEC_CACHE.put(uid, (generation, defaults, spec, error, policy))
    return spec, error, policy


def version_view(body: JSON, defaults: Defaults | None = None) -> lifecycle.VersionView:
    """The lifecycle's view of a RegisteredModel body.

    Parsing a spec (and merging its policy) depends only on uid + generation, a
    status only on uid + resourceVersion: the latest of each is kept per object,
    so a reconcile does not re-validate every sibling on every snapshot.
    """
    meta = body["metadata"]
    uid = str(meta.get("uid", ""))
    generation = int(meta.get("generation") or 0)
    spec, error, policy = parsed_spec(body, defaults)
    rv = str(meta.get("resourceVersion", ""))
    seen = _STATUS_CACHE.hit(uid) if uid else None
    if seen is not None and rv and seen[0] == rv:
        status = seen[1]
    else:
        try:
            status = RegisteredModelStatus.model_validate(body.get("status") or {})
        except ValidationError:
            status = RegisteredModelStatus()  # unreadable status: rebuilt from scratch
        if uid and rv:
            _STATUS_CACHE.put(uid, (rv, status))
    return lifecycle.VersionView(
        name=meta["name"],
        created=timefmt.parse_or_none(meta.get("creationTimestamp")) or datetime.fromtimestamp(0, UTC),
        generation=generation,
        spec=spec,
        status=status,
        annotations=meta.get("annotations") or {},
        spec_error=error,
        uid=uid,
        policy=policy,
    )


def planned_incident(ns: str, decision: inc.CreateIncident, now: datetime) -> JSON:
    """The Incident ``decision`` creates, as the pass decides with it before it is written."""
    return {
        "apiVersion": API_VERSION,
        "kind": "Incident",
        "metadata": {"name": decision.name, "namespace": ns, "creationTimestamp": timefmt.rfc3339(now)},
        "spec": decision.spec.wire(),
    }


@dataclass
class _Pass:
    """What one pass over a model has read and decided so far."""

    ns: str
    model_name: str
    bodies: list[JSON]
    views: dict[str, lifecycle.VersionView]
    statuses: dict[str, RegisteredModelStatus]
    now: datetime
    events: list[lifecycle.Event] = field(default_factory=list)
    snapshot_writes: list[tuple[SnapshotRec, JSON]] = field(default_factory=list)
    #: Snapshots that opened an Incident (breach → incident latency).
    opened: list[SnapshotRec] = field(default_factory=list)
    remediations: list[Remediation] = field(default_factory=list)
    #: Incident → the built-in healer's claim on it.
    held: dict[str, Claim] = field(default_factory=dict)
    #: Rollbacks decided (for the rollback metrics, counted once the claims are taken).
    outcomes: list[lifecycle.RollbackOutcome] = field(default_factory=list)
    #: The Incidents this pass opens or counts into (written first, :class:`Opening`).
    incident_writes: tuple[WriteIncident, ...] = ()
    #: Version → its episode's Incident as it will be once they are written.
    episodes: dict[str, inc.EpisodeIncident] = field(default_factory=dict)
    #: Version → the Incident this pass opens for it, as it will be once created.
    planned_open: dict[str, IncidentRec] = field(default_factory=dict)


@dataclass(frozen=True)
class Settings:
    defaults: Defaults
    identity: str = "modelreg"
    claim_seconds: float = 30.0
    builtin_healer: bool = True
    #: Namespace globs whose objects this operator leaves alone (it still watches cluster-wide).
    exclude_namespaces: tuple[str, ...] = ()


class Engine:
    def __init__(self, client: KubeClient, settings: Settings, *, workers: int = 8) -> None:
        from modelreg.controller.queue import WorkQueue

        self.client = client
        self.settings = settings
        self.defaults = settings.defaults
        self.store = Store()
        self.events = EventRecorder(client, settings.identity)
        # Paused until Kopf delivers its first watch event: Kopf calls event handlers only
        # once every index (models, incidents) has been listed, so no model is decided on
        # before its Incidents are known (a card rendered without them, then again with them).
        self.queue = WorkQueue(self._process, workers=workers, paused=True)
        self.orphan_ttl = parse_duration(self.defaults.orphan_ttl)
        self.incident_ttl = parse_duration(self.defaults.incident_ttl)
        self.closer = IncidentCloser(
            client, self.store, self.events, settings.identity, timedelta(seconds=settings.claim_seconds)
        )
        self.applier = Applier(client, self.store, self.closer, self.events)
        self.healer = (
            Healer(self.store, self.queue, self.closer, self.defaults, self.versions_moved)
            if settings.builtin_healer
            else None
        )
        self.poller: Any = None  # MetricSource polling (controller.poller), when started
        self._card_keys: dict[str, tuple[Any, str]] = {}

    # --- watch-event entry points (called from Kopf handlers; never block) ---------------

    def forget_namespace(self, namespace: str) -> int:
        """Drop every object of ``namespace`` from the store, scheduling and writing nothing (a shard
        let the namespace go: another instance owns it now). Returns how many were forgotten;
        queued keys of the namespace find nothing when they run."""
        count = 0
        for ns, name in [key for key in self.store.models if key[0] == namespace]:
            old = self.store.delete_model(ns, name)
            if old is not None:
                uid = str(old.get("metadata", {}).get("uid", ""))
                forget_parsed(uid)
                self._card_keys.pop(uid, None)
                spec = old.get("spec", {})
                metrics.forget_version(ns, str(spec.get("modelName", "")), str(spec.get("version", "")))
            count += 1
        for ns, name in [key for key in self.store.snapshots if key[0] == namespace]:
            self.store.delete_snapshot(ns, name)
            count += 1
        for ns, name in [key for key in self.store.incidents if key[0] == namespace]:
            self.store.delete_incident(ns, name)
            count += 1
        return count

    def excluded(self, namespace: str) -> bool:
        return any(fnmatch.fnmatchcase(namespace, glob) for glob in self.settings.exclude_namespaces)

    def on_model(self, event_type: str | None, body: JSON) -> None:
        meta = body["metadata"]
        ns, name = meta["namespace"], meta["name"]
        if self.excluded(ns):
            return
        if self.poller is not None:
            self.poller.on_model(event_type, body)
        if event_type == "DELETED":
            old = self.store.delete_model(ns, name)
            if old is not None:
                uid = str(old.get("metadata", {}).get("uid", ""))
                forget_parsed(uid)
                self._card_keys.pop(uid, None)
                model_name = str(old.get("spec", {}).get("modelName", ""))
                metrics.forget_version(ns, model_name, str(old.get("spec", {}).get("version", "")))
                self.queue.schedule(("model", ns, model_name))
                self.queue.schedule(("deleted", ns, name))
            return
        before = self.store.model_key(ns, name)
        if self.store.upsert_model(body):
            key = self.store.model_key(ns, name)
            if before is not None and before != key:
                self.queue.schedule(("model", *before))
            if key is not None:
                self.queue.schedule(("model", *key))

    def on_snapshot(self, event_type: str | None, body: JSON) -> None:
        meta = body["metadata"]
        ns, name = meta["namespace"], meta["name"]
        if self.excluded(ns):
            return
        if event_type == "DELETED":
            self.store.delete_snapshot(ns, name)
            return
        rec = self.store.upsert_snapshot(body)
        if rec is None:
            return
        if rec.evaluated:
            if event_type is None:
                self._listed_evaluated(rec)
            return
        self._schedule_snapshot(rec)

    def _listed_evaluated(self, rec: SnapshotRec) -> None:
        """An evaluated snapshot seen in a (re-)list: finish what a kill or an outage cut off.

        Retention runs after a model's writes, and a model deleted while the
        operator was down never sends its DELETED event: both leave evaluated
        snapshots nobody would look at again. Models and Incidents are listed
        before snapshots, so a missing model here is really gone.
        """
        body = self.store.model(rec.namespace, rec.model)
        if body is None:
            self.queue.schedule(("deleted", rec.namespace, rec.model))
            return
        limit = self._history_limit(parsed_spec(body, self.defaults)[0])
        if len(self.store.snapshots_by_model.get((rec.namespace, rec.model), {})) > limit:
            key = self.store.model_key(rec.namespace, rec.model)
            if key is not None:
                self.queue.schedule(("model", *key))

    def _schedule_snapshot(self, rec: SnapshotRec) -> None:
        key = self.store.model_key(rec.namespace, rec.model)
        if key is not None:
            self.queue.schedule(("model", *key), urgent=self._is_urgent(rec))
        else:
            self.queue.schedule(("orphan", rec.namespace, rec.name))

    def _is_urgent(self, rec: SnapshotRec) -> bool:
        """Whether ``rec`` may open an Incident: its model then skips the queue's backlog.

        The evaluation is the one the reconcile would make (pure, same policy
        object), so it is kept on the record and not repeated there.
        """
        body = self.store.model(rec.namespace, rec.model)
        if body is None:
            return False
        spec, _, policy = parsed_spec(body, self.defaults)
        if spec is None or policy is None:
            return False
        evaluation = self._evaluate(rec, policy)
        rec.evaluated_with = (policy, evaluation)
        if evaluation.verdict == "Critical":
            return True
        return evaluation.verdict == "Degraded" and policy.rollback_policy.incident_on_warning

    def on_incident(self, event_type: str | None, body: JSON) -> None:
        meta = body["metadata"]
        ns, name = meta["namespace"], meta["name"]
        if self.excluded(ns):
            return
        if event_type == "DELETED":
            held = self.store.incidents.get((ns, name))
            self.store.delete_incident(ns, name)
            key = self.store.model_key(ns, held.registered_model) if held is not None else None
            if key is not None:
                self.queue.schedule(("model", *key))  # its status.incident and card let it go
            return
        # The TTL timer is armed from every sighting, including the echo of our own
        # write (which the store already holds, so the early return below skips it).
        closed_at = timefmt.parse_or_none((body.get("status") or {}).get("closedAt"))
        if closed_at is not None and not inc.is_open(body.get("status")):
            self.queue.call_at(later(closed_at, self.incident_ttl), ("incident-ttl", ns, name))
        if not self.store.upsert_incident(body):
            return
        rm = str(body.get("spec", {}).get("modelRef", {}).get("name", ""))
        key = self.store.model_key(ns, rm)
        if key is not None:
            self.queue.schedule(("model", *key))

    # --- processing ---------------------------------------------------------------------

    async def _process(self, key: Hashable) -> None:
        assert isinstance(key, tuple)
        kind = key[0]
        started = time.perf_counter()
        try:
            if kind == "model":
                await self.reconcile_model(key[1], key[2])
            elif kind == "orphan":
                await self.handle_orphan(key[1], key[2])
            elif kind == "incident-ttl":
                await self.expire_incident(key[1], key[2])
            elif kind == "deleted":
                await self.cleanup_deleted_model(key[1], key[2])
            elif kind in ("poll", "probe") and self.poller is not None:
                await self.poller.handle(key)
        finally:
            metrics.handler_latency.observe(time.perf_counter() - started)
            metrics.queue_depth.set(self.queue.depth)

    async def reconcile_model(self, ns: str, model_name: str) -> None:
        """One pass over a model: decide, then write in the kill-safe order (:mod:`modelreg.core.passplan`)."""
        bodies = self.store.versions_of(ns, model_name)
        if not bodies:
            return
        now = utcnow()
        views = {b["metadata"]["name"]: version_view(b, self.defaults) for b in bodies}
        p = _Pass(ns, model_name, bodies, views, {name: v.status for name, v in views.items()}, now)
        self._evaluate_snapshots(p)
        self._refer_open_incidents(p)
        plan = self._decide_lifecycle(p)
        opening = Opening(p.incident_writes, self._decide_remediation(p, plan))
        if not await self._open(p, opening):
            return  # an Incident found gone, a claim lost, the model moved: it runs again
        await self._serve_and_render(p, plan)
        writes = plan_writes(
            plan.statuses,
            p.remediations,
            [(rec.name, status) for rec, status in p.snapshot_writes],
            p.events,
            {name: v.uid for name, v in views.items()},
            plan.requeue_at,
        )
        opened = [rec.created for rec in p.opened if rec.created is not None]
        applied = await self.applier.apply(ns, writes, bodies, p.held, now, opened)
        self._export_versions(p, writes, applied)
        if applied.stale:
            # Somebody else wrote a status in between: start again from what is stored now.
            self.queue.schedule(("model", ns, model_name))
            return
        for name, view in views.items():
            await self.applier.retain(ns, name, self._history_limit(view.spec))
        if writes.wake_up is not None:
            self.queue.call_at(writes.wake_up.at, ("model", ns, model_name))

    def _evaluate_snapshots(self, p: _Pass) -> None:
        """1. Each version's unevaluated snapshots in window order: evaluate, fold into the
        version, and decide to open or count the episode's Incident (no I/O: the Incident
        writes are planned in ``p.incident_writes`` and applied first, before anything else)."""
        for name in sorted(p.views):
            view = p.views[name]
            pending = [s for s in self.store.snapshots_of(p.ns, name) if not s.evaluated]
            if not pending:
                continue
            if len(pending) > SNAPSHOTS_PER_PASS:
                # Oldest first, a bounded batch per pass: retention runs after each batch,
                # so a flood never piles up evaluated history; the rest follows at once.
                pending = pending[:SNAPSHOTS_PER_PASS]
                self.queue.schedule(("model", p.ns, p.model_name))
            if view.spec is None:
                continue  # evaluated once the spec is fixed
            policy = view.policy or effective_policy(view.spec, self.defaults)
            for rec in pending:
                self._evaluate_one(p, name, view, policy, rec)

    def _evaluate_one(self, p: _Pass, name: str, view: lifecycle.VersionView, policy: Any, rec: SnapshotRec) -> None:
        """Evaluate ``rec`` into its version and plan the open or the count of its Incident."""
        evaluation = self._evaluate(rec, policy)
        effect = lifecycle.apply_snapshot(
            replace(view, status=p.statuses[name]), p.statuses[name], policy, evaluation, rec.name, rec.at, p.now
        )
        p.statuses[name] = effect.status
        p.snapshot_writes.append((rec, self._snapshot_status(evaluation, effect.stage, p.now)))
        metrics.snapshots_evaluated.labels(evaluation.verdict).inc()
        for b in evaluation.breaches:
            metrics.breaches.labels(b.criterion).inc()
        if not effect.counted:
            return
        restore = lifecycle.restore_target(p.statuses, exclude=name)
        restore_spec = p.views[restore].spec if restore else None
        episode = p.episodes.get(name) or self._episode(p.ns, name, p.statuses[name])
        decision = inc.decide(
            namespace=p.ns,
            registered_model=name,
            spec=view.spec,  # type: ignore[arg-type]  # evaluated only with a spec
            policy=policy,
            stage=effect.stage,
            evaluation=evaluation,
            rollback_due=effect.rollback_due,
            canary=effect.canary_incident,
            snapshot_name=rec.name,
            snapshot_uid=rec.uid,
            episode=episode,
            restore_version=restore_spec.version if restore_spec is not None else None,
        )
        if decision is None:
            return
        p.incident_writes = with_incident(p.incident_writes, view.name, view.uid, decision, rec.name)
        if isinstance(decision, inc.CreateIncident):
            p.planned_open[name] = IncidentRec(planned_incident(p.ns, decision, p.now))
            p.episodes[name] = inc.EpisodeIncident(name=decision.name, phase="Open", snapshots=(rec.name,))
            p.opened.append(rec)
            p.events.append(
                lifecycle.Event(
                    name,
                    "Warning",
                    "RollbackTriggered" if effect.rollback_due else "IncidentOpened",
                    f"incident {decision.name} ({decision.spec.severity}): {decision.spec.summary}",
                )
            )
        elif episode is not None:
            p.episodes[name] = replace(episode, snapshots=(*episode.snapshots, rec.name))
        held = p.planned_open.get(name)
        if held is None or held.name != decision.name:
            held = self.store.incidents.get((p.ns, decision.name))
        if held is not None:
            ref = IncidentRef(name=decision.name, severity=held.body["spec"]["severity"])
            p.statuses[name] = p.statuses[name].model_copy(update={"incident": ref})

    def _open_incident(self, p: _Pass, name: str) -> IncidentRec | None:
        """The open Incident of version ``name``: one this pass opens, else the stored one."""
        return p.planned_open.get(name) or self.store.open_incident(p.ns, name)

    def _refer_open_incidents(self, p: _Pass) -> None:
        """2. The open Incident each version points at (closed ones are let go)."""
        for name in p.views:
            p.statuses[name] = self._with_incident_ref(p, name, p.statuses[name])

    def _decide_lifecycle(self, p: _Pass) -> lifecycle.ModelPlan:
        """3. Stages, gates, conditions and health of the whole model."""
        plan = lifecycle.reconcile([replace(v, status=p.statuses[n]) for n, v in p.views.items()], self.defaults, p.now)
        p.events.extend(plan.events)
        return plan

    def _decide_remediation(self, p: _Pass, plan: lifecycle.ModelPlan) -> tuple[TakeClaim, ...]:
        """The healer's rollbacks (each to be claimed first) and the manual ones (same
        serialization), folded into ``plan``; the claims the healer must take come back."""
        steps: tuple[TakeClaim, ...] = ()
        if self.healer is not None:
            planned = self.healer.plan(
                p.ns, p.model_name, p.views, plan.statuses, p.now, lambda name: self._open_incident(p, name)
            )
            p.remediations = [x.remediation for x in planned]
            p.outcomes = [x.outcome for x in planned if x.outcome is not None]
            steps = tuple(TakeClaim(x.remediation.incident, x.remediation.version) for x in planned)
        for outcome in plan.rollbacks:
            p.outcomes.append(outcome)
            manual = self._manual_remediation(
                self._open_incident(p, outcome.rolled_back), outcome, p.remediations, p.now
            )
            if manual is not None:
                p.remediations.append(manual)
        if not p.remediations:
            return steps
        p.events.extend(rollback_events(p.remediations))
        # Re-derive conditions and health after the rollbacks.
        replan = lifecycle.reconcile(
            [replace(v, status=plan.statuses[n]) for n, v in p.views.items()], self.defaults, p.now
        )
        plan.statuses, plan.production = replan.statuses, replan.production
        if replan.requeue_at is not None:
            plan.requeue_at = min(filter(None, [plan.requeue_at, replan.requeue_at]))
        return steps

    async def _open(self, p: _Pass, opening: Opening) -> bool:
        """The pass's first writes: its Incidents, then the healer's claims on those it will
        remediate, before anything that records them. False when an Incident was found gone,
        a claim was lost or the model moved while the healer read it (the model runs again)."""
        if not await self.applier.write_incidents(p.ns, opening.incidents, p.now):
            self.queue.schedule(("model", p.ns, p.model_name))
            return False  # its episode ended meanwhile: the rerun opens the episode's new one
        if opening.claims and self.healer is not None:
            seen = {b["metadata"]["name"]: material(b) for b in p.bodies}
            held = await self.healer.take(p.ns, p.model_name, opening.claims, p.now, seen)
            if held is None:
                return False
            p.held = held
        for outcome in p.outcomes:
            metrics.rollbacks.labels(p.ns, p.model_name, outcome.reason).inc()
        return True

    async def _serve_and_render(self, p: _Pass, plan: lifecycle.ModelPlan) -> None:
        """4. Serving follows the live Production version; cards whose inputs changed are applied
        at the same time (independent objects: one round trip on the remediation path).

        A card shows each Incident as it will be once this pass closes it, so closing one does
        not cost a second render and status write. Which cards changed is decided first,
        without I/O: the common pass (a healthy snapshot) awaits nothing here."""
        ns, views, now = p.ns, p.views, p.now
        closing = {r.incident: r.phase for r in p.remediations}
        canaries_before = {n: st.canary for n, st in plan.statuses.items()}
        jobs = self._card_jobs(ns, views, plan.statuses, closing, now)
        if jobs:
            serving, cards = await asyncio.gather(
                self.applier.sync_serving(ns, views, plan, now, p.events),
                self.applier.apply_cards(ns, views, dict(plan.statuses), jobs),
            )
        else:
            serving, cards = await self.applier.sync_serving(ns, views, plan, now, p.events), {}
        served(p.remediations, serving, now)
        for name, card in cards.items():  # after serving, which replaces its version's status
            plan.statuses[name] = plan.statuses[name].model_copy(update={"model_card": card})
        moved = {n for n, st in plan.statuses.items() if st.canary != canaries_before.get(n)}
        if {r.incident: r.phase for r in p.remediations} != closing or moved:  # serving failed or a canary moved
            closing = {r.incident: r.phase for r in p.remediations}
            jobs = self._card_jobs(ns, views, plan.statuses, closing, now)
            for name, card in (await self.applier.apply_cards(ns, views, plan.statuses, jobs)).items():
                plan.statuses[name] = plan.statuses[name].model_copy(update={"model_card": card})

    def _export_versions(self, p: _Pass, writes: Writes, applied: Applied) -> None:
        """The stage, health and metric gauges of each version written."""
        for step in writes.versions[: len(applied.written)]:
            spec, new = p.views[step.name].spec, step.status
            if spec is None:
                continue
            metrics.set_version_series(p.ns, spec.model_name, spec.version, new.stage, new.health)
            metrics.set_version_values(
                p.ns,
                spec.model_name,
                spec.version,
                gauges.values(new),
                {(t.metric, t.bound): t.value for t in gauges.thresholds(new.effective_policy)},
            )

    # --- pieces -------------------------------------------------------------------------

    async def versions_moved(self, ns: str, model_name: str, seen: dict[str, Any]) -> bool:
        """Re-list the model's versions; True when any differs materially from ``seen``
        (name → :func:`material`; a foreign condition written meanwhile is no move).

        A healer acts on what it read; before it rolls back it re-reads the
        model (one list, no write) so that a sibling archived by another writer
        a moment ago is not missed.
        """
        listing = await self.client.list(rm_path(ns), fieldSelector=f"spec.modelName={model_name}")
        fresh: dict[str, tuple[Any, ...]] = {}
        for item in listing.get("items", []):
            item.setdefault("apiVersion", API_VERSION)
            item.setdefault("kind", "RegisteredModel")
            self.store.upsert_model(item)
            fresh[item["metadata"]["name"]] = material(item)
        return fresh != seen

    def _card_jobs(
        self,
        ns: str,
        views: dict[str, lifecycle.VersionView],
        statuses: dict[str, RegisteredModelStatus],
        closing: dict[str, str],
        now: datetime,
    ) -> dict[str, modelcard.CardJob]:
        """The versions whose card must be rendered again (decided without I/O: :func:`modelcard.card_job`)."""
        jobs = {
            name: modelcard.card_job(
                ns,
                name,
                view.uid,
                view.generation,
                view.spec,
                statuses[name],
                self._card_incidents(ns, name),
                self._card_keys,
                closing,
                now,
            )
            for name, view in views.items()
        }
        return {name: job for name, job in jobs.items() if job is not None}

    def _card_incidents(self, ns: str, name: str) -> list[modelcard.CardIncident]:
        return [
            modelcard.CardIncident(
                name=r.name,
                severity=str(r.body.get("spec", {}).get("severity", "")),
                phase=r.phase,
                summary=str(r.body.get("spec", {}).get("summary", "")),
                opened=timefmt.parse_or_none(r.body["metadata"].get("creationTimestamp")),
                closed=timefmt.parse_or_none(r.status.get("closedAt")),
            )
            for r in self.store.incidents_of(ns, name)
        ]

    @staticmethod
    def _manual_remediation(
        rec: IncidentRec | None, outcome: lifecycle.RollbackOutcome, taken: list[Remediation], now: datetime
    ) -> Remediation | None:
        """A manual rollback (annotation) closes the version's open Incident (``rec``) too."""
        if rec is None or any(r.incident == rec.name for r in taken):
            return None
        return manual_remediation(
            rec.name,
            IncidentStatus.model_validate(rec.status),
            str(rec.body.get("spec", {}).get("playbook", "model_rollback")),
            outcome,
            now,
            timefmt.parse_or_none(rec.body["metadata"].get("creationTimestamp")),
        )

    def _evaluate(self, rec: SnapshotRec, policy: Any) -> Evaluation:
        ahead = rec.evaluated_with
        if ahead is not None and ahead[0] is policy:
            return ahead[1]  # type: ignore[no-any-return]
        try:
            spec = PerformanceSnapshotSpec.model_validate(rec.spec or {})
        except ValidationError as err:
            return Evaluation(
                verdict="Inconclusive",
                reason=f"snapshot spec unreadable: {_error_text(err)}",
                breaches=[],
                warnings=[],
                missing=[],
                drift=None,
                metrics={},
            )
        return evaluate(spec, policy.rollback_policy)

    @staticmethod
    def _snapshot_status(evaluation: Evaluation, stage: str, now: datetime) -> JSON:
        status = PerformanceSnapshotStatus(
            verdict=evaluation.verdict,
            reason=evaluation.reason,
            breaches=evaluation.breaches,
            warnings=evaluation.warnings,
            missing=evaluation.missing,
            drift=evaluation.drift,
            stage=stage,  # type: ignore[arg-type]
            evaluated_at=now,
        )
        out = status.wire()
        out["orphanedAt"] = None
        return out

    def _episode(self, ns: str, name: str, status: RegisteredModelStatus) -> inc.EpisodeIncident | None:
        """The incident of the current degradation episode: the open one, else a Failed one
        while the breach streak has not been broken since."""
        rec = self.store.open_incident(ns, name)
        if rec is None and status.incident is not None and status.consecutive_breaches > 0:
            candidate = self.store.incidents.get((ns, status.incident.name))
            if candidate is not None and candidate.phase == "Failed":
                rec = candidate
        if rec is None:
            return None
        return inc.EpisodeIncident(name=rec.name, phase=rec.phase, snapshots=rec.snapshots)

    def _with_incident_ref(self, p: _Pass, name: str, status: RegisteredModelStatus) -> RegisteredModelStatus:
        rec = self._open_incident(p, name)
        if rec is not None:
            ref: IncidentRef | None = IncidentRef(name=rec.name, severity=rec.body["spec"]["severity"])
        elif status.incident is not None and status.consecutive_breaches > 0:
            held = self.store.incidents.get((p.ns, status.incident.name))
            ref = status.incident if held is not None and held.phase == "Failed" else None
        else:
            ref = None
        return status if status.incident == ref else status.model_copy(update={"incident": ref})

    def _history_limit(self, spec: RegisteredModelSpec | None) -> int:
        """spec.snapshotHistoryLimit, else the operator default."""
        if spec is not None and spec.snapshot_history_limit:
            return spec.snapshot_history_limit
        return self.defaults.snapshot_history_limit

    async def handle_orphan(self, ns: str, name: str) -> None:
        rec = self.store.snapshots.get((ns, name))
        if rec is None or rec.evaluated:
            return
        key = self.store.model_key(ns, rec.model)
        if key is not None:  # its model appeared meanwhile
            self.queue.schedule(("model", *key))
            return
        now = utcnow()
        if rec.orphaned_at is None:
            status = {
                "verdict": "Orphaned",
                "reason": f"RegisteredModel {rec.model!r} not found in namespace {ns}",
                "orphanedAt": timefmt.rfc3339(now),
            }
            await self.applier.write_snapshot_status(ns, name, status)
            rec = self.store.snapshots.get((ns, name)) or rec
            orphaned_at = now
        else:
            orphaned_at = rec.orphaned_at
        due = later(orphaned_at, self.orphan_ttl)
        if due <= now:
            await self.client.delete(snap_path(ns, name), precondition_uid=rec.uid)
            self.store.delete_snapshot(ns, name)
        else:
            self.queue.call_at(due, ("orphan", ns, name))

    async def expire_incident(self, ns: str, name: str) -> None:
        rec = self.store.incidents.get((ns, name))
        if rec is None or rec.is_open:
            return
        closed_at = timefmt.parse_or_none(rec.status.get("closedAt"))
        if closed_at is None:
            return
        due = later(closed_at, self.incident_ttl)
        if due > utcnow():
            self.queue.call_at(due, ("incident-ttl", ns, name))
            return
        await self.client.delete(inc_path(ns, name), precondition_uid=rec.body["metadata"].get("uid"))
        self.store.delete_incident(ns, name)

    async def cleanup_deleted_model(self, ns: str, name: str) -> None:
        """Snapshots of a deleted RegisteredModel are deleted with it (docs/evaluation.md)."""
        if self.store.model(ns, name) is not None:
            return  # re-created meanwhile
        for snap in list(self.store.snapshots_of(ns, name)):
            await self.client.delete(snap_path(ns, snap.name), precondition_uid=snap.uid)
            self.store.delete_snapshot(ns, snap.name)

    async def wait_idle(self, timeout: float | None = None) -> None:
        await self.queue.wait_idle(timeout)

    def start(self) -> None:
        self.queue.start()

    async def stop(self) -> None:
        await self.queue.stop()
        await asyncio.sleep(0)
