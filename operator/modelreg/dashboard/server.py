"""`modelreg dashboard`: a read-only web page on 127.0.0.1 with the user's own credentials (docs/observability.md).

A thread per kind lists and watches RegisteredModels, PerformanceSnapshots and Incidents
(cluster-wide, or in one namespace) with the user's kubeconfig, so the page shows only
what the user may read, and says what it could not. Pages are rendered on the server
(:mod:`modelreg.dashboard.render`) and pushed again over Server-Sent Events whenever
a watched object changes, so the browser follows without reloading.

Protection: the Host header must name this server (a DNS-rebinding page cannot talk to
it), and every request carries the start-up token, in the URL printed as the first line
(``http://127.0.0.1:PORT/?token=…``) and then in a cookie (HttpOnly, SameSite=Strict).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import errno
import hmac
import json
import logging
import os
import secrets
import socket
import sys
import threading
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import unquote

from aiohttp import web

from modelreg import GROUP, VERSION
from modelreg.dashboard import render

log = logging.getLogger("modelreg.dashboard")
KINDS = ("registeredmodels", "performancesnapshots", "incidents")
COOKIE = "modelreg_dashboard"
Obj = dict[str, Any]


@dataclass
class Cache:
    """What the watches have seen: kind -> {(namespace, name): object}; None while unreadable."""

    items: dict[str, dict[tuple[str, str], Obj]] = field(default_factory=lambda: {k: {} for k in KINDS})
    notes: dict[str, str] = field(default_factory=dict)  # kind -> why it is not (fully) shown
    forbidden: set[str] = field(default_factory=set)
    synced: set[str] = field(default_factory=set)  # kinds listed (or found forbidden) at least once
    generation: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)
    listeners: list[Callable[[], None]] = field(default_factory=list)

    def changed(self) -> None:
        with self.lock:
            self.generation += 1
        for fn in list(self.listeners):
            fn()

    def snapshot(self, kind: str) -> list[Obj] | None:
        with self.lock:
            if kind in self.forbidden:
                return None
            return list(self.items[kind].values())


def _strip(obj: Obj) -> Obj:
    meta = obj.get("metadata") or {}
    meta.pop("managedFields", None)
    (meta.get("annotations") or {}).pop("kubectl.kubernetes.io/last-applied-configuration", None)
    return obj


class Watcher(threading.Thread):
    """List, then watch one kind; on 403 remember it is forbidden and try again now and then."""

    def __init__(self, kube_factory: Callable[[], Any], kind: str, namespace: str | None, cache: Cache) -> None:
        super().__init__(name=f"watch-{kind}", daemon=True)
        self.factory, self.kind, self.namespace, self.cache = kube_factory, kind, namespace, cache
        self.stop = threading.Event()

    def run(self) -> None:
        from kubernetes import watch
        from kubernetes.client.exceptions import ApiException

        kube = self.factory()
        api = kube.custom()
        while not self.stop.is_set():
            try:
                if self.namespace:
                    lister: Any = api.list_namespaced_custom_object
                    args: tuple[Any, ...] = (GROUP, VERSION, self.namespace, self.kind)
                else:
                    lister = api.list_cluster_custom_object
                    args = (GROUP, VERSION, self.kind)
                page = lister(*args, _request_timeout=30)
                items = {
                    ((o["metadata"].get("namespace") or ""), o["metadata"]["name"]): _strip(o)
                    for o in page.get("items") or []
                }
                with self.cache.lock:
                    self.cache.items[self.kind] = items
                    self.cache.synced.add(self.kind)
                    self.cache.forbidden.discard(self.kind)
                    self.cache.notes.pop(self.kind, None)
                self.cache.changed()
                rv = (page.get("metadata") or {}).get("resourceVersion")
                w = watch.Watch()  # type: ignore[no-untyped-call]  # kubernetes' watch and ApiClient are unannotated
                for event in w.stream(  # type: ignore[no-untyped-call]  # kubernetes' watch and ApiClient are unannotated
                    lister, *args, resource_version=rv, timeout_seconds=240, allow_watch_bookmarks=True
                ):
                    if self.stop.is_set():
                        w.stop()  # type: ignore[no-untyped-call]  # kubernetes' watch and ApiClient are unannotated
                        return
                    kind, obj = event.get("type"), event.get("object") or {}
                    if kind == "ERROR":
                        break
                    if kind == "BOOKMARK" or not isinstance(obj, dict):
                        continue
                    key = ((obj["metadata"].get("namespace") or ""), obj["metadata"]["name"])
                    with self.cache.lock:
                        if kind == "DELETED":
                            self.cache.items[self.kind].pop(key, None)
                        else:
                            self.cache.items[self.kind][key] = _strip(obj)
                    self.cache.changed()
            except ApiException as err:
                if err.status == 403 and self.namespace is None:
                    # Not allowed cluster-wide: the kubeconfig context's namespace, and say so.
                    self.namespace = kube.context_namespace
                    with self.cache.lock:
                        self.cache.notes[self.kind + "/scope"] = (
                            f"You may not list {self.kind} in all namespaces: showing namespace {self.namespace}."
                        )
                    continue
                if err.status == 403:
                    where = f"namespace {self.namespace}" if self.namespace else "all namespaces"
                    with self.cache.lock:
                        self.cache.synced.add(self.kind)
                        self.cache.forbidden.add(self.kind)
                        self.cache.items[self.kind] = {}
                        self.cache.notes[self.kind] = (
                            f"You may not list {self.kind} in {where}: what depends on them is not shown."
                        )
                    self.cache.changed()
                    self.stop.wait(30)
                elif err.status != 410:
                    self.stop.wait(2)
            except Exception as exc:  # a dropped connection: list again shortly
                log.debug("watch of %s ended: %s", self.kind, exc)
                self.stop.wait(2)


@dataclass
class Dashboard:
    cache: Cache
    token: str
    port: int
    allowed_hosts: tuple[str, ...]
    context: str
    card_reader: Callable[[str, str], str | None]
    any_port: bool = False

    # --- protection ----------------------------------------------------------------------

    def host_ok(self, host: str | None) -> bool:
        if not host:
            return False
        name, _, port = host.rpartition(":") if not host.endswith("]") else (host, "", "")
        if not name:
            name, port = host, ""
        if self.any_port:
            return name in self.allowed_hosts
        return name in self.allowed_hosts and port == str(self.port)

    @web.middleware
    async def guard(
        self, request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    ) -> web.StreamResponse:
        if request.path == "/healthz":
            return web.Response(text="ok")
        if not self.host_ok(request.headers.get("Host")):
            return web.Response(status=421, text="This dashboard answers only to its own address.\n")
        given = request.query.get("token")
        if given is not None and hmac.compare_digest(given, self.token):
            # Drop the token from the address bar (and history); the cookie carries it from now on.
            target = request.path + (
                "?" + "&".join(f"{k}={v}" for k, v in request.query.items() if k != "token")
                if len(request.query) > 1
                else ""
            )
            redirect = web.HTTPSeeOther(target)
            redirect.set_cookie(COOKIE, self.token, httponly=True, samesite="Strict", path="/")
            raise redirect
        cookie = request.cookies.get(COOKIE, "")
        if not (cookie and hmac.compare_digest(cookie, self.token)):
            return web.Response(
                status=401,
                text="Open the address `modelreg dashboard` printed when it started (it carries the token).\n",
            )
        resp = await handler(request)
        resp.headers["Content-Security-Policy"] = (
            "default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'; img-src 'self' data:; "
            "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
        )
        resp.headers["X-Content-Type-Options"] = "nosniff"
        resp.headers["Referrer-Policy"] = "no-referrer"
        resp.headers["Cache-Control"] = "no-store"
        return resp

    # --- pages ---------------------------------------------------------------------------

    def notes(self, *kinds: str) -> list[str]:
        with self.cache.lock:
            return [v for k, v in sorted(self.cache.notes.items()) if k.split("/")[0] in kinds]

    def content(self, path: str) -> tuple[str, str]:
        """(title, inner HTML) of one page."""
        now = datetime.now(UTC)
        parts = [unquote(p) for p in path.strip("/").split("/") if p]
        models = self.cache.snapshot("registeredmodels")
        if len(parts) == 3 and parts[0] == "model":
            ns, model_name = parts[1], parts[2]
            versions = [
                m
                for m in models or []
                if (m["metadata"].get("namespace") or "") == ns and (m.get("spec") or {}).get("modelName") == model_name
            ]
            snaps = self.cache.snapshot("performancesnapshots")
            incidents = self.cache.snapshot("incidents")
            snaps = None if snaps is None else [s for s in snaps if (s["metadata"].get("namespace") or "") == ns]
            incidents = (
                None if incidents is None else [i for i in incidents if (i["metadata"].get("namespace") or "") == ns]
            )
            live = next((v for v in versions if (v.get("status") or {}).get("stage") == "Production"), None)
            newest = max(versions, key=lambda o: o["metadata"].get("creationTimestamp") or "") if versions else None
            shown = live or newest
            card = self.card_reader(ns, shown["metadata"]["name"]) if shown else None
            notes = self.notes(*KINDS)
            return model_name, render.model_content(ns, model_name, versions, snaps, incidents, card, notes, now)
        if parts:
            raise web.HTTPNotFound(text="No such page.\n")
        incidents = self.cache.snapshot("incidents")
        return "Fleet", render.fleet_content(models or [], incidents, self.notes(*KINDS), now)

    async def synced(self, timeout: float = 10.0) -> None:
        """Until every kind was listed once (or found forbidden), so a first page is not empty."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.cache.lock:
                if self.cache.synced >= set(KINDS):
                    return
            await asyncio.sleep(0.05)

    async def page(self, request: web.Request) -> web.Response:
        await self.synced()
        title, inner = self.content(request.path)
        return web.Response(text=render.page(title, inner, self.context), content_type="text/html", charset="utf-8")

    async def events(self, request: web.Request) -> web.StreamResponse:
        path = request.query.get("path", "/")
        resp = web.StreamResponse(headers={"Content-Type": "text/event-stream", "Cache-Control": "no-store"})
        await resp.prepare(request)
        loop = asyncio.get_running_loop()
        wake = asyncio.Event()

        def notify() -> None:
            loop.call_soon_threadsafe(wake.set)

        self.cache.listeners.append(notify)
        last = None
        # The first round sends the page as it is now: a change between the page's own
        # request and this subscription would otherwise never reach the browser.
        wake.set()
        try:
            await resp.write(b"retry: 2000\n\n")
            while True:
                try:
                    await asyncio.wait_for(wake.wait(), timeout=15)
                except TimeoutError:
                    await resp.write(b": keep-alive\n\n")
                    continue
                wake.clear()
                await asyncio.sleep(0.2)  # fold a burst of events into one update
                wake.clear()
                try:
                    _, inner = await loop.run_in_executor(None, self.content, path)
                except web.HTTPException:
                    continue
                if inner == last:
                    continue
                last = inner
                data = json.dumps({"html": inner})
                await resp.write(f"event: update\ndata: {data}\n\n".encode())
        except (ConnectionResetError, asyncio.CancelledError):
            pass
        finally:
            with contextlib.suppress(ValueError):
                self.cache.listeners.remove(notify)
        return resp

    def app(self) -> web.Application:
        app = web.Application(middlewares=[self.guard])
        app.router.add_get("/events", self.events)
        app.router.add_get("/", self.page)
        app.router.add_get("/model/{namespace}/{model}", self.page)
        return app


def card_reader_for(kube_factory: Callable[[], Any]) -> Callable[[str, str], str | None]:
    from modelreg.core.modelcard import CARD_KEY, config_map_name

    kube = kube_factory()

    def read(namespace: str, name: str) -> str | None:
        try:
            cm = kube.core().read_namespaced_config_map(config_map_name(name), namespace, _request_timeout=10)
        except Exception:
            return None
        return (cm.data or {}).get(CARD_KEY)

    return read


def bind(address: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in address else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((address, port))
    sock.listen(128)
    sock.setblocking(False)
    return sock


def run(args: argparse.Namespace) -> int:
    from modelreg.cli.cluster import connect
    from modelreg.cli.errors import error_message
    from modelreg.cli.shell import warn

    logging.basicConfig(level=logging.WARNING)
    try:
        sock = bind(args.address, args.port)
    except OSError as err:
        if err.errno == errno.EADDRINUSE:
            warn(f"error: port {args.port} on {args.address} is in use; choose another with --port")
        else:
            warn(f"error: cannot listen on {args.address}:{args.port}: {err.strerror or err}")
        return 1
    port = sock.getsockname()[1]
    try:
        probe = connect(args, args.namespace)
        probe.api.close()  # type: ignore[no-untyped-call]  # kubernetes' watch and ApiClient are unannotated
    except Exception as err:
        warn(f"error: {error_message(err)}")
        return 1

    def factory() -> Any:
        return connect(argparse.Namespace(**vars(args)), args.namespace)

    token = os.environ.get("MODELREG_DASHBOARD_TOKEN") or secrets.token_urlsafe(32)
    cache = Cache()
    scope = args.namespace or None
    context = f"namespace {scope}" if scope else "all namespaces you can read"
    watchers = [Watcher(factory, kind, scope, cache) for kind in KINDS]
    for w in watchers:
        w.start()
    hosts = tuple(args.allowed_host or ()) or ("127.0.0.1", "localhost", "[::1]")
    dash = Dashboard(cache, token, port, hosts, context, card_reader_for(factory), any_port=args.any_port)
    shown = "127.0.0.1" if args.address in ("127.0.0.1", "0.0.0.0") else args.address
    print(f"http://{shown}:{port}/?token={token}", flush=True)
    print(f"modelreg dashboard: {context}, read-only, your credentials; Ctrl-C stops it", file=sys.stderr, flush=True)

    async def serve() -> None:
        runner = web.AppRunner(dash.app(), access_log=None)
        await runner.setup()
        site = web.SockSite(runner, sock)
        await site.start()
        try:
            while True:
                await asyncio.sleep(3600)
        finally:
            await runner.cleanup()

    try:
        asyncio.run(serve())
    except KeyboardInterrupt:
        pass
    finally:
        for w in watchers:
            w.stop.set()
        time.sleep(0)
    return 0


def register(sub: argparse._SubParsersAction[Any]) -> None:
    from modelreg.cli.shell import connection_args

    p = sub.add_parser(
        "dashboard",
        help="a read-only web page of the fleet and each model, with your credentials",
        description="Serve a read-only dashboard on 127.0.0.1 using your kubeconfig and RBAC. The first line "
        "printed is the address to open (it carries a token). Follows changes live.",
    )
    p.add_argument("--port", type=int, default=8484, help="port (default 8484; 0 picks a free one)")
    p.add_argument("--address", default="127.0.0.1", help=argparse.SUPPRESS)
    p.add_argument("--allowed-host", action="append", default=None, help=argparse.SUPPRESS)
    p.add_argument("--any-port", action="store_true", help=argparse.SUPPRESS)
    connection_args(p)
    p.set_defaults(func=run)
