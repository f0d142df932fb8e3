"""The thin shell of MetricSource polling (docs/metricsource.md): HTTP to Prometheus and Kubernetes writes.

Every decision is in :mod:`modelreg.core.metricpoll` (what to query, which snapshot or
condition to write) and :mod:`modelreg.core.metricsource` (the value rules); this module
runs the queries the plan asks for and applies the decision:

- One timer per monitored live version on the engine's work queue (key
  ``("poll", namespace, name)``); the queue's run only plans the window and
  starts a task, so queries never run on the path that handles snapshots.
- Queries run concurrently up to ``--metric-query-concurrency``; each window's
  snapshot is created under ``<registered model>-<t>``: AlreadyExists means
  another replica or an earlier run wrote it (the window is done).
- ``MetricsAvailable`` is written with a server-side apply of that one
  condition (field manager ``modelreg-metrics``) only when it changes.
- MetricSources are listed and watched; each is probed (``vector(1)``) on
  change and every :data:`PROBE_SECONDS`, which sets Ready and ``lastProbe``.
- Bearer tokens come from the named Secret (re-read every 60 s and after a 401
  or 403), the CA from the named ConfigMap.
"""

from __future__ import annotations

import asyncio
import base64
import logging
import ssl
import time
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from datetime import UTC, datetime
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

import aiohttp
from prometheus_client import Counter, Histogram

from modelreg import GROUP, VERSION
from modelreg.api.models import EffectiveMonitoring, MetricSourceSpec
from modelreg.core import metricpoll, timefmt
from modelreg.core import metricsource as ms
from modelreg.core.durations import parse_duration
from modelreg.core.lifecycle.stages import Event
from modelreg.kube.client import ApiError, path_for

if TYPE_CHECKING:
    from modelreg.controller.engine import Engine

log = logging.getLogger("modelreg.poller")

MS_PLURAL = "metricsources"
FIELD_MANAGER = "modelreg-metrics"
#: Seconds between probes of a MetricSource.
PROBE_SECONDS = 60.0
#: Seconds a Secret's token or a ConfigMap's CA is kept before it is read again.
CREDENTIAL_SECONDS = 60.0
DEFAULT_TIMEOUT = 10.0

JSON = dict[str, Any]
Key = tuple[str, str]

#: Prometheus series of the poller (on the operator's /metrics).
QUERY_SECONDS = Histogram(
    "modelreg_metric_query_seconds",
    "Round trip of one Prometheus query made by MetricSource polling",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
WINDOWS = Counter(
    "modelreg_pulled_windows_total",
    "Windows polled from MetricSources, by outcome (Written, Exists, or the MetricsAvailable reason)",
    ["outcome"],
)


def _now() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)


@dataclass
class _Cached:
    value: Any
    at: float


class SourceError(Exception):
    def __init__(self, failure: ms.Failure) -> None:
        super().__init__(failure.message)
        self.failure = failure


class Poller:
    """Pulls PerformanceSnapshots from MetricSources for the engine's monitored versions."""

    def __init__(self, engine: Engine, *, concurrency: int = 16) -> None:
        self.engine = engine
        self.client = engine.client
        self.concurrency = max(1, concurrency)
        # With --namespace-selector or globs the sources are listed cluster-wide, and only
        # those in the namespaces this instance owns are probed (set by ``modelreg run``).
        self.owns: Callable[[str], bool] = lambda _ns: True
        self._sem = asyncio.Semaphore(self.concurrency)
        self.sources: dict[Key, JSON] = {}
        self._armed: dict[Key, tuple[Any, ...]] = {}  # version → what its timer was armed for
        self._done: dict[Key, int] = {}  # version → last window t written (or found written)
        self._inflight: set[Key] = set()
        self._tasks: set[asyncio.Task[None]] = set()
        self._tokens: dict[tuple[str, str, str], _Cached] = {}
        self._cas: dict[tuple[str, str, str], _Cached] = {}
        self._references: dict[metricpoll.ReferenceKey, ms.Buckets] = {}
        self._session: aiohttp.ClientSession | None = None
        self._informer: Any = None
        self.latencies: list[float] = []  # query round trips (s), newest last, bounded
        self.synced = False  # MetricSources listed once

    # --- lifecycle ------------------------------------------------------------------------

    async def start(self, namespaces: list[str]) -> None:
        """List and watch MetricSources in the background: never holds up the operator's start.

        Without the MetricSource CRD or the RBAC to read it (an operator upgraded before
        its CRDs and chart), the list is retried with backoff and nothing else waits on it.
        Versions are not polled until the first list is done, so none is told
        SourceNotFound for a source that is merely not listed yet.
        """
        from modelreg.controller.informer import Informer

        shim = SimpleNamespace(client=self.client, store=self)
        self._informer = Informer(shim, MS_PLURAL, namespaces, self.on_source)

        async def list_then_watch() -> None:
            for scope in self._informer.scopes:
                await self._informer.relist(scope)
            self.synced = True
            self._informer.start()

        self._spawn(list_then_watch())

    async def stop(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        if self._informer is not None:
            await self._informer.stop()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._session is not None:
            await self._session.close()

    def resource_versions(self, plural: str, namespace: str | None = None) -> dict[Key, str]:
        """For the informer's re-list: the MetricSources held (see :class:`Informer`)."""
        return {
            k: str(b["metadata"].get("resourceVersion", ""))
            for k, b in self.sources.items()
            if namespace is None or k[0] == namespace
        }

    def _spawn(self, coro: Any) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # --- events ---------------------------------------------------------------------------

    def on_source(self, event_type: str | None, body: JSON) -> None:
        meta = body["metadata"]
        key = (meta["namespace"], meta["name"])
        if self.engine.excluded(key[0]):
            return  # --exclude-namespace: another operator's
        if event_type == "DELETED":
            self.sources.pop(key, None)
            self._rearm_users(key)
            return
        old = self.sources.get(key)
        self.sources[key] = body
        if old is None or old["metadata"].get("generation") != meta.get("generation"):
            self._tokens = {k: v for k, v in self._tokens.items() if k[0] != key[0]}
            self.engine.queue.call_later(0, ("probe", *key))
            if old is not None:
                self._rearm_users(key)

    def _rearm_users(self, source: Key) -> None:
        """Versions that use ``source`` look again now (a deleted source is SourceNotFound at once)."""
        for key in list(self._armed):
            if key[0] == source[0]:
                self.engine.queue.call_later(0, ("poll", *key))

    def on_model(self, event_type: str | None, body: JSON) -> None:
        """Arm (or re-arm) a version's timer when what it is polled for changes."""
        meta = body["metadata"]
        key = (meta["namespace"], meta["name"])
        if event_type == "DELETED":
            self._armed.pop(key, None)
            self._done.pop(key, None)
            return
        spec = body.get("spec") or {}
        status = body.get("status") or {}
        if "monitoring" not in spec and key not in self._armed:
            return
        history = status.get("stageHistory") or []
        signature = (
            meta.get("generation"),
            status.get("stage"),
            history[-1].get("at") if history else None,
        )
        if self._armed.get(key) != signature:
            self._armed[key] = signature
            self.engine.queue.call_later(0, ("poll", *key))

    async def handle(self, key: Hashable) -> None:
        """The work-queue entry point for ``("poll", ns, name)`` and ``("probe", ns, name)``."""
        assert isinstance(key, tuple)
        if key[0] == "poll":
            self.tick(key[1], key[2])
        elif key[0] == "probe":
            if (key[1], key[2]) in self.sources:
                if self.owns(key[1]):  # another shard's: it probes (and writes) it, not this one
                    self._spawn(self.probe(key[1], key[2]))
                self.engine.queue.call_later(PROBE_SECONDS, key)

    # --- the timer of one version -----------------------------------------------------------

    def _monitoring(self, body: JSON) -> tuple[EffectiveMonitoring | None, str]:
        from modelreg.controller.engine import parsed_spec

        spec, _, policy = parsed_spec(body, self.engine.defaults)
        if spec is None or policy is None or policy.monitoring is None:
            return None, ""
        stage = str((body.get("status") or {}).get("stage") or "Development")
        return policy.monitoring, stage

    def tick(self, ns: str, name: str) -> None:
        """Plan the version's current window, re-arm its timer, and start the poll if it is due. No I/O."""
        key = (ns, name)
        body = self.engine.store.model(ns, name)
        if body is None:
            self._armed.pop(key, None)
            return
        if not self.synced:
            self.engine.queue.call_later(1.0, ("poll", ns, name))
            return
        mon, stage = self._monitoring(body)
        history = (body.get("status") or {}).get("stageHistory") or []
        since = _parse_ts(history[-1].get("at")) if history else None
        now = time.time()
        polled = metricpoll.window_for(mon, stage, since, now)
        if mon is None or polled is None:
            # Not polled (re-armed by on_model when its spec or stage changes): the condition goes.
            if metricpoll.drop_condition(body) is not None:
                self._spawn(self._drop_condition(ns, name))
            return
        timing, plan = polled
        self.engine.queue.call_later(max(0.0, plan.next_at - now), ("poll", ns, name))
        if not plan.write or self._done.get(key) == plan.t or key in self._inflight:
            return
        self._inflight.add(key)
        self._spawn(self._poll(ns, name, mon, plan, timing))

    async def _poll(
        self, ns: str, name: str, mon: EffectiveMonitoring, plan: ms.WindowPlan, timing: metricpoll.Timing
    ) -> None:
        key = (ns, name)
        try:
            if not ms.still_current(plan.t, timing.interval, timing.delay, time.time()):
                return  # skipped, never queued
            body = self.engine.store.model(ns, name)
            if body is None:
                return
            decision = await self._run(self._plan(ns, name, body, mon, plan))
            if decision.snapshot is not None:
                await self._create(ns, decision.snapshot)
                self._done[key] = plan.t
            if decision.failure is not None:
                WINDOWS.labels(decision.failure.reason).inc()
            await self._set_condition(ns, name, decision.failure)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("polling %s/%s failed", ns, name)
        finally:
            self._inflight.discard(key)

    def _plan(
        self, ns: str, name: str, body: JSON, mon: EffectiveMonitoring, plan: ms.WindowPlan
    ) -> metricpoll.PollPlan:
        spec = body.get("spec") or {}
        version = metricpoll.Version(
            namespace=ns,
            name=name,
            model_name=str(spec.get("modelName", "")),
            version=str(spec.get("version", "")),
            uid=str(body["metadata"].get("uid", "")),
        )
        source = self.sources.get((ns, mon.source_ref.name))
        return metricpoll.plan_poll(version, mon, source, plan, self._references)

    async def _run(self, plan: metricpoll.PollPlan) -> metricpoll.PollDecision:
        """Run the plan's queries, batch by batch, until it decides; an unanswered query ends it."""
        answers: dict[str, metricpoll.Answer] = {}
        while True:
            step = metricpoll.next_step(plan, answers)
            if isinstance(step, metricpoll.PollDecision):
                return step
            assert plan.source is not None
            try:
                answers.update(await self._batch(plan.version.namespace, plan.source, step))
            except SourceError as err:
                return metricpoll.PollDecision(failure=err.failure)

    async def _batch(
        self, ns: str, src: MetricSourceSpec, batch: metricpoll.QueryBatch
    ) -> dict[str, metricpoll.Answer]:
        if batch.concurrent:
            answers = await asyncio.gather(*(self._answer(ns, src, q) for q in batch.queries))
            return dict(zip((q.field for q in batch.queries), answers, strict=True))
        return {q.field: await self._answer(ns, src, q) for q in batch.queries}

    async def _answer(self, ns: str, src: MetricSourceSpec, q: metricpoll.Query) -> metricpoll.Answer:
        """One query's parsed answer; a value that fails to parse raises like a failed request."""
        if not q.buckets:
            return await self.query(ns, src, q.promql, q.at)
        buckets = ms.parse_buckets(await self._query_data(ns, src, q.promql, q.at))
        if q.cache_key is not None and isinstance(buckets, ms.Buckets):
            self._references[q.cache_key] = buckets
        return buckets

    async def _create(self, ns: str, snapshot: JSON) -> None:
        """Create the window's snapshot; AlreadyExists (another replica, an earlier run) is success."""
        try:
            body, created = await self.client.create(path_for(GROUP, VERSION, "performancesnapshots", ns), snapshot)
            WINDOWS.labels("Written" if created else "Exists").inc()
            if created:
                # Straight to the evaluation, without waiting for the watch to bring it back
                # (the watch's copy, same resourceVersion, is then a no-op in the store).
                body.setdefault("apiVersion", f"{GROUP}/{VERSION}")
                body.setdefault("kind", "PerformanceSnapshot")
                self.engine.on_snapshot("ADDED", body)
        except ApiError as err:
            if err.not_found or err.forbidden:
                log.warning("cannot create snapshot %s/%s: %s", ns, snapshot["metadata"]["name"], err)
            raise

    async def _set_condition(self, ns: str, name: str, failure: ms.Failure | None) -> None:
        body = self.engine.store.model(ns, name)
        if body is None:
            return
        write = metricpoll.condition_write(ns, name, body, failure, _now())
        if write is None:
            return
        path = path_for(GROUP, VERSION, "registeredmodels", ns, name) + "/status"
        try:
            out = await self.client.request(
                "PATCH",
                path,
                body=write.patch,
                params={"fieldManager": FIELD_MANAGER, "force": "true"},
                content_type="application/apply-patch+yaml",
            )
        except ApiError as err:
            if err.not_found:
                return
            raise
        self.engine.store.upsert_model(out)
        if write.change.event_reason:
            await self._event(ns, name, body, write.change)

    async def _drop_condition(self, ns: str, name: str) -> None:
        """Remove MetricsAvailable from a version that is no longer polled (a JSON patch that tests the index)."""
        ops = metricpoll.drop_condition(self.engine.store.model(ns, name))
        if ops is None:
            return
        path = path_for(GROUP, VERSION, "registeredmodels", ns, name) + "/status"
        try:
            out = await self.client.json_patch(path, ops)
        except ApiError as err:
            if err.not_found or err.status in (409, 422):
                return  # gone, or the list moved: the next look tries again
            raise
        self.engine.store.upsert_model(out)

    async def _event(self, ns: str, name: str, body: JSON, change: ms.ConditionChange) -> None:
        event = Event(name, change.event_type, f"Metrics{change.event_reason}", change.event_message)
        await self.engine.events.post(ns, event, uid=str(body["metadata"].get("uid", "")) or None)

    # --- HTTP -------------------------------------------------------------------------------

    def _get_session(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession()
        return self._session

    async def _token(self, ns: str, src: MetricSourceSpec, *, fresh: bool = False) -> str | None:
        ref = src.prometheus.bearer_token_secret_ref
        if ref is None:
            return None
        cache_key = (ns, ref.name, ref.key)
        hit = self._tokens.get(cache_key)
        if hit is not None and not fresh and time.monotonic() - hit.at < CREDENTIAL_SECONDS:
            return str(hit.value)
        try:
            secret = await self.client.get(f"/api/v1/namespaces/{quote(ns)}/secrets/{quote(ref.name)}")
        except ApiError as err:
            if err.forbidden:
                raise SourceError(
                    ms.Failure(
                        "SecretForbidden", f"the operator may not read Secret {ref.name} (see the chart's values)"
                    )
                ) from None
            if err.not_found:
                raise SourceError(ms.Failure("SecretForbidden", f"Secret {ref.name} not found")) from None
            raise
        data = (secret.get("data") or {}).get(ref.key)
        if data is None:
            raise SourceError(ms.Failure("SecretForbidden", f"Secret {ref.name} has no key {ref.key}"))
        token = base64.b64decode(data).decode("utf-8").strip()
        self._tokens[cache_key] = _Cached(token, time.monotonic())
        return token

    async def _ssl(self, ns: str, src: MetricSourceSpec) -> ssl.SSLContext | None:
        ref = src.prometheus.ca_config_map_ref
        if ref is None:
            return None
        cache_key = (ns, ref.name, ref.key)
        hit = self._cas.get(cache_key)
        if hit is not None and time.monotonic() - hit.at < CREDENTIAL_SECONDS:
            return hit.value  # type: ignore[no-any-return]
        try:
            cm = await self.client.get(f"/api/v1/namespaces/{quote(ns)}/configmaps/{quote(ref.name)}")
        except ApiError as err:
            if err.not_found or err.forbidden:
                raise SourceError(ms.Failure("SourceNotReady", f"CA ConfigMap {ref.name}: {err.reason}")) from None
            raise
        pem = (cm.get("data") or {}).get(ref.key)
        if not pem:
            raise SourceError(ms.Failure("SourceNotReady", f"CA ConfigMap {ref.name} has no key {ref.key}"))
        try:
            ctx = ssl.create_default_context(cadata=pem)
        except ssl.SSLError as err:
            raise SourceError(ms.Failure("SourceNotReady", f"CA ConfigMap {ref.name}: {err}")) from None
        self._cas[cache_key] = _Cached(ctx, time.monotonic())
        return ctx

    async def query(self, ns: str, src: MetricSourceSpec, promql: str, t: float) -> ms.Result:
        """One instant query → a value-rule outcome; a failure raises :class:`SourceError`."""
        outcome = ms.parse_result(await self._query_data(ns, src, promql, t))
        if isinstance(outcome, ms.Failure):
            raise SourceError(outcome)
        return outcome

    async def _query_data(self, ns: str, src: MetricSourceSpec, promql: str, t: float) -> JSON:
        """POST /api/v1/query at ``time=t``; the ``data`` object of a success, else :class:`SourceError`."""
        timeout = DEFAULT_TIMEOUT
        if src.prometheus.timeout:
            timeout = parse_duration(src.prometheus.timeout).total_seconds()
        url = src.prometheus.url.rstrip("/") + "/api/v1/query"
        ssl_ctx = await self._ssl(ns, src)
        for attempt in range(2):
            headers = {h.name: h.value for h in src.prometheus.headers or []}
            token = await self._token(ns, src, fresh=attempt > 0)
            if token:
                headers["Authorization"] = f"Bearer {token}"
            async with self._sem:
                started = time.perf_counter()
                try:
                    async with self._get_session().post(
                        url,
                        data={"query": promql, "time": f"{t:.3f}", "timeout": f"{timeout:g}s"},
                        headers=headers,
                        timeout=aiohttp.ClientTimeout(total=timeout),
                        ssl=ssl_ctx if ssl_ctx is not None else True,
                        allow_redirects=False,
                    ) as resp:
                        raw = await resp.read()
                        status = resp.status
                except TimeoutError:
                    raise SourceError(ms.Failure("Timeout", f"no answer within {timeout:g}s")) from None
                except aiohttp.ClientConnectorError as err:
                    raise SourceError(ms.Failure("Unreachable", _connect_message(err))) from None
                except (aiohttp.ClientError, OSError) as err:
                    raise SourceError(ms.Failure("Unreachable", type(err).__name__)) from None
                finally:
                    took = time.perf_counter() - started
                    QUERY_SECONDS.observe(took)
                    self.latencies.append(took)
                    if len(self.latencies) > 10_000:
                        del self.latencies[:5_000]
            body = _json(raw)
            if status in (401, 403) and attempt == 0 and src.prometheus.bearer_token_secret_ref is not None:
                continue  # the token may have been rotated: read the Secret again, once
            if status != 200:
                raise SourceError(ms.classify_http(status, body))
            if not isinstance(body, dict) or body.get("status") != "success" or not isinstance(body.get("data"), dict):
                raise SourceError(ms.Failure("QueryError", "the answer is not a Prometheus API success"))
            data: dict[str, Any] = body["data"]
            return data
        raise SourceError(ms.Failure("Forbidden", "HTTP 401/403 after reading the token again"))

    # --- probe ------------------------------------------------------------------------------

    async def probe(self, ns: str, name: str) -> None:
        """``vector(1)`` against the source: Ready and ``lastProbe`` on its status."""
        body = self.sources.get((ns, name))
        if body is None:
            return
        src = metricpoll.probe_spec(body)
        failure = src if isinstance(src, ms.Failure) else None
        if isinstance(src, MetricSourceSpec):
            try:
                failure = metricpoll.probe_answer(await self.query(ns, src, ms.PROBE_QUERY, time.time()))
            except SourceError as err:
                failure = err.failure
        status = metricpoll.probe_status(body, failure, _now())
        try:
            out = await self.client.merge_patch(
                path_for(GROUP, VERSION, MS_PLURAL, ns, name) + "/status", {"status": status}
            )
        except ApiError as err:
            if err.not_found:
                return
            raise
        current = self.sources.get((ns, name))
        if current is not None and int(out["metadata"].get("resourceVersion", 0)) >= int(
            current["metadata"].get("resourceVersion", 0)
        ):
            self.sources[(ns, name)] = out


def _parse_ts(value: object) -> float | None:
    when = timefmt.parse_or_none(value)
    return when.timestamp() if when is not None else None


def _json(raw: bytes) -> Any:
    import json

    try:
        return json.loads(raw)
    except ValueError:
        return None


def _connect_message(err: aiohttp.ClientConnectorError) -> str:
    """The OS error of a failed connect, without the URL (which is the user's)."""
    os_err = getattr(err, "os_error", None)
    return str(getattr(os_err, "strerror", None) or type(os_err or err).__name__)
