"""The operator's own list+watch of its three kinds, in place of Kopf's watches.

Kopf hands every object to a per-object worker task with its own logger and
memory and, at start-up, a wait on the index-readiness condition that every
indexed object's toggle wakes: with 10,000 snapshots and 1,400 models that
wait alone was a third of a 41-second restart (quadratic wake-ups), and with
the snapshots gone from Kopf, the models' own toggles still kept Kopf's
handlers waiting for 20-60 s after a restart. Kopf's per-event machinery was
also a fifth of the operator's CPU under load, where every status write comes
back as a watch event. The operator keeps no Kopf state on its objects (event
and index handlers only), so plain informers lose nothing:

* :meth:`Informers.prelist` runs inside Kopf's start-up handler: it lists
  RegisteredModels, then Incidents, then snapshots (page by page) into the
  engine, and only then lets the work queue run. So no model is decided on
  before its Incidents and snapshots are known, and a snapshot whose model is
  missing really has none.
* Each kind's watch starts from its list's resourceVersion with bookmarks,
  resumes from the last one seen after a timeout or a dropped connection, and
  lists again after 410 Gone. A re-list reports what was deleted during the
  gap (held, not listed, and not newer than the list) as deletions: Kopf's
  re-list never did, hence the engine's sweep on that path.
* Failed requests back off 1, 2, 5, 10, 20 s and then every 30 s for as long as
  it takes (revoked RBAC, an API server upgrade), like Kopf's watches here.

They are the operator's only watch path, in every mode: on the whole cluster,
on exact namespace names, and on namespaces found by a glob or by
``--namespace-selector`` (:mod:`modelreg.controller.namespaces` watches the
namespaces and adds or drops a scope here as one starts or stops matching).
With ``--leader-elect`` a standby replica lists and watches too; only the
engine's work queue waits for the Lease (:mod:`modelreg.controller.leader`).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

import aiohttp

from modelreg import GROUP, VERSION
from modelreg.controller.store import INC_PLURAL, RM_PLURAL, SNAP_PLURAL, Key, Store, rv_int
from modelreg.kube.client import ApiError, KubeClient, path_for

if TYPE_CHECKING:
    from modelreg.controller.engine import Engine

log = logging.getLogger("modelreg.informer")

JSON = dict[str, Any]
PAGE = "250"
WATCH_SECONDS = "300"
# What a list or watch retries: API errors (403, 429, 5xx...), dropped connections, bad bodies.
RETRIED = (ApiError, aiohttp.ClientError, OSError, asyncio.TimeoutError, ValueError)

Handler = Callable[[str | None, JSON], None]


def backoffs() -> Iterator[float]:
    """1, 2, 5, 10, 20 s, then 30 s for ever (the same policy as Kopf's requests here)."""
    yield from (1.0, 2.0, 5.0, 10.0, 20.0)
    while True:
        yield 30.0


async def list_pages(client: KubeClient, plural: str, scope: str | None, each: Callable[[JSON], None]) -> str:
    """Hand every object of ``plural`` in ``scope`` (a namespace, or None for all) to ``each``,
    page by page (a page is let go before the next is read, so a list of any size costs one
    page of memory); returns the list's resourceVersion."""
    token, rv = "", ""
    while True:
        params = {"limit": PAGE, **({"continue": token} if token else {})}
        page = await client.list(path_for(GROUP, VERSION, plural, scope), **params)
        for item in page.get("items") or []:
            each(item)
        meta = page.get("metadata") or {}
        rv = rv or str(meta.get("resourceVersion") or "")  # a continued list keeps the first page's snapshot
        token = str(meta.get("continue") or "")
        del page
        if not token:
            return rv


async def list_keys(client: KubeClient, plural: str, scope: str | None) -> tuple[set[Key], str]:
    """(namespace, name) of every object of ``plural`` in ``scope``, and the list's resourceVersion."""
    present: set[Key] = set()
    rv = await list_pages(client, plural, scope, lambda item: present.add(key_of(item)))
    return present, rv


def key_of(body: JSON) -> Key:
    return body["metadata"]["namespace"], body["metadata"]["name"]


def missing(held: dict[Key, str], present: set[Key], listed_rv: str) -> list[Key]:
    """What was deleted while not watched: held, not in the list, and not newer than the list."""
    listed_at = rv_int(listed_rv)
    return [key for key, rv in held.items() if key not in present and rv_int(rv) <= listed_at]


async def retrying(what: str, call: Callable[[], Any]) -> Any:
    delays = backoffs()
    while True:
        try:
            return await call()
        except RETRIED as err:
            delay = next(delays)
            log.error("%s failed (%s); retrying in %.0f s", what, err, delay)
            await asyncio.sleep(delay)


class Informer:
    """List+watch of one kind into a handler, one stream per namespace (or the cluster).

    ``handler(type, body)`` gets listed objects with type None, then the watch's
    ADDED, MODIFIED and DELETED events; a re-list reports the objects the store
    holds but the list lacks as deleted.
    """

    def __init__(
        self, engine: Engine, plural: str, namespaces: list[str], handler: Handler, *, dynamic: bool = False
    ) -> None:
        self.client = engine.client
        self.store: Store = engine.store
        self.plural = plural
        # No namespaces: the whole cluster, unless they are found at run time (dynamic).
        self.scopes: list[str | None] = list(namespaces) if dynamic else (list(namespaces) or [None])
        self.handler = handler
        self._rv: dict[str | None, str] = {}
        self._tasks: dict[str | None, asyncio.Task[None]] = {}
        self.relists = 0

    async def relist(self, scope: str | None) -> None:
        """List ``scope``; what the engine holds there but the list lacks was deleted.

        A retried list hands out objects again: the store keeps the newest of each.
        """
        present: set[Key] = set()

        def each(body: JSON) -> None:
            present.add(key_of(body))
            self.handler(None, body)

        rv = await retrying(f"listing {self.plural}", lambda: list_pages(self.client, self.plural, scope, each))
        gone = missing(self.store.resource_versions(self.plural, scope), present, rv)
        for ns, name in gone:
            self.handler("DELETED", {"metadata": {"namespace": ns, "name": name}})
        if gone:
            log.info("re-list of %s: %d deleted while the watch was down, forgotten", self.plural, len(gone))
        self._rv[scope] = rv

    def start(self) -> None:
        for scope in self.scopes:
            self.start_scope(scope)

    def start_scope(self, scope: str | None) -> None:
        """Watch ``scope`` (from the resourceVersion of its last list), if not watched yet."""
        if scope not in self.scopes:
            self.scopes.append(scope)
        if scope not in self._tasks:
            self._tasks[scope] = asyncio.get_running_loop().create_task(self._watch_forever(scope))

    async def stop_scope(self, scope: str | None) -> None:
        """Stop watching ``scope`` (a namespace this instance no longer owns)."""
        task = self._tasks.pop(scope, None)
        if scope in self.scopes:
            self.scopes.remove(scope)
        self._rv.pop(scope, None)
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)

    async def stop(self) -> None:
        tasks = list(self._tasks.values())
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._tasks = {}

    async def _watch_forever(self, scope: str | None) -> None:
        delays = backoffs()
        loop = asyncio.get_running_loop()
        while True:
            try:
                started = loop.time()
                await self._watch_once(scope)
                delays = backoffs()  # a clean end (the server's timeout): resume at once...
                if loop.time() - started < 1.0:
                    await asyncio.sleep(1.0)  # ...but never in a tight loop of empty streams
            except RETRIED as err:
                if isinstance(err, ApiError) and err.status == 410:  # the resourceVersion is too old
                    self.relists += 1
                    log.info("watch of %s expired (410 Gone): listing again", self.plural)
                    await self.relist(scope)
                    delays = backoffs()
                    continue
                delay = next(delays)
                log.error("watch of %s failed (%s); resuming in %.0f s", self.plural, err, delay)
                await asyncio.sleep(delay)

    async def _watch_once(self, scope: str | None) -> None:
        params = {
            "resourceVersion": self._rv.get(scope, ""),
            "allowWatchBookmarks": "true",
            "timeoutSeconds": WATCH_SECONDS,
        }
        path = path_for(GROUP, VERSION, self.plural, scope)
        async for event in self.client.watch(path, **params):
            kind = event.get("type")
            obj = event.get("object") or {}
            if kind == "ERROR":
                raise ApiError(int(obj.get("code") or 500), str(obj.get("reason", "")), str(obj.get("message", "")))
            if kind in ("ADDED", "MODIFIED", "DELETED"):
                self.handler(kind, obj)
            rv = (obj.get("metadata") or {}).get("resourceVersion")
            if rv:
                self._rv[scope] = str(rv)


class Informers:
    """The engine's three informers: models, Incidents, snapshots."""

    def __init__(self, engine: Engine, namespaces: list[str], *, dynamic: bool = False) -> None:
        self.engine = engine
        self.models = Informer(engine, RM_PLURAL, namespaces, engine.on_model, dynamic=dynamic)
        self.incidents = Informer(engine, INC_PLURAL, namespaces, engine.on_incident, dynamic=dynamic)
        self.snapshots = Informer(engine, SNAP_PLURAL, namespaces, engine.on_snapshot, dynamic=dynamic)
        self.all = (self.models, self.incidents, self.snapshots)

    async def prelist(self, *, resume: bool = True) -> None:
        """Models, then Incidents, then snapshots into the engine; then the queue may run
        (``resume=False``: the leader elector resumes it once this replica leads)."""
        for informer in self.all:
            for scope in informer.scopes:
                await informer.relist(scope)
        if resume:
            self.engine.queue.resume()
        store = self.engine.store
        counts = len(store.models), len(store.incidents), len(store.snapshots)
        log.info("listed %d models, %d incidents, %d snapshots", *counts)

    def start(self) -> None:
        for informer in self.all:
            informer.start()

    async def stop(self) -> None:
        await asyncio.gather(*(informer.stop() for informer in self.all))

    async def add_namespace(self, namespace: str) -> None:
        """Start owning ``namespace``: list its models, Incidents and snapshots, hand them to the
        engine in that order with no pause in between (so no model of it is decided on before its
        Incidents and snapshots are known, even with the queue running), then watch it."""
        if namespace in self.models.scopes:
            return
        listed: list[tuple[Informer, list[JSON], str]] = []
        for informer in self.all:

            async def one(inf: Informer = informer) -> tuple[list[JSON], str]:
                items: list[JSON] = []  # fresh on every try: a retried list hands out objects again
                return items, await list_pages(inf.client, inf.plural, namespace, items.append)

            items, rv = await retrying(f"listing {informer.plural} in {namespace}", one)
            listed.append((informer, items, rv))
        for informer, items, rv in listed:
            for item in items:
                informer.handler(None, item)
            informer._rv[namespace] = rv
        for informer, _, _ in listed:
            informer.start_scope(namespace)
        log.info("namespace %s: owned (%s)", namespace, ", ".join(f"{len(i)} {inf.plural}" for inf, i, _ in listed))

    async def drop_namespace(self, namespace: str) -> None:
        """Stop owning ``namespace``: stop its watches and forget its objects (nothing is deleted)."""
        await asyncio.gather(*(informer.stop_scope(namespace) for informer in self.all))
        forgotten = self.engine.forget_namespace(namespace)
        log.info("namespace %s: let go (%d objects forgotten, nothing deleted)", namespace, forgotten)
