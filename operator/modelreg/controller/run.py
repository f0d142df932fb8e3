"""`modelreg run`: start the operator."""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import socket
from collections.abc import Iterator
from typing import Any

import kopf

from modelreg import metrics
from modelreg.controller import auth
from modelreg.controller.engine import Engine, Settings
from modelreg.controller.flags import add_arguments, check_flags, defaults_from
from modelreg.controller.informer import backoffs
from modelreg.kube import credentials
from modelreg.kube.client import KubeClient

__all__ = ["add_arguments", "main", "run_operator"]

log = logging.getLogger("modelreg")


class NoDiffBase(kopf.DiffBaseStorage):
    """No change-detection essence: the operator registers no change handlers, so Kopf's
    per-event deep copy and diff of every body (its "diff-base") is pure overhead here."""

    def build(self, *, body: kopf.Body, extra_fields: Any = None) -> Any:
        return None

    def fetch(self, *, body: kopf.Body) -> None:
        return None

    def store(self, *, body: kopf.Body, patch: kopf.Patch, essence: Any) -> None:
        return None


class RetryForever:
    """Kopf's request backoffs: :func:`~modelreg.controller.informer.backoffs`, the informers' own.

    Kopf retries a failed request (403 included: RBAC revoked, or an API server
    upgrade) while this yields, and ends the watcher, and with it the operator,
    when it is exhausted; a finite list made a revoked RBAC rule a crash loop.
    Not Sized and a fresh iterator per request, so every request counts from 1 s.
    """

    def __iter__(self) -> Iterator[float]:
        return backoffs()


def _settings(settings: kopf.OperatorSettings) -> None:
    settings.posting.enabled = False  # our own Events only (docs/observability.md)
    settings.persistence.diffbase_storage = NoDiffBase()
    settings.watching.server_timeout = 300
    settings.watching.client_timeout = 330
    settings.networking.error_backoffs = RetryForever()
    settings.execution.max_workers = 4
    settings.peering.standalone = True
    # Kopf watches nothing (the informers do, see the handlers module): no discovery of
    # CRDs or namespaces, so no cluster-scoped read for it either.
    settings.scanning.disabled = True


def identity_of(args: argparse.Namespace) -> str:
    """The name Incidents are claimed under: shared by all replicas of one operator."""
    from modelreg.core.lease import default_lease_id

    if args.identity:
        return str(args.identity)
    if args.leader_elect:
        return str(args.leader_election_id or default_lease_id(args.namespace_selector))
    return socket.gethostname()


def _port_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("0.0.0.0", port))
        except OSError:
            return False
    return True


async def run_operator(args: argparse.Namespace, *, stop_flag: Any = None, ready_flag: Any = None) -> None:
    import os

    from modelreg.controller import handlers  # noqa: F401 - registers the Kopf handlers
    from modelreg.controller.informer import Informers
    from modelreg.controller.leader import LeaderElector, default_identity, default_namespace, fence
    from modelreg.controller.namespaces import NamespaceWatcher
    from modelreg.core.lease import default_lease_id
    from modelreg.core.selector import is_glob, parse

    defaults = defaults_from(args)
    identity = identity_of(args)
    globs = [ns for ns in args.namespace if is_glob(ns)]
    selector = parse(args.namespace_selector) if args.namespace_selector else None
    # Exact names are watched as they are; globs and a selector need the namespaces watched.
    dynamic = bool(globs) or selector is not None
    metrics.serve(args.metrics_port)
    source = getattr(args, "credentials", None) or credentials.load(
        getattr(args, "kubeconfig", None), getattr(args, "context", None)
    )
    auth.register(source)  # Kopf's login and the liveness probe on 401s
    # With --leader-elect, SIGTERM first steps down (the Lease released at once), then stops
    # Kopf through this flag: a standby need not wait for the whole shutdown, nor the lease.
    own_stop = asyncio.Event() if stop_flag is None and args.leader_elect else None

    @kopf.on.startup()
    async def startup(settings: kopf.OperatorSettings, memo: kopf.Memo, **kwargs: Any) -> None:
        _settings(settings)
        client = KubeClient(source)
        engine = Engine(
            client,
            Settings(
                defaults=defaults,
                identity=identity,
                builtin_healer=not args.no_builtin_healer,
                exclude_namespaces=tuple(args.exclude_namespace),
            ),
            workers=args.workers,
        )
        memo["engine"] = engine
        elector = None
        if args.leader_elect:
            # Standby until elected: the work queue (every write) waits for the Lease.
            elector = LeaderElector(
                client,
                args.leader_election_namespace or default_namespace(os.environ, list(args.namespace)),
                args.leader_election_id or default_lease_id(args.namespace_selector),
                args.leader_identity or default_identity(os.environ),
                on_started=engine.queue.resume,
            )
            fence(client, elector)
            memo["elector"] = elector
        engine.start()
        watcher = None
        namespaces = [ns for ns in args.namespace if not is_glob(ns)]
        if dynamic:
            watcher = NamespaceWatcher(client, selector, globs)
            namespaces = await watcher.initial()
            memo["namespaces"] = watcher
        from modelreg.controller.poller import Poller

        # Before the models are listed, so that every monitored version arms its timer. Its
        # timers run on the engine's queue, which a standby keeps paused (no polling there).
        engine.poller = Poller(engine, concurrency=args.metric_query_concurrency)
        if watcher is not None:
            shard = watcher
            engine.poller.owns = lambda ns: ns in shard.owned
        await engine.poller.start([] if dynamic else namespaces)
        # Models, Incidents and snapshots are all known when the first model is
        # decided on (see the informer module's docstring).
        informers = Informers(engine, namespaces, owned=set(namespaces) if dynamic else None)
        await informers.prelist(resume=elector is None)
        informers.start()
        memo["informers"] = informers
        if watcher is not None:
            watcher.start(informers)
        if elector is not None:
            loop = asyncio.get_running_loop()
            memo["elector_task"] = loop.create_task(elector.run())
            if own_stop is not None:

                async def step_down_then_stop() -> None:
                    try:
                        await elector.step_down()
                    finally:
                        own_stop.set()

                def on_sigterm() -> None:
                    log.info("SIGTERM: stepping down, then stopping")
                    memo["step_down"] = loop.create_task(step_down_then_stop())

                loop.add_signal_handler(signal.SIGTERM, on_sigterm)  # after Kopf's: replaces it
        log.info("modelreg operator started (identity %s, defaults %s)", identity, defaults)

    @kopf.on.cleanup()
    async def cleanup(memo: kopf.Memo, **_: Any) -> None:
        elector = memo.get("elector")
        task = memo.get("elector_task")
        if elector is not None:
            elector._stopping = True
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        watcher = memo.get("namespaces")
        if watcher is not None:
            await watcher.stop()
        informers = memo.get("informers")
        if informers is not None:
            await informers.stop()
        engine = memo.get("engine")
        if engine is not None and engine.poller is not None:
            await engine.poller.stop()
        if engine is not None:
            await engine.stop()
            if elector is not None:
                await elector.release()  # after the last write: a standby takes over at once
            await engine.client.close()

    from modelreg.controller import notifier  # IncidentNotifier deliveries, beside the engine (docs/healing.md)

    notifier.register(list(args.namespace), tuple(args.exclude_namespace))
    liveness = None
    if args.liveness_port > 0:
        if _port_free(args.liveness_port):
            liveness = f"http://0.0.0.0:{args.liveness_port}/healthz"
        else:
            log.error("liveness endpoint not started: port %d is in use", args.liveness_port)
    exact = bool(args.namespace) and not globs
    await kopf.operator(
        clusterwide=not exact,
        namespaces=args.namespace if exact else [],
        standalone=True,
        liveness_endpoint=liveness,
        memo=kopf.Memo(),
        stop_flag=stop_flag if own_stop is None else own_stop,
        ready_flag=ready_flag,
    )


def main(args: argparse.Namespace) -> int:
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    for noisy in ("kopf.objects", "kopf.activities.probe", "aiohttp.access"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    try:
        defaults_from(args)
        check_flags(args)
    except ValueError as err:
        log.error("%s", err)
        return 2
    try:
        # Fetched here, so an unusable kubeconfig is one line and exit code 1 before anything starts.
        args.credentials = credentials.load(getattr(args, "kubeconfig", None), getattr(args, "context", None))
    except credentials.CredentialError as err:
        log.error("%s", err)
        return 1
    try:
        asyncio.run(run_operator(args))
    except KeyboardInterrupt:
        return 0
    return 0
