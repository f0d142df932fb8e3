"""Kopf registration: watch the three kinds and hand every event to the engine.

All handlers are ``async``: Kopf runs sync handlers in a thread pool, and the
engine's store and queue belong to the event loop. Only ``@kopf.index`` and
``@kopf.on.event`` handlers are used: they persist
nothing on the objects (no progress annotations, no finalizers), so the
operator's only writes are the ones the engine decides. The indexes also make
Kopf list every RegisteredModel and Incident before any snapshot is handled,
so a snapshot is never mistaken for an orphan during start-up.

PerformanceSnapshots are watched by the operator's own informer
(``controller.informer``) unless :func:`watch_snapshots_with_kopf` is called.
"""

from __future__ import annotations

import logging
from typing import Any

import kopf

from modelreg import GROUP, VERSION
from modelreg.controller.engine import Engine

log = logging.getLogger("modelreg.handlers")


def _engine(memo: Any) -> Engine:
    return memo["engine"]


@kopf.on.login()
def login(**kwargs: Any) -> kopf.ConnectionInfo | None:
    return kopf.login_with_service_account(**kwargs) or kopf.login_with_kubeconfig(**kwargs)


@kopf.index(GROUP, VERSION, "registeredmodels")
async def registered_models(body: kopf.Body, memo: kopf.Memo, **_: Any) -> None:
    _engine(memo).on_model("ADDED", dict(body))


@kopf.index(GROUP, VERSION, "incidents")
async def incident_index(body: kopf.Body, memo: kopf.Memo, **_: Any) -> None:
    _engine(memo).on_incident("ADDED", dict(body))


@kopf.on.event(GROUP, VERSION, "registeredmodels")
async def model_event(event: kopf.RawEvent, memo: kopf.Memo, **_: Any) -> None:
    engine = _engine(memo)
    engine.note_event("registeredmodels", event.get("type"))
    engine.on_model(event.get("type"), event["object"])


_kopf_watches_snapshots: list[bool] = []


async def snapshot_event(event: kopf.RawEvent, memo: kopf.Memo, **_: Any) -> None:
    engine = _engine(memo)
    engine.note_event("performancesnapshots", event.get("type"))
    engine.on_snapshot(event.get("type"), event["object"])


def watch_snapshots_with_kopf() -> None:
    """Let Kopf watch PerformanceSnapshots (peering or namespace globs; see ``informer``).

    Otherwise the operator's own :class:`~modelreg.controller.informer.SnapshotInformer`
    lists and watches them, and Kopf never sees the high-volume kind.
    """
    if _kopf_watches_snapshots:
        return
    _kopf_watches_snapshots.append(True)
    kopf.on.event(GROUP, VERSION, "performancesnapshots", id="snapshot_event")(snapshot_event)


@kopf.on.event(GROUP, VERSION, "incidents")
async def incident_event(event: kopf.RawEvent, memo: kopf.Memo, **_: Any) -> None:
    engine = _engine(memo)
    engine.note_event("incidents", event.get("type"))
    engine.on_incident(event.get("type"), event["object"])


@kopf.on.probe(id="queue")
async def queue_probe(memo: kopf.Memo, **_: Any) -> int:
    return _engine(memo).queue.depth
