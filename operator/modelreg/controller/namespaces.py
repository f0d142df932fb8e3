"""Which namespaces this instance owns, when they are not named exactly: globs and shards.

``--namespace-selector LABELSELECTOR`` (sharding) and ``--namespace`` globs
(``team-*``, ``!iso-*``) name namespaces that come and go. This module lists
and watches Namespaces (server-side filtered by the selector, and matched here
too) and tells the informers, which then watch the three kinds cluster-wide, to
start owning a namespace that matches (:meth:`Informers.add_namespace`: its
objects listed, then its events handed on) or to let one go that stopped
matching or was deleted (:meth:`Informers.drop_namespace`: its events dropped
and its objects forgotten; nothing is deleted, the shard that owns it now
carries on). Exact ``--namespace`` names need none of this, nor any
cluster-scoped read.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from modelreg.controller.informer import RETRIED, backoffs, retrying
from modelreg.core.selector import Selector, glob_matches
from modelreg.kube.client import ApiError, KubeClient

if TYPE_CHECKING:
    from modelreg.controller.informer import Informers

log = logging.getLogger("modelreg.namespaces")

JSON = dict[str, Any]
PATH = "/api/v1/namespaces"
WATCH_SECONDS = "300"


def owner_rule(selector: Selector | None, globs: list[str]) -> Callable[[JSON], bool]:
    """Does this instance own the namespace ``body``? Its labels match the selector (if any)
    and its name matches one of the globs (if any)."""

    def owns(body: JSON) -> bool:
        meta = body.get("metadata") or {}
        if globs and not any(glob_matches(str(meta.get("name", "")), g) for g in globs):
            return False
        return selector is None or selector.matches(meta.get("labels") or {})

    return owns


class NamespaceWatcher:
    """List+watch of Namespaces that adds and drops the informers' namespace scopes."""

    def __init__(self, client: KubeClient, selector: Selector | None, globs: list[str]) -> None:
        self.client = client
        self.selector = selector
        self.owns = owner_rule(selector, globs)
        self.owned: set[str] = set()
        self.informers: Informers | None = None
        self._rv = ""
        self._task: asyncio.Task[None] | None = None

    def _params(self) -> dict[str, str]:
        return {"labelSelector": self.selector.text} if self.selector is not None else {}

    async def _list(self) -> tuple[set[str], str]:
        page = await self.client.list(PATH, **self._params())
        names = {str(ns["metadata"]["name"]) for ns in page.get("items") or [] if self.owns(ns)}
        return names, str((page.get("metadata") or {}).get("resourceVersion") or "")

    async def initial(self) -> list[str]:
        """The namespaces owned at start (listed before the informers' first lists)."""
        names, self._rv = await retrying("listing namespaces", self._list)
        self.owned = set(names)
        log.info("owning %d namespaces: %s", len(names), ", ".join(sorted(names)) or "(none yet)")
        return sorted(names)

    def start(self, informers: Informers) -> None:
        self.informers = informers
        self._task = asyncio.get_running_loop().create_task(self._watch_forever())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None

    async def _own(self, name: str) -> None:
        if name in self.owned or self.informers is None:
            return
        self.owned.add(name)
        await self.informers.add_namespace(name)

    async def _release(self, name: str) -> None:
        if name not in self.owned or self.informers is None:
            return
        self.owned.discard(name)
        await self.informers.drop_namespace(name)

    async def _relist(self) -> None:
        names, self._rv = await retrying("listing namespaces", self._list)
        for name in sorted(self.owned - names):
            await self._release(name)
        for name in sorted(names - self.owned):
            await self._own(name)

    async def _watch_forever(self) -> None:
        delays = backoffs()
        loop = asyncio.get_running_loop()
        while True:
            try:
                started = loop.time()
                await self._watch_once()
                delays = backoffs()
                if loop.time() - started < 1.0:
                    await asyncio.sleep(1.0)
            except RETRIED as err:
                if isinstance(err, ApiError) and err.status == 410:
                    log.info("watch of namespaces expired (410 Gone): listing again")
                    await self._relist()
                    delays = backoffs()
                    continue
                delay = next(delays)
                log.error("watch of namespaces failed (%s); resuming in %.0f s", err, delay)
                await asyncio.sleep(delay)

    async def _watch_once(self) -> None:
        params = {
            "resourceVersion": self._rv,
            "allowWatchBookmarks": "true",
            "timeoutSeconds": WATCH_SECONDS,
            **self._params(),
        }
        async for event in self.client.watch(PATH, **params):
            kind = event.get("type")
            obj = event.get("object") or {}
            if kind == "ERROR":
                raise ApiError(int(obj.get("code") or 500), str(obj.get("reason", "")), str(obj.get("message", "")))
            if kind in ("ADDED", "MODIFIED", "DELETED"):
                name = str(obj["metadata"]["name"])
                # A namespace being deleted is let go too: its objects go with it anyway.
                terminating = bool((obj.get("metadata") or {}).get("deletionTimestamp"))
                if kind != "DELETED" and not terminating and self.owns(obj):
                    await self._own(name)
                else:
                    await self._release(name)
            rv = (obj.get("metadata") or {}).get("resourceVersion")
            if rv:
                self._rv = str(rv)
