"""Kopf registration: the queue probe, and (with peering or namespace globs) the watches.

Standalone on the whole cluster or on exact namespaces, the operator's own
informers (``controller.informer``) list and watch the three kinds, and Kopf
only runs the start-up and clean-up activities, the login and the liveness
endpoint. :func:`watch_with_kopf` registers Kopf's watches instead, for peering
(HA: Kopf pauses them while another replica leads) and namespace globs (Kopf
discovers the namespaces).

All handlers are ``async``: Kopf runs sync handlers in a thread pool, and the
engine's store and queue belong to the event loop. Only ``@kopf.index`` and
``@kopf.on.event`` handlers are used: they persist nothing on the objects (no
progress annotations, no finalizers), so the operator's only writes are the
ones the engine decides. The indexes also make Kopf list every
RegisteredModel and Incident before any snapshot is handled, so a snapshot is
never mistaken for an orphan during start-up.
"""

from __future__ import annotations

import logging
from typing import Any, cast

import kopf

from modelreg import GROUP, VERSION
from modelreg.controller.engine import Engine

log = logging.getLogger("modelreg.handlers")


def _engine(memo: Any) -> Engine:
    return cast(Engine, memo["engine"])


# Kopf's login handler is ``controller.auth``'s: the operator's own credentials.


@kopf.on.probe(id="queue")
async def queue_probe(memo: kopf.Memo, **_: Any) -> int:
    return _engine(memo).queue.depth


async def registered_models(body: kopf.Body, memo: kopf.Memo, **_: Any) -> None:
    _engine(memo).on_model("ADDED", dict(body))


async def incident_index(body: kopf.Body, memo: kopf.Memo, **_: Any) -> None:
    _engine(memo).on_incident("ADDED", dict(body))


async def model_event(event: kopf.RawEvent, memo: kopf.Memo, **_: Any) -> None:
    engine = _engine(memo)
    engine.note_event("registeredmodels", event.get("type"))
    engine.on_model(event.get("type"), cast(dict[str, Any], event["object"]))


async def snapshot_event(event: kopf.RawEvent, memo: kopf.Memo, **_: Any) -> None:
    engine = _engine(memo)
    engine.note_event("performancesnapshots", event.get("type"))
    engine.on_snapshot(event.get("type"), cast(dict[str, Any], event["object"]))


async def incident_event(event: kopf.RawEvent, memo: kopf.Memo, **_: Any) -> None:
    engine = _engine(memo)
    engine.note_event("incidents", event.get("type"))
    engine.on_incident(event.get("type"), cast(dict[str, Any], event["object"]))


_registered: list[bool] = []


def watch_with_kopf() -> None:
    """Let Kopf watch the three kinds (peering or namespace globs; see the module docstring)."""
    if _registered:
        return
    _registered.append(True)
    kopf.index(GROUP, VERSION, "registeredmodels", id="registered_models")(registered_models)
    kopf.index(GROUP, VERSION, "incidents", id="incident_index")(incident_index)
    kopf.on.event(GROUP, VERSION, "registeredmodels", id="model_event")(model_event)
    kopf.on.event(GROUP, VERSION, "performancesnapshots", id="snapshot_event")(snapshot_event)
    kopf.on.event(GROUP, VERSION, "incidents", id="incident_event")(incident_event)
