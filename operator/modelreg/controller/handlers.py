"""Kopf registration: the queue probe (the login handler is ``controller.auth``'s).

The operator's own informers (``controller.informer``) list and watch the three
kinds in every mode (the whole cluster, exact namespaces, globs, a namespace
selector; standby replicas under ``--leader-elect`` too). Kopf only runs the
start-up and clean-up activities, the login and the liveness endpoint, and
watches nothing: it writes nothing on the objects (no progress annotations, no
finalizers), so the operator's only writes are the ones the engine decides.

All handlers are ``async``: Kopf runs sync handlers in a thread pool, and the
engine's store and queue belong to the event loop.
"""

from __future__ import annotations

import logging
from typing import Any, cast

import kopf

from modelreg.controller.engine import Engine

log = logging.getLogger("modelreg.handlers")


def _engine(memo: Any) -> Engine:
    return cast(Engine, memo["engine"])


# Kopf's login handler is ``controller.auth``'s: the operator's own credentials.


@kopf.on.probe(id="queue")
async def queue_probe(memo: kopf.Memo, **_: Any) -> int:
    return _engine(memo).queue.depth
