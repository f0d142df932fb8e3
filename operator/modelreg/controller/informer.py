"""The operator's own list+watch of PerformanceSnapshots (the high-volume kind).

Kopf hands every object to a per-object worker task with its own logger, memory
and, at start-up, a wait on the index-readiness condition that every indexed
object's toggle wakes: with 10,000 snapshots and 1,400 models that wait alone
was a third of a 41-second restart (quadratic wake-ups), and Kopf's per-event
machinery a fifth of the operator's CPU under load. Snapshots carry no Kopf
handler state (the operator only uses event handlers for them), so a plain
informer loses nothing:

* :meth:`SnapshotInformer.prelist` runs inside Kopf's start-up handler, before
  Kopf opens any watch: it lists RegisteredModels, then Incidents, then
  snapshots (paginated) into the engine, and only then lets the work queue
  run. So no model is decided on before its Incidents and snapshots are known,
  and a snapshot whose model is missing really has none (as with Kopf's
  indexes, which still list models and Incidents afterwards: same or newer
  resourceVersions, which the store takes or ignores).
* :meth:`SnapshotInformer.run` watches from the listed resourceVersion with
  bookmarks, resumes from the last one seen after a timeout or a dropped
  connection, and lists again after 410 Gone. A re-list reports what was
  deleted during the gap (objects held, not listed, and not newer than the
  list) as deletions: Kopf's re-list never did, hence the engine's sweep.
* Failed requests back off 1, 2, 5, 10, 20 s and then every 30 s for as long as
  it takes (revoked RBAC, an API server upgrade), like Kopf's own watches here.

It is used when the operator runs standalone on the whole cluster or on exact
namespace names. With peering (HA), Kopf pauses its watches while another
replica leads and this informer could not follow that pause, and with namespace
globs Kopf discovers namespaces: both keep Kopf's snapshot watch.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

import aiohttp

from modelreg import GROUP, VERSION
from modelreg.controller.store import rv_int
from modelreg.kube.client import ApiError, path_for

if TYPE_CHECKING:
    from modelreg.controller.engine import Engine

log = logging.getLogger("modelreg.informer")

JSON = dict[str, Any]
PAGE = "250"
WATCH_SECONDS = "300"
RM_PLURAL, SNAP_PLURAL, INC_PLURAL = "registeredmodels", "performancesnapshots", "incidents"
# What a list or watch retries: API errors (403, 429, 5xx...), dropped connections, bad bodies.
RETRIED = (ApiError, aiohttp.ClientError, OSError, asyncio.TimeoutError, ValueError)


def backoffs() -> Iterator[float]:
    """1, 2, 5, 10, 20 s, then 30 s for ever (the same policy as Kopf's requests here)."""
    yield from (1.0, 2.0, 5.0, 10.0, 20.0)
    while True:
        yield 30.0


class Gone(Exception):
    """The watch's resourceVersion is too old (410): list again."""


class SnapshotInformer:
    """List+watch of PerformanceSnapshots into ``engine``, one stream per namespace (or cluster)."""

    def __init__(self, engine: Engine, namespaces: list[str]) -> None:
        self.engine = engine
        self.client = engine.client
        self.scopes: list[str | None] = list(namespaces) or [None]
        self._rv: dict[str | None, str] = {}
        self._tasks: list[asyncio.Task[None]] = []
        self.relists = 0

    # --- listing ---------------------------------------------------------------------

    async def _list(self, plural: str, namespace: str | None, each: Callable[[JSON], None]) -> str:
        """Hand every object of ``plural`` in scope to ``each``, page by page (a page is let go
        before the next is read, so a list of any size costs one page of memory); returns the
        list's resourceVersion."""
        token, rv = "", ""
        while True:
            params = {"limit": PAGE, **({"continue": token} if token else {})}
            page = await self.client.list(path_for(GROUP, VERSION, plural, namespace), **params)
            for item in page.get("items") or []:
                each(item)
            meta = page.get("metadata") or {}
            rv = rv or str(meta.get("resourceVersion") or "")  # a continued list keeps the first page's snapshot
            token = str(meta.get("continue") or "")
            del page
            if not token:
                return rv

    async def _retrying(self, what: str, call: Any) -> Any:
        delays = backoffs()
        while True:
            try:
                return await call()
            except RETRIED as err:
                delay = next(delays)
                log.error("%s failed (%s); retrying in %.0f s", what, err, delay)
                await asyncio.sleep(delay)

    async def prelist(self) -> None:
        """Models, then Incidents, then snapshots into the engine; then the queue may run."""
        engine = self.engine
        # A retried list hands out objects again: the store keeps the newest of each.
        on_model = functools.partial(engine.on_model, None)
        on_incident = functools.partial(engine.on_incident, None)
        for scope in self.scopes:
            await self._retrying(f"listing {RM_PLURAL}", lambda s=scope: self._list(RM_PLURAL, s, on_model))
            await self._retrying(f"listing {INC_PLURAL}", lambda s=scope: self._list(INC_PLURAL, s, on_incident))
        for scope in self.scopes:
            await self._relist(scope)
        engine.queue.resume()
        log.info(
            "listed %d models, %d incidents, %d snapshots",
            len(engine.store.models),
            len(engine.store.incidents),
            len(engine.store.snapshots),
        )

    async def _relist(self, scope: str | None) -> None:
        """List snapshots in ``scope``; what the store holds there but the list lacks was deleted."""
        present: set[tuple[str, str]] = set()

        def each(body: JSON) -> None:
            meta = body["metadata"]
            present.add((meta["namespace"], meta["name"]))
            self.engine.on_snapshot(None, body)

        rv = await self._retrying(f"listing {SNAP_PLURAL}", lambda: self._list(SNAP_PLURAL, scope, each))
        listed_at = rv_int(rv)
        gone = [
            key
            for key, rec in self.engine.store.snapshots.items()
            if (scope is None or key[0] == scope) and key not in present and rv_int(rec.resource_version) <= listed_at
        ]
        for ns, name in gone:
            self.engine.on_snapshot("DELETED", {"metadata": {"namespace": ns, "name": name}})
        if gone:
            log.info("re-list of %s: %d deleted while the watch was down, forgotten", SNAP_PLURAL, len(gone))
        self._rv[scope] = rv

    # --- watching --------------------------------------------------------------------

    def start(self) -> None:
        loop = asyncio.get_running_loop()
        self._tasks = [loop.create_task(self._watch_forever(scope)) for scope in self.scopes]

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            try:
                await task
            except asyncio.CancelledError:
                pass
            except Exception:  # its error was logged where it happened
                pass
        self._tasks = []

    async def _watch_forever(self, scope: str | None) -> None:
        delays = backoffs()
        while True:
            try:
                await self._watch_once(scope)
                delays = backoffs()  # a clean end (server timeout): resume at once
            except Gone:
                self.relists += 1
                log.info("watch of %s expired (410 Gone): listing again", SNAP_PLURAL)
                await self._relist(scope)
                delays = backoffs()
            except RETRIED as err:
                if isinstance(err, ApiError) and err.status == 410:
                    self.relists += 1
                    await self._relist(scope)
                    continue
                delay = next(delays)
                log.error("watch of %s failed (%s); resuming in %.0f s", SNAP_PLURAL, err, delay)
                await asyncio.sleep(delay)

    async def _watch_once(self, scope: str | None) -> None:
        params = {
            "resourceVersion": self._rv.get(scope, ""),
            "allowWatchBookmarks": "true",
            "timeoutSeconds": WATCH_SECONDS,
        }
        path = path_for(GROUP, VERSION, SNAP_PLURAL, scope)
        async for event in self.client.watch(path, **params):
            kind = event.get("type")
            obj = event.get("object") or {}
            if kind == "ERROR":
                if obj.get("code") == 410:
                    raise Gone()
                raise ApiError(int(obj.get("code") or 500), str(obj.get("reason", "")), str(obj.get("message", "")))
            rv = (obj.get("metadata") or {}).get("resourceVersion")
            if kind in ("ADDED", "MODIFIED", "DELETED"):
                self.engine.on_snapshot(kind, obj)
            if rv:
                self._rv[scope] = str(rv)
