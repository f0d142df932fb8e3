"""`modelreg run`: start the operator."""

from __future__ import annotations

import argparse
import asyncio
import logging
import socket
from collections.abc import Iterator
from typing import Any

import kopf

from modelreg import metrics
from modelreg.controller import auth
from modelreg.controller.engine import Engine, Settings
from modelreg.controller.flags import _given, add_arguments, defaults_from, resolve_priority
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


def _settings(settings: kopf.OperatorSettings, peering: str | None, namespaced: bool) -> None:
    settings.posting.enabled = False  # our own Events only (SPEC §4)
    settings.persistence.diffbase_storage = NoDiffBase()
    settings.watching.server_timeout = 300
    settings.watching.client_timeout = 330
    settings.networking.error_backoffs = RetryForever()
    settings.execution.max_workers = 4
    settings.peering.standalone = peering is None
    if namespaced:
        # Exact namespace names need no cluster-wide discovery (no cluster-scoped RBAC);
        # globs and exclusions ("!iso-*") do.
        settings.scanning.disabled = True
    if peering:
        settings.peering.name = peering
        settings.peering.mandatory = True


def _port_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("0.0.0.0", port))
        except OSError:
            return False
    return True


async def run_operator(args: argparse.Namespace, *, stop_flag: Any = None, ready_flag: Any = None) -> None:
    from modelreg.controller import handlers  # registers the Kopf handlers
    from modelreg.controller.informer import Informers

    defaults = defaults_from(args)
    exact = bool(args.namespace) and not any(set(ns) & set("*?!,") for ns in args.namespace)
    # Our own informers cannot follow Kopf's peering pause, nor discover namespaces.
    own_informers = args.peering is None and (exact or not args.namespace)
    if not own_informers:
        handlers.watch_with_kopf()
    metrics.serve(args.metrics_port)
    source = getattr(args, "credentials", None) or credentials.load(
        getattr(args, "kubeconfig", None), getattr(args, "context", None)
    )
    auth.register(source)  # Kopf's login and the liveness probe on 401s
    settings_holder: dict[str, Any] = {}

    @kopf.on.startup()
    async def startup(settings: kopf.OperatorSettings, memo: kopf.Memo, **kwargs: Any) -> None:
        _settings(settings, args.peering, exact)
        client = KubeClient(source)
        engine = Engine(
            client,
            Settings(
                defaults=defaults,
                identity=args.identity,
                builtin_healer=not args.no_builtin_healer,
                exclude_namespaces=tuple(args.exclude_namespace),
            ),
            workers=args.workers,
        )
        if not args.no_builtin_healer:
            from modelreg.controller.healer import Healer

            engine.healer = Healer(engine)
        engine.start()
        from modelreg.controller.poller import Poller

        # Before the models are listed, so that every monitored version arms its timer.
        engine.poller = Poller(engine, concurrency=args.metric_query_concurrency)
        await engine.poller.start(list(args.namespace) if exact else [])
        if own_informers:
            # Models, Incidents and snapshots are all known when the first model is
            # decided on (see the informer module's docstring).
            informers = Informers(engine, list(args.namespace))
            await informers.prelist()
            informers.start()
            memo["informers"] = informers
        memo["engine"] = engine
        settings_holder["engine"] = engine
        log.info("modelreg operator started (identity %s, defaults %s)", args.identity, defaults)

    @kopf.on.cleanup()
    async def cleanup(memo: kopf.Memo, **_: Any) -> None:
        informers = memo.get("informers")
        if informers is not None:
            await informers.stop()
        engine = memo.get("engine")
        if engine is not None and engine.poller is not None:
            await engine.poller.stop()
        if engine is not None:
            await engine.stop()
            await engine.client.close()

    from modelreg.controller import notifier  # IncidentNotifier deliveries, beside the engine (SPEC §9)

    notifier.register(list(args.namespace), tuple(args.exclude_namespace))
    liveness = None
    if args.liveness_port > 0:
        if _port_free(args.liveness_port):
            liveness = f"http://0.0.0.0:{args.liveness_port}/healthz"
        else:
            log.error("liveness endpoint not started: port %d is in use", args.liveness_port)
    await kopf.operator(
        clusterwide=not args.namespace,
        namespaces=args.namespace,
        standalone=args.peering is None,
        peering_name=args.peering,
        priority=resolve_priority(args, _given("--priority")),
        liveness_endpoint=liveness,
        memo=kopf.Memo(),
        stop_flag=stop_flag,
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
        resolve_priority(args, _given("--priority"))
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
