"""modelreg benchmark (issue 6): latency, throughput, API cost, memory and restart of the operator.

    python -m benchmarks.bench --quick                 # < 3 minutes, small sizes
    python -m benchmarks.bench --full --out bench-results.json
    python -m benchmarks.bench --full --soak-minutes 15 --big-versions 10000

The operator runs as a separate process (``python -m modelreg.cli.main run``) against a
private dev cluster (its own state directory, started on first use, with an audit log that
counts the operator's requests exactly); ``--shared-cluster`` uses the shared one instead.
Everything is measured in one run, in this order:

1. floor        a bare aiohttp client doing the operator's API work per breach
2. setup        V versions (IncidentOnly) and R model pairs with a Deployment (Automatic),
                promoted straight to Production by the operator
3. breach       breach -> Incident visible on a watch, with healthy background snapshots
4. remediation  breach -> Incident Remediated and Deployment env on the restored artifact
5. memory       operator RSS at V versions + 10 x V snapshots
6. restart      operator restart to ready, spurious incidents / stage changes
7. throughput   stepped healthy-snapshot rates; burst drain
8. soak         RSS growth at 20 snapshots/s
9. idle         API requests per minute with nothing to do
10. big         RSS at 10,000 versions (full mode or --big-versions)
API costs (writes per healthy snapshot, per breach, idle) come from the audit log at the end.

Prints one line per figure (name, value, unit, target, OK/MISS) and writes them as JSON.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import os
import resource
import secrets
import statistics
import sys
import tempfile
import time
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from benchmarks import cluster as clu
from benchmarks.kube import API_VERSION, JSON, ApiError, Kube, path
from benchmarks.opproc import OperatorProc, proc_cpu_seconds, proc_sched

REPO = Path(__file__).resolve().parents[1]
DIGEST = "sha256:" + "ab" * 32
HEALTHY = {"errorRate": 0.01, "oodRate": 0.02}
BREACHING = {"errorRate": 0.2, "oodRate": 0.02}  # errorRate >= 2 x max: severity high
SOAK_HISTORY = 20  # the operator's default snapshotHistoryLimit (the bench's versions set none)

SIZES: dict[str, dict[str, Any]] = {
    "quick": dict(
        versions=100,
        namespaces=10,
        model_names=30,
        floor_breaches=30,
        floor_rate=10.0,
        breaches=30,
        breach_rate=5.0,
        background_rate=5.0,
        remediations=20,
        remediation_rate=4.0,
        snapshots_per_version=10,
        rates="25,50,100,150,200",
        step_seconds=15.0,
        burst=300,
        soak_minutes=1.0,
        soak_rate=20.0,
        idle_seconds=10.0,
        big_versions=0,
        settle_seconds=0.5,
    ),
    "full": dict(
        versions=1000,
        namespaces=10,
        model_names=300,
        floor_breaches=200,
        floor_rate=10.0,
        breaches=200,
        breach_rate=5.0,
        background_rate=20.0,
        remediations=200,
        remediation_rate=5.0,
        snapshots_per_version=10,
        rates="20,30,40,50,60,80,100,150",
        step_seconds=60.0,
        burst=2000,
        soak_minutes=15.0,
        soak_rate=20.0,
        idle_seconds=60.0,
        big_versions=10000,
        settle_seconds=2.0,
    ),
}


def iso(dt: datetime) -> str:
    return dt.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def pct(values: list[float], p: float) -> float:
    """Nearest-rank percentile (inf when empty)."""
    if not values:
        return math.inf
    ordered = sorted(values)
    return ordered[max(0, math.ceil(p / 100 * len(ordered)) - 1)]


def ms(seconds: float) -> float:
    return round(seconds * 1000, 1) if math.isfinite(seconds) else math.inf


# ------------------------------------------------------------------------------ manifests


def rm_body(name: str, model_name: str, version: str, mode: str, serving: JSON | None = None) -> JSON:
    spec: JSON = {
        "modelName": model_name,
        "version": version,
        "artifact": {"uri": artifact_uri(model_name, version), "digest": DIGEST},
        "targetStage": "Production",
        "promotionPolicy": {"minSandboxDuration": "0s", "minHealthySnapshots": 0, "requireApproval": False},
        "rollbackPolicy": {"mode": mode, "consecutiveBreaches": 1},
    }
    if serving:
        spec["serving"] = serving
    return {"apiVersion": API_VERSION, "kind": "RegisteredModel", "metadata": {"name": name}, "spec": spec}


def artifact_uri(model_name: str, version: str) -> str:
    return f"s3://bench/{model_name}/{version}/model.bin"


def snapshot_body(name: str, rm: str, metrics: JSON) -> JSON:
    now = datetime.now(UTC)
    return {
        "apiVersion": API_VERSION,
        "kind": "PerformanceSnapshot",
        "metadata": {"name": name},
        "spec": {
            "modelRef": {"name": rm},
            "window": {"start": iso(now - timedelta(minutes=1)), "end": iso(now)},
            "sampleCount": 1000,
            "metrics": metrics,
        },
    }


def deployment_body(name: str, model_name: str) -> JSON:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "annotations": {"modelreg.io/serving-model": model_name}},
        "spec": {
            "replicas": 0,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {
                    "containers": [
                        {
                            "name": "server",
                            "image": "example/server:1",
                            "env": [{"name": "MODEL_URI"}],  # the value is modelreg's
                        }
                    ]
                },
            },
        },
    }


# ------------------------------------------------------------------------------ results


@dataclass
class Figure:
    name: str
    value: float | None
    unit: str
    target: str = ""
    ok: bool | None = None
    note: str = ""

    def row(self) -> str:
        if self.value is None:
            val = "n/a"
        elif isinstance(self.value, float) and not math.isfinite(self.value):
            val = "inf"
        elif isinstance(self.value, float):
            val = f"{self.value:.2f}" if abs(self.value) < 100 else f"{self.value:.0f}"
        else:
            val = str(self.value)
        status = "-" if self.ok is None else ("OK" if self.ok else "MISS")
        note = f"  ({self.note})" if self.note else ""
        return f"{self.name:<52} {val:>10} {self.unit:<12} {self.target:<22} {status}{note}"

    def as_dict(self) -> JSON:
        v = self.value
        if isinstance(v, float) and not math.isfinite(v):
            v = None
        return {
            "name": self.name,
            "value": v,
            "unit": self.unit,
            "target": self.target,
            "status": None if self.ok is None else ("OK" if self.ok else "MISS"),
            "note": self.note,
        }


@dataclass
class Window:
    t0: float  # epoch
    t1: float = 0.0
    snapshots: int = 0
    own_writes0: int = 0
    own_writes1: int = 0
    server_writes0: float = 0.0
    server_writes1: float = 0.0
    cpu0: dict[str, float] = field(default_factory=dict)
    cpu: dict[str, float] = field(default_factory=dict)  # CPU seconds used during the window
    load: float = 0.0  # 1-minute load average at the end
    extra: JSON = field(default_factory=dict)


# ------------------------------------------------------------------------------ the benchmark


class Bench:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.t_start = time.monotonic()
        self.t_start_epoch = time.time()
        self.rid = secrets.token_hex(2)
        self.ns_main = [f"bench-{self.rid}-{k}" for k in range(args.namespaces)]
        self.ns_rem = f"bench-{self.rid}-rem"
        self.ns_floor = f"bench-{self.rid}-floor"
        self.ns_big = [f"bench-{self.rid}-big-{k}" for k in range(args.namespaces)]
        self.figures: list[Figure] = []
        self.details: JSON = {"sizes": {k: v for k, v in vars(args).items() if k not in ("out",)}}
        self.windows: dict[str, Window] = {}
        self.work_dir = Path(args.work_dir or tempfile.mkdtemp(prefix="modelreg-bench-"))
        self.work_dir.mkdir(parents=True, exist_ok=True)
        self.bc: clu.BenchCluster | None = None
        self.kube: Kube | None = None
        self.op: OperatorProc | None = None
        self.tasks: list[asyncio.Task[Any]] = []
        self.seq = 0
        # what the watches saw (monotonic times)
        self.sent: dict[str, float] = {}
        self.evaluated: dict[str, float] = {}
        self.live_snaps: set[tuple[str, str]] = set()
        self.incident_of: dict[str, tuple[str, float]] = {}  # trigger snapshot -> (incident, seen)
        self.remediated: dict[str, float] = {}  # incident -> time seen Remediated
        self.stage: dict[tuple[str, str], str] = {}
        self.env: dict[tuple[str, str], tuple[str, float]] = {}  # deployment -> (MODEL_URI, since)
        # objects
        self.versions: list[tuple[str, str, str]] = []  # (ns, rm name, modelName)
        self.pairs: list[tuple[str, str, str, str]] = []  # (modelName, v1, v2, deployment) in ns_rem

    # --- plumbing ---------------------------------------------------------------------

    def all_namespaces(self) -> list[str]:
        big = self.ns_big if self.args.big_versions > 0 and "big" not in (self.args.skip or "") else []
        return [*self.ns_main, self.ns_rem, self.ns_floor, *big]

    def log(self, phase: str, msg: str) -> None:
        print(f"[{time.monotonic() - self.t_start:7.1f}s] {phase}: {msg}", file=sys.stderr, flush=True)

    def figure(self, *args: Any, **kwargs: Any) -> None:
        fig = Figure(*args, **kwargs)
        self.figures.append(fig)
        print(fig.row(), flush=True)

    def open_window(self, name: str) -> Window:
        w = Window(t0=time.time(), own_writes0=self.kube.own_writes if self.kube else 0, cpu0=self._cpu())
        if self.bc is not None and not self.bc.private:
            w.server_writes0 = clu.apiserver_writes(self.bc)
        self.windows[name] = w
        return w

    def close_window(self, name: str, snapshots: int = 0, **extra: Any) -> Window:
        w = self.windows[name]
        w.t1 = time.time()
        w.snapshots = snapshots
        w.extra.update(extra)
        w.own_writes1 = self.kube.own_writes if self.kube else 0
        after = self._cpu()
        w.cpu = {k: round(after.get(k, 0.0) - v, 2) for k, v in w.cpu0.items()}
        w.load = os.getloadavg()[0]
        if self.bc is not None and not self.bc.private:
            w.server_writes1 = clu.apiserver_writes(self.bc)
        return w

    def next_name(self, rm: str) -> str:
        self.seq += 1
        return f"{rm}-{self.seq}"

    async def wait_for(self, phase: str, what: str, pred: Callable[[], tuple[bool, str]], timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        next_report = time.monotonic() + 3
        while True:
            done, state = pred()
            if done:
                return True
            now = time.monotonic()
            if now >= deadline:
                self.log(phase, f"timed out waiting for {what}: {state}")
                return False
            if now >= next_report:
                self.log(phase, f"waiting for {what}: {state}")
                next_report = now + 3
            await asyncio.sleep(0.05)

    async def bulk(self, phase: str, what: str, coros: list[Callable[[], Awaitable[Any]]]) -> float:
        """Run the factories with bounded concurrency; progress every 3 s. Returns seconds."""
        sem = asyncio.Semaphore(self.args.concurrency)
        done = 0
        t0 = time.monotonic()
        last = [t0]

        async def one(f: Callable[[], Awaitable[Any]]) -> None:
            nonlocal done
            async with sem:
                await f()
            done += 1
            if time.monotonic() - last[0] >= 3:
                last[0] = time.monotonic()
                self.log(phase, f"{what}: {done}/{len(coros)}")

        await asyncio.gather(*(one(f) for f in coros))
        took = time.monotonic() - t0
        self.log(phase, f"{what}: {len(coros)} in {took:.1f}s")
        return took

    async def paced(
        self,
        rate: float,
        make: Callable[[int], Awaitable[Any]],
        *,
        duration: float | None = None,
        count: int | None = None,
        stop: asyncio.Event | None = None,
    ) -> tuple[int, float]:
        """Start ``make(i)`` at ``rate`` per second (bounded in flight). Returns (count, seconds)."""
        sem = asyncio.Semaphore(self.args.concurrency)
        tasks: list[asyncio.Task[Any]] = []
        start = time.monotonic()
        i = 0
        while True:
            if count is not None and i >= count:
                break
            if stop is not None and stop.is_set():
                break
            target = start + i / rate
            if duration is not None and target - start >= duration:
                break
            delay = target - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            await sem.acquire()
            task = asyncio.create_task(make(i))
            task.add_done_callback(lambda _t: sem.release())
            tasks.append(task)
            i += 1
        sent_for = time.monotonic() - start
        await asyncio.gather(*tasks)
        return i, sent_for

    async def create_snapshot(self, ns: str, rm: str, metrics: JSON) -> str:
        assert self.kube is not None
        name = self.next_name(rm)
        body = snapshot_body(name, rm, metrics)
        self.sent[name] = time.monotonic()
        await self.kube.create(path("performancesnapshots", ns), body)
        return name

    # --- watches ----------------------------------------------------------------------

    def on_snapshot(self, typ: str, obj: JSON, t: float) -> None:
        meta = obj["metadata"]
        key = (meta["namespace"], meta["name"])
        if typ == "DELETED":
            self.live_snaps.discard(key)
            return
        self.live_snaps.add(key)
        if (obj.get("status") or {}).get("evaluatedAt") and key[1] not in self.evaluated and key[1] in self.sent:
            self.evaluated[key[1]] = t

    def on_incident(self, typ: str, obj: JSON, t: float) -> None:
        if typ == "DELETED":
            return
        name = obj["metadata"]["name"]
        trig = ((obj.get("spec") or {}).get("trigger") or {}).get("snapshot")
        if trig and trig not in self.incident_of:
            self.incident_of[trig] = (name, t)
        if (obj.get("status") or {}).get("phase") == "Remediated" and name not in self.remediated:
            self.remediated[name] = t

    def on_model(self, typ: str, obj: JSON, t: float) -> None:
        meta = obj["metadata"]
        key = (meta["namespace"], meta["name"])
        if typ == "DELETED":
            self.stage.pop(key, None)
            return
        self.stage[key] = (obj.get("status") or {}).get("stage") or ""

    def on_deployment(self, typ: str, obj: JSON, t: float) -> None:
        if typ == "DELETED":
            return
        meta = obj["metadata"]
        key = (meta["namespace"], meta["name"])
        containers = obj.get("spec", {}).get("template", {}).get("spec", {}).get("containers") or []
        value = next(
            (
                e.get("value")
                for c in containers
                if c.get("name") == "server"
                for e in c.get("env") or []
                if e.get("name") == "MODEL_URI"
            ),
            None,
        )
        if value is not None and (key not in self.env or self.env[key][0] != value):
            self.env[key] = (str(value), t)

    async def start_watches(self) -> None:
        assert self.kube is not None
        specs: list[tuple[str, Callable[[str, JSON, float], None], JSON | None]] = [
            (path("performancesnapshots"), self.on_snapshot, None),
            (path("incidents"), self.on_incident, None),
            (path("registeredmodels"), self.on_model, None),
            (path("deployments", self.ns_rem, group="apps", version="v1"), self.on_deployment, None),
        ]
        for p, handler, params in specs:
            ready = asyncio.Event()
            self.tasks.append(asyncio.create_task(self.kube.watch(p, self._guard(handler), ready=ready, params=params)))
            await asyncio.wait_for(ready.wait(), 30)

    def _guard(self, handler: Callable[[str, JSON, float], None]) -> Callable[[str, JSON, float], None]:
        def call(typ: str, obj: JSON, t: float) -> None:
            ns = (obj.get("metadata") or {}).get("namespace", "")
            if not ns.startswith(f"bench-{self.rid}-"):
                return
            try:
                handler(typ, obj, t)
            except Exception as err:  # a bug here must not kill the watch
                self.log("watch", f"handler error: {err!r}")

        return call

    # --- phases -----------------------------------------------------------------------

    async def phase_floor(self) -> None:
        """The same API work per breach as the operator, by a bare client, with no operator running."""
        kube, ns, n = self.kube, self.ns_floor, self.args.floor_breaches
        assert kube is not None
        phase = "floor"
        rms = [f"floor-{i:04d}" for i in range(n)]
        rvs: dict[str, str] = {}

        async def make_rm(name: str) -> None:
            out = await kube.create(path("registeredmodels", ns), rm_body(name, name, "1.0.0", "IncidentOnly"))
            rvs[name] = out["metadata"]["resourceVersion"]

        await self.bulk(phase, "floor versions", [lambda r=r: make_rm(r) for r in rms])
        seen: dict[str, float] = {}
        work: list[asyncio.Task[Any]] = []
        errors: list[str] = []

        async def act(obj: JSON) -> None:
            name = obj["metadata"]["name"]
            rm = obj["spec"]["modelRef"]["name"]
            now = iso(datetime.now(UTC))
            breaches = [{"criterion": "errorRate", "value": 0.2, "threshold": 0.05}]
            try:
                await kube.merge_patch(
                    path("performancesnapshots", ns, name) + "/status",
                    {
                        "status": {
                            "verdict": "Critical",
                            "breaches": breaches,
                            "stage": "Production",
                            "evaluatedAt": now,
                        }
                    },
                )
                inc = f"{rm}-{obj['metadata']['uid'][:8]}"
                out = await kube.merge_patch(
                    path("registeredmodels", ns, rm) + "/status",
                    {
                        "metadata": {"resourceVersion": rvs[rm]},
                        "status": {
                            "health": "Critical",
                            "consecutiveBreaches": 1,
                            "lastSnapshot": {
                                "name": name,
                                "at": now,
                                "verdict": "Critical",
                                "metrics": BREACHING,
                                "breaches": breaches,
                            },
                            "incident": {"name": inc, "severity": "high"},
                        },
                    },
                )
                rvs[rm] = out["metadata"]["resourceVersion"]
                await kube.create(
                    path("incidents", ns),
                    {
                        "apiVersion": API_VERSION,
                        "kind": "Incident",
                        "metadata": {"name": inc, "labels": {"modelreg.io/registered-model": rm}},
                        "spec": {
                            "severity": "high",
                            "summary": f"{rm} 1.0.0: errorRate 0.2 > 0.05",
                            "modelRef": {"name": rm, "modelName": rm, "version": "1.0.0"},
                            "stage": "Production",
                            "trigger": {"snapshot": name, "breaches": breaches, "metrics": BREACHING},
                            "playbook": "model_rollback",
                            "dedupKey": f"{ns}/{rm}/1.0.0/performance",
                        },
                    },
                )
            except ApiError as err:
                errors.append(str(err))

        def on_snap(typ: str, obj: JSON, t: float) -> None:
            if typ == "ADDED":
                work.append(asyncio.create_task(act(obj)))

        def on_inc(typ: str, obj: JSON, t: float) -> None:
            if typ == "ADDED":
                seen.setdefault(obj["spec"]["trigger"]["snapshot"], t)

        ready1, ready2 = asyncio.Event(), asyncio.Event()
        watches = [
            asyncio.create_task(kube.watch(path("performancesnapshots", ns), on_snap, ready=ready1)),
            asyncio.create_task(kube.watch(path("incidents", ns), on_inc, ready=ready2)),
        ]
        await asyncio.wait_for(asyncio.gather(ready1.wait(), ready2.wait()), 30)
        names: list[str] = []

        async def breach(i: int) -> None:
            names.append(await self.create_snapshot(ns, rms[i], BREACHING))

        self.log(phase, f"{n} breaches at {self.args.floor_rate}/s by a bare client (no operator)")
        await self.paced(self.args.floor_rate, breach, count=n)
        await self.wait_for(
            phase, "incidents", lambda: (all(s in seen for s in names), f"{sum(s in seen for s in names)}/{n}"), 60
        )
        for w in watches:
            w.cancel()
        await asyncio.gather(*work, return_exceptions=True)
        lat = [seen[s] - self.sent[s] for s in names if s in seen]
        lat += [math.inf] * (n - len(lat))
        self.floor_p99 = pct(lat, 99)
        self.details["floor"] = {
            "n": n,
            "errors": errors[:5],
            "p50_ms": ms(pct(lat, 50)),
            "p99_ms": ms(pct(lat, 99)),
            "max_ms": ms(max(lat)),
        }
        self.figure("floor: breach->incident p50", ms(pct(lat, 50)), "ms", "-")
        self.figure("floor: breach->incident p99", ms(self.floor_p99), "ms", "-")
        # Leave nothing for the operator to reconcile.
        for plural in ("incidents", "performancesnapshots", "registeredmodels"):
            await kube.request("DELETE", path(plural, ns))

    async def start_operator(self) -> None:
        assert self.bc is not None
        extra: tuple[str, ...] = ()
        if not self.bc.private:
            # On the shared cluster, never touch other people's namespaces.
            for ns in self.all_namespaces():
                extra += ("--namespace", ns)
        self.op = OperatorProc(
            self.bc.operator_kubeconfig,
            self.work_dir / "operator.log",
            self.args.workers,
            extra=extra,
            module=self.args.operator_module,
        )
        t0 = self.op.start()
        t1 = await self.op.wait_live()
        self.log("operator", f"pid {self.op.pid} live in {t1 - t0:.2f}s (log {self.op.log_path})")

    async def phase_setup(self) -> None:
        kube, args = self.kube, self.args
        assert kube is not None and self.op is not None
        phase = "setup"
        per_ns = math.ceil(args.versions / args.namespaces)
        if per_ns > args.model_names:
            self.log(
                phase,
                "warning: more versions per namespace than model names; some versions will be Archived, not Production",
            )
        for i in range(args.versions):
            k, j = i % args.namespaces, i // args.namespaces
            offset = k * args.model_names // args.namespaces
            model = f"m{(offset + j) % args.model_names:04d}"
            self.versions.append((self.ns_main[k], f"{model}-v1", model))
        for r in range(args.remediations):
            model = f"r{r:04d}"
            self.pairs.append((model, f"{model}-v1", f"{model}-v2", f"{model}-api"))

        def serving(d: str) -> JSON:
            return {"targetRef": {"kind": "Deployment", "name": d}, "container": "server", "env": "MODEL_URI"}

        t0 = time.monotonic()
        self.open_window("setup")
        jobs: list[Callable[[], Awaitable[Any]]] = [
            (lambda ns=ns, n=n, m=m: kube.create(path("registeredmodels", ns), rm_body(n, m, "1.0.0", "IncidentOnly")))
            for ns, n, m in self.versions
        ]
        jobs += [
            (
                lambda m=m, d=d: kube.create(
                    path("deployments", self.ns_rem, group="apps", version="v1"), deployment_body(d, m)
                )
            )
            for m, _, _, d in self.pairs
        ]
        jobs += [
            (
                lambda m=m, v1=v1, d=d: kube.create(
                    path("registeredmodels", self.ns_rem), rm_body(v1, m, "1.0.0", "Automatic", serving(d))
                )
            )
            for m, v1, _, d in self.pairs
        ]
        await self.bulk(phase, "versions, deployments", jobs)
        want = [(ns, n) for ns, n, _ in self.versions]

        def all_prod(keys: list[tuple[str, str]]) -> tuple[bool, str]:
            n = sum(self.stage.get(k) == "Production" for k in keys)
            return n == len(keys), f"{n}/{len(keys)} in Production"

        async def feed_second_versions() -> None:
            """Create each pair's v2 as soon as its v1 is in Production and served."""
            pending = list(self.pairs)
            sem = asyncio.Semaphore(args.concurrency)

            async def create(m: str, v2: str, d: str) -> None:
                async with sem:
                    await kube.create(
                        path("registeredmodels", self.ns_rem), rm_body(v2, m, "2.0.0", "Automatic", serving(d))
                    )

            while pending:
                ready = [
                    p
                    for p in pending
                    if self.stage.get((self.ns_rem, p[1])) == "Production"
                    and self.env.get((self.ns_rem, p[3]), ("", 0))[0] == artifact_uri(p[0], "1.0.0")
                ]
                if ready:
                    pending = [p for p in pending if p not in ready]
                    await asyncio.gather(*(create(m, v2, d) for m, _, v2, d in ready))
                else:
                    await asyncio.sleep(0.1)

        feeder = asyncio.create_task(feed_second_versions())
        await self.wait_for(phase, "promotion", lambda: all_prod(want), 900)
        t_prod = time.monotonic() - t0
        if self.pairs:
            want2 = [(self.ns_rem, v2) for _, _, v2, _ in self.pairs]
            await self.wait_for(
                phase,
                "remediation pairs (v1 served, then v2 promoted and served)",
                lambda: (
                    all_prod(want2)[0] and self._env_is({d: artifact_uri(m, "2.0.0") for m, _, _, d in self.pairs})[0],
                    f"v2 {all_prod(want2)[1]}, serving "
                    f"{self._env_is({d: artifact_uri(m, '2.0.0') for m, _, _, d in self.pairs})[1]}",
                ),
                900,
            )
        feeder.cancel()
        await self.op.wait_settled(progress=lambda m: self.log(phase, m))
        self.close_window("setup")
        took = time.monotonic() - t0
        self.details["setup"] = {
            "versions": args.versions,
            "remediation_pairs": len(self.pairs),
            "seconds_to_production": round(t_prod, 1),
            "seconds_total": round(took, 1),
        }
        self.log(
            phase,
            f"{args.versions} versions in Production after {t_prod:.1f}s; "
            f"{len(self.pairs)} remediation pairs ready; total {took:.1f}s",
        )

    def _env_is(self, want: dict[str, str]) -> tuple[bool, str]:
        n = sum(self.env.get((self.ns_rem, d), ("", 0))[0] == uri for d, uri in want.items())
        return n == len(want), f"{n}/{len(want)} deployments"

    async def background(self, stop: asyncio.Event, versions: list[tuple[str, str, str]], counter: list[int]) -> None:
        rate = self.args.background_rate
        if rate <= 0 or not versions:
            return

        async def one(i: int) -> None:
            ns, rm, _ = versions[i % len(versions)]
            await self.create_snapshot(ns, rm, HEALTHY)
            counter[0] += 1

        await self.paced(rate, one, stop=stop)

    async def phase_breach(self) -> None:
        args = self.args
        phase = "breach"
        n = min(args.breaches, len(self.versions))
        step = len(self.versions) / n
        chosen = [self.versions[int(i * step)] for i in range(n)]
        chosen_set = {(ns, rm) for ns, rm, _ in chosen}
        others = [v for v in self.versions if (v[0], v[1]) not in chosen_set]
        stop = asyncio.Event()
        bg_count = [0]
        w = self.open_window("breach")
        bg = asyncio.create_task(self.background(stop, others, bg_count))
        names: list[str] = []
        keys: list[tuple[str, str, str]] = []

        async def one(i: int) -> None:
            ns, rm, _ = chosen[i]
            s = await self.create_snapshot(ns, rm, BREACHING)
            names.append(s)
            keys.append((ns, rm, s))

        self.log(
            phase,
            f"{n} breaches at {args.breach_rate}/s over {len(self.versions)} versions, "
            f"background {args.background_rate}/s healthy",
        )
        cpu0 = self._cpu()
        t0 = time.monotonic()
        await self.paced(args.breach_rate, one, count=n)
        await self.wait_for(
            phase,
            "incidents",
            lambda: (all(s in self.incident_of for s in names), f"{sum(s in self.incident_of for s in names)}/{n}"),
            30,
        )
        stop.set()
        await bg
        await self.op.wait_settled()
        await asyncio.sleep(self.args.settle_seconds)
        cpu = self._cpu_delta(cpu0, time.monotonic() - t0)
        self.close_window("breach", snapshots=bg_count[0])
        w.extra["keys"] = [(ns, rm, s, self.incident_of.get(s, ("", 0))[0]) for ns, rm, s in keys]
        w.extra["n"] = n
        lat = [self.incident_of[s][1] - self.sent[s] for s in names if s in self.incident_of]
        missing = n - len(lat)
        lat += [math.inf] * missing
        p50, p99 = pct(lat, 50), pct(lat, 99)
        self.details["breach"] = {
            "n": n,
            "missing": missing,
            "background_snapshots": bg_count[0],
            "p50_ms": ms(p50),
            "p90_ms": ms(pct(lat, 90)),
            "p99_ms": ms(p99),
            "max_ms": ms(max(lat)),
            "cpu_cores": cpu,
        }
        self.figure(f"breach->incident p50 ({len(self.versions)} versions)", ms(p50), "ms", "-")
        self.figure(f"breach->incident p99 ({len(self.versions)} versions)", ms(p99), "ms", "<= 250 ms", p99 <= 0.25)
        floor = getattr(self, "floor_p99", None)
        if floor:
            ratio = p99 / floor
            self.figure("breach->incident p99 / floor p99", round(ratio, 2), "x", "<= 3x", ratio <= 3)

    async def phase_remediation(self) -> None:
        if not self.pairs:
            return
        args = self.args
        phase = "remediation"
        stop = asyncio.Event()
        bg_count = [0]
        w = self.open_window("remediation")
        bg = asyncio.create_task(self.background(stop, self.versions, bg_count))
        names: dict[str, tuple[str, str, str, str]] = {}

        async def one(i: int) -> None:
            pair = self.pairs[i]
            s = await self.create_snapshot(self.ns_rem, pair[2], BREACHING)
            names[s] = pair

        def done_at(s: str) -> float | None:
            m, _, _, d = names[s]
            inc = self.incident_of.get(s)
            if inc is None or inc[0] not in self.remediated:
                return None
            uri, since = self.env.get((self.ns_rem, d), ("", 0.0))
            if uri != artifact_uri(m, "1.0.0") or since < self.sent[s]:
                return None
            return max(self.remediated[inc[0]], since)

        n = len(self.pairs)
        self.log(phase, f"{n} breaches (Automatic, Deployment opted in) at {args.remediation_rate}/s")
        cpu0 = self._cpu()
        t0 = time.monotonic()
        await self.paced(args.remediation_rate, one, count=n)
        await self.wait_for(
            phase,
            "remediations",
            lambda: (all(done_at(s) is not None for s in names), f"{sum(done_at(s) is not None for s in names)}/{n}"),
            60,
        )
        stop.set()
        await bg
        await self.op.wait_settled()
        await asyncio.sleep(self.args.settle_seconds)
        cpu = self._cpu_delta(cpu0, time.monotonic() - t0)
        self.close_window("remediation", snapshots=bg_count[0])
        w.extra["keys"] = [(s, *pair, self.incident_of.get(s, ("", 0))[0]) for s, pair in names.items()]
        w.extra["n"] = n
        lat, lat_inc, lat_rem = [], [], []
        for s in names:
            t = done_at(s)
            lat.append(t - self.sent[s] if t is not None else math.inf)
            if s in self.incident_of:
                lat_inc.append(self.incident_of[s][1] - self.sent[s])
                inc = self.incident_of[s][0]
                if inc in self.remediated:
                    lat_rem.append(self.remediated[inc] - self.sent[s])
        p50, p99 = pct(lat, 50), pct(lat, 99)
        self.details["remediation"] = {
            "n": n,
            "missing": sum(not math.isfinite(x) for x in lat),
            "background_snapshots": bg_count[0],
            "p50_ms": ms(p50),
            "p99_ms": ms(p99),
            "max_ms": ms(max(lat)),
            "incident_visible_p50_ms": ms(pct(lat_inc, 50)),
            "incident_visible_p99_ms": ms(pct(lat_inc, 99)),
            "remediated_phase_p99_ms": ms(pct(lat_rem, 99)),
            "cpu_cores": cpu,
        }
        self.figure("breach->remediated p50 (Automatic + Deployment)", ms(p50), "ms", "-")
        self.figure("breach->remediated p99 (Automatic + Deployment)", ms(p99), "ms", "<= 500 ms", p99 <= 0.5)

    async def phase_memory(self) -> None:
        """Top the V versions up to snapshots_per_version x V live snapshots, then read RSS."""
        kube, args = self.kube, self.args
        assert kube is not None and self.op is not None
        phase = "memory"
        main = set(self.ns_main)
        target = args.snapshots_per_version * len(self.versions)
        have: Counter[tuple[str, str]] = Counter()
        for ns, name in self.live_snaps:
            if ns in main:
                have[(ns, name.rsplit("-", 1)[0])] += 1
        jobs: list[Callable[[], Awaitable[Any]]] = []
        names: list[str] = []
        for ns, rm, _ in self.versions:
            for _ in range(args.snapshots_per_version - have[(ns, rm)]):

                async def job(ns: str = ns, rm: str = rm) -> None:
                    names.append(await self.create_snapshot(ns, rm, HEALTHY))

                jobs.append(job)
        await self.bulk(phase, f"healthy snapshots up to {target}", jobs)
        await self.wait_for(
            phase,
            "evaluation",
            lambda: (
                all(s in self.evaluated for s in names),
                f"{sum(s in self.evaluated for s in names)}/{len(names)}",
            ),
            1800,
        )
        await self.op.wait_settled(timeout=600)
        await asyncio.sleep(self.args.settle_seconds)
        live = sum(1 for ns, _ in self.live_snaps if ns in main)
        rss, hwm = self.op.mem_mib()
        self.details["memory"] = {
            "versions": len(self.versions) + 2 * len(self.pairs),
            "live_snapshots": len(self.live_snaps),
            "main_snapshots": live,
            "rss_mib": round(rss, 1),
            "hwm_mib": round(hwm, 1),
        }
        label = f"{len(self.versions)} versions + {live} snapshots"
        self.figure(f"operator RSS @ {label}", round(rss, 1), "MiB", "-")
        self.figure(
            f"operator peak RSS (VmHWM) @ {label}",
            round(hwm, 1),
            "MiB",
            "<= 150 MiB",
            hwm <= 150,
            note="" if len(self.versions) >= 1000 else "target is for 1,000 + 10,000",
        )

    async def _census(self) -> tuple[int, dict[tuple[str, str], tuple[int, str]]]:
        kube = self.kube
        assert kube is not None
        incs = [
            i
            for i in await kube.list_all(path("incidents"))
            if i["metadata"]["namespace"].startswith(f"bench-{self.rid}-")
        ]
        rms = {}
        for o in await kube.list_all(path("registeredmodels")):
            meta = o["metadata"]
            if meta["namespace"].startswith(f"bench-{self.rid}-"):
                st = o.get("status") or {}
                rms[(meta["namespace"], meta["name"])] = (len(st.get("stageHistory") or []), st.get("stage", ""))
        return len(incs), rms

    async def phase_restart(self) -> None:
        assert self.op is not None
        phase = "restart"
        inc0, rms0 = await self._census()
        keys = {(ns, m) for ns, _, m in self.versions} | {(self.ns_rem, m) for m, *_ in self.pairs}
        self.log(
            phase,
            f"stopping the operator ({len(rms0)} versions, {len(self.live_snaps)} snapshots, {inc0} incidents present)",
        )
        await asyncio.to_thread(self.op.stop)
        self.open_window("restart")
        offset = clu.audit_size(self.bc) if self.bc is not None and self.bc.private else 0
        since = time.time()
        t0 = self.op.start()
        async with self._spy("restart"):
            t_live = await self.op.wait_live(120)
            t_models = await self.op.wait_settled(
                min_reconciles=len(keys), quiet=0.5, timeout=600, progress=lambda m: self.log(phase, m)
            )
            # Kopf opens the snapshot watch only after it has handled every listed snapshot.
            t_snaps = await self._watch_started("performancesnapshots", offset, since, 600)
        ready = max(t_live, t_models, t_snaps or 0.0) - t0
        self.log(
            phase,
            f"live after {t_live - t0:.2f}s, all {len(keys)} models reconciled after "
            f"{t_models - t0:.2f}s, snapshots listed and handled (watch opened) after "
            + (f"{t_snaps - t0:.2f}s" if t_snaps else "?"),
        )
        await asyncio.sleep(self.args.settle_seconds)
        self.close_window("restart")
        rss, hwm = self.op.mem_mib()
        # Ready means handling new events too (Kopf's index wait once held them back for
        # tens of seconds after everything listed had been reconciled): a new snapshot.
        ns, rm, _ = self.versions[0]
        probe = await self.create_snapshot(ns, rm, HEALTHY)
        deadline = time.monotonic() + 600
        while probe not in self.evaluated and time.monotonic() < deadline:
            await asyncio.sleep(0.01)
        t_react = self.evaluated.get(probe)
        react_ms = (t_react - self.sent[probe]) * 1000 if t_react else None
        self.log(
            phase,
            "a snapshot created after that evaluated in "
            + (f"{react_ms:.0f} ms ({t_react - t0:.2f}s after start)" if t_react else "- (not within 600 s)"),
        )
        # A new event still waiting more than a second after "ready" was not ready yet.
        ready += max(0.0, (react_ms if react_ms is not None else 600_000.0) / 1000 - 1.0)
        await self.phase_idle()  # the restarted operator has nothing to do: measure idle now
        inc1, rms1 = await self._census()
        stage_changes = sum(max(0, rms1.get(k, (0, ""))[0] - h) for k, (h, _) in rms0.items())
        stage_diff = sum(rms1.get(k, (0, ""))[1] != s for k, (_, s) in rms0.items())
        spurious = max(0, inc1 - inc0) + stage_changes + stage_diff
        self.details["restart"] = {
            "live_s": round(t_live - t0, 2),
            "ready_s": round(ready, 2),
            "models_reconciled_s": round(t_models - t0, 2),
            "snapshot_watch_s": round(t_snaps - t0, 2) if t_snaps else None,
            "models": len(keys),
            "incidents_before": inc0,
            "incidents_after": inc1,
            "stage_history_growth": stage_changes,
            "stage_changed": stage_diff,
            "new_snapshot_evaluated_ms": round(react_ms, 1) if react_ms is not None else None,
            "rss_after_restart_mib": round(rss, 1),
            "hwm_after_restart_mib": round(hwm, 1),
        }
        self.figure(
            f"restart to ready ({len(rms0)} versions, {len(self.live_snaps)} snapshots)",
            round(ready, 2),
            "s",
            "<= 30 s",
            ready <= 30,
            note=f"a new snapshot then evaluated in {react_ms:.0f} ms" if react_ms is not None else "",
        )
        self.figure("spurious incidents + stage changes on restart", spurious, "count", "0", spurious == 0)

    def _cpu(self) -> dict[str, float]:
        out = {
            "operator": self.op.cpu_seconds() if self.op and self.op.alive() else 0.0,
            "operator_cpu_wait": proc_sched(self.op.pid)[1] if self.op and self.op.alive() else 0.0,
            "bench": sum(os.times()[:2]),
        }
        if self.bc is not None:
            for comp, pid in clu.component_pids(self.bc).items():
                out[comp] = proc_cpu_seconds(pid)
        return out

    def _cpu_delta(self, before: dict[str, float], seconds: float) -> dict[str, float]:
        after = self._cpu()
        return {k: round((after.get(k, 0) - v) / seconds, 2) for k, v in before.items() if seconds > 0}

    @contextlib.asynccontextmanager
    async def _spy(self, name: str) -> AsyncIterator[None]:
        """py-spy the running operator for the body's duration (only with ``--profile``)."""
        if not self.args.profile or self.op is None:
            yield
            return
        import shutil
        import signal
        import subprocess

        spy = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
        out = self.work_dir / f"profile-{name}"
        procs = [
            subprocess.Popen(
                [spy, "record", "--pid", str(self.op.pid), "--rate", "100", "--nonblocking"]
                + ["--format", fmt, "-o", f"{out}.{ext}"],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            for fmt, ext in (("raw", "txt"), ("flamegraph", "svg"))
        ]
        try:
            yield
        finally:
            for proc in procs:
                proc.send_signal(signal.SIGINT)
            for proc in procs:
                try:
                    proc.wait(30)
                except subprocess.TimeoutExpired:
                    proc.kill()
            self.log("profile", f"py-spy profiles of the operator: {out}.txt (collapsed stacks), {out}.svg")
            self.details.setdefault("profile", {})[name] = top_frames(Path(f"{out}.txt"))

    async def phase_profiled_throughput(self) -> None:
        async with self._spy("throughput"):
            await self.phase_throughput()

    async def phase_throughput(self) -> None:
        args = self.args
        phase = "throughput"
        rates = [float(r) for r in str(args.rates).split(",") if r]
        steps = []
        best = 0.0
        for rate in rates:
            names: list[str] = []
            wname = f"step-{rate:g}"
            self.open_window(wname)

            async def one(i: int, names: list[str] = names) -> None:
                ns, rm, _ = self.versions[i % len(self.versions)]
                names.append(await self.create_snapshot(ns, rm, HEALTHY))

            self.log(phase, f"{rate:g}/s for {args.step_seconds:g}s")
            cpu0 = self._cpu()
            t0 = time.monotonic()
            count, sent_for = await self.paced(rate, one, duration=args.step_seconds)
            await self.wait_for(
                phase,
                "evaluation",
                lambda names=names: (
                    all(s in self.evaluated for s in names),
                    f"{sum(s in self.evaluated for s in names)}/{len(names)}",
                ),
                20 + args.step_seconds,
            )
            wall = time.monotonic() - t0
            cpu = self._cpu_delta(cpu0, wall)
            await self.op.wait_settled(timeout=120)
            self.close_window(wname, snapshots=len(names))
            lat = [self.evaluated[s] - self.sent[s] if s in self.evaluated else math.inf for s in names]
            achieved = count / sent_for if sent_for > 0 else 0.0
            p50, p99 = pct(lat, 50), pct(lat, 99)
            ok = p99 <= 1.0 and achieved >= 0.95 * rate
            steps.append(
                {
                    "rate": rate,
                    "achieved": round(achieved, 1),
                    "n": len(names),
                    "p50_ms": ms(p50),
                    "p99_ms": ms(p99),
                    "max_ms": ms(max(lat)),
                    "ok": ok,
                    "cpu_cores": cpu,
                }
            )
            self.log(
                phase,
                f"{rate:g}/s: achieved {achieved:.1f}/s, p50 {ms(p50)} ms, p99 {ms(p99)} ms, "
                f"cpu {cpu} -> {'OK' if ok else 'MISS'}",
            )
            if not ok:
                break
            best = rate
        self.details["throughput_steps"] = steps
        self.figure(
            "sustained healthy snapshots/s (p99 eval <= 1 s)",
            best,
            "snapshots/s",
            ">= 100/s",
            best >= 100,
            note=f"{args.step_seconds:g} s steps",
        )

        # Burst: B snapshots as fast as possible until all are evaluated.
        names = []
        self.open_window("burst")

        async def burst_one(i: int) -> None:
            ns, rm, _ = self.versions[i % len(self.versions)]
            names.append(await self.create_snapshot(ns, rm, HEALTHY))

        self.log(phase, f"burst of {args.burst}")
        cpu0 = self._cpu()
        t0 = time.monotonic()
        await self.bulk(phase, "burst snapshots", [lambda i=i: burst_one(i) for i in range(args.burst)])
        created = time.monotonic() - t0
        await self.wait_for(
            phase,
            "burst evaluation",
            lambda: (
                all(s in self.evaluated for s in names),
                f"{sum(s in self.evaluated for s in names)}/{len(names)}",
            ),
            600,
        )
        cpu = self._cpu_delta(cpu0, time.monotonic() - t0)
        await self.op.wait_settled(timeout=120)
        self.close_window("burst", snapshots=len(names))
        ends = [self.evaluated[s] for s in names if s in self.evaluated]
        drain = (max(ends) - t0) if len(ends) == len(names) else math.inf
        self.details["burst"] = {
            "n": len(names),
            "create_s": round(created, 2),
            "drain_s": round(drain, 2),
            "evaluated_per_s": round(len(names) / drain, 1) if drain else None,
            "cpu_cores": cpu,
        }
        self.figure(
            f"burst of {len(names)} drained in",
            round(drain, 2),
            "s",
            "-",
            note=f"{len(names) / drain:.0f}/s; created in {created:.1f}s" if math.isfinite(drain) else "",
        )

    async def phase_soak(self) -> None:
        args = self.args
        assert self.op is not None
        phase = "soak"
        seconds = args.soak_minutes * 60
        if seconds <= 0:
            return
        samples: list[tuple[float, float]] = []
        names: list[str] = []
        stop = asyncio.Event()

        async def sampler() -> None:
            t0 = time.monotonic()
            while not stop.is_set():
                samples.append((time.monotonic() - t0, self.op.mem_mib()[0]))
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), 5)

        async def one(i: int) -> None:
            ns, rm, _ = self.versions[i % len(self.versions)]
            names.append(await self.create_snapshot(ns, rm, HEALTHY))

        # Steady state first: every version's evaluated history at its limit (the operator's
        # default, 20). Otherwise the soak measures the store and the statuses filling up to
        # their bounds (about 9 MiB at 1,000 versions from 10 snapshots each), not a leak.
        per_version = Counter(name.rsplit("-", 1)[0] for ns, name in self.live_snaps)
        fill: list[Callable[[], Awaitable[Any]]] = []
        for ns, rm, _ in self.versions:
            for _ in range(max(0, SOAK_HISTORY - per_version.get(rm, 0))):
                fill.append(lambda ns=ns, rm=rm: self.create_snapshot(ns, rm, HEALTHY))
        if fill:
            before = len(self.evaluated)
            await self.bulk(phase, f"filling every version's history to {SOAK_HISTORY}", fill)
            await self.wait_for(
                phase,
                "evaluation of the fill",
                lambda: (len(self.evaluated) - before >= len(fill), f"{len(self.evaluated) - before}/{len(fill)}"),
                600,
            )
            await self.op.wait_settled(timeout=300)
        self.log(phase, f"{args.soak_rate:g}/s for {args.soak_minutes:g} min")
        self.open_window("soak")
        sampling = asyncio.create_task(sampler())
        progress = asyncio.create_task(self._soak_progress(samples, seconds))
        settled = True
        try:
            await self.paced(args.soak_rate, one, duration=seconds)
            await self.wait_for(
                phase,
                "evaluation",
                lambda: (
                    all(s in self.evaluated for s in names),
                    f"{sum(s in self.evaluated for s in names)}/{len(names)}",
                ),
                60,
            )
            try:
                await self.op.wait_settled(timeout=300)
            except TimeoutError:
                settled = False
                self.log(phase, "the operator did not catch up within 300 s")
        finally:
            stop.set()
            progress.cancel()
            await sampling
        samples.append((samples[-1][0] + 0.1, self.op.mem_mib()[0]))
        self.close_window("soak", snapshots=len(names))
        lat = [self.evaluated[s] - self.sent[s] if s in self.evaluated else math.inf for s in names]
        start, end = samples[0][1], samples[-1][1]
        growth = end - start
        slope = None
        if len(samples) >= 3:
            xs, ys = [s[0] for s in samples], [s[1] for s in samples]
            slope = statistics.linear_regression(xs, ys).slope * 60
        self.details["soak"] = {
            "minutes": args.soak_minutes,
            "n": len(names),
            "rss_start_mib": round(start, 1),
            "rss_end_mib": round(end, 1),
            "rss_max_mib": round(max(y for _, y in samples), 1),
            "slope_mib_per_min": round(slope, 3) if slope is not None else None,
            "eval_p50_ms": ms(pct(lat, 50)),
            "eval_p99_ms": ms(pct(lat, 99)),
            "caught_up": settled,
            "samples": [(round(x, 1), round(y, 1)) for x, y in samples],
        }
        self.figure(
            f"RSS growth over {args.soak_minutes:g} min at {args.soak_rate:g}/s",
            round(growth, 2),
            "MiB",
            "<= 5 MiB / 15 min",
            growth <= 5 * max(1.0, args.soak_minutes / 15),
            note=f"{start:.0f} -> {end:.0f} MiB",
        )

    async def _soak_progress(self, samples: list[tuple[float, float]], seconds: float) -> None:
        t0 = time.monotonic()
        while True:
            await asyncio.sleep(15)
            rss = samples[-1][1] if samples else 0
            self.log(
                "soak",
                f"{time.monotonic() - t0:.0f}/{seconds:.0f}s, RSS {rss:.1f} MiB, "
                f"{len(self.sent)} snapshots sent so far",
            )

    async def _watch_started(self, resource: str, offset: int, since: float, timeout: float) -> float | None:
        """Monotonic time the operator's watch on ``resource`` started (audit log), None without one."""
        if self.bc is None or not self.bc.private:
            return None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            reqs = await asyncio.to_thread(clu.read_audit, self.bc, offset)
            for r in reqs:
                if r.verb == "watch" and r.resource == resource and r.t >= since:
                    return r.t - (time.time() - time.monotonic())
            await asyncio.sleep(0.2)
        return None

    async def phase_idle(self) -> None:
        assert self.op is not None
        if "idle" in self.windows:
            return
        await self.op.wait_settled(timeout=120)
        await asyncio.sleep(self.args.settle_seconds)
        self.log("idle", f"{self.args.idle_seconds:g}s with nothing to do")
        self.open_window("idle")
        await asyncio.sleep(self.args.idle_seconds)
        self.close_window("idle")

    async def phase_big(self) -> None:
        kube, args = self.kube, self.args
        assert kube is not None and self.op is not None
        total_now = len(self.versions) + 2 * len(self.pairs)
        extra = args.big_versions - total_now
        if args.big_versions <= 0 or extra <= 0:
            return
        phase = "big"
        for ns in self.ns_big:
            await kube.create(
                path("namespaces", group="", version="v1"),
                {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns, "labels": {"modelreg-bench": "1"}}},
                exist_ok=True,
            )
        keys = [(self.ns_big[i % len(self.ns_big)], f"b{i:05d}-v1", f"b{i:05d}") for i in range(extra)]
        t0 = time.monotonic()
        await self.bulk(
            phase,
            f"{extra} more versions",
            [
                (
                    lambda ns=ns, n=n, m=m: kube.create(
                        path("registeredmodels", ns), rm_body(n, m, "1.0.0", "IncidentOnly")
                    )
                )
                for ns, n, m in keys
            ],
        )
        want = [(ns, n) for ns, n, _ in keys]
        await self.wait_for(
            phase,
            "promotion",
            lambda: (
                all(self.stage.get(k) == "Production" for k in want),
                f"{sum(self.stage.get(k) == 'Production' for k in want)}/{len(want)} in Production",
            ),
            1800,
        )
        took = time.monotonic() - t0
        await self.op.wait_settled(timeout=600)
        await asyncio.sleep(self.args.settle_seconds)
        rss, hwm = self.op.mem_mib()
        total = total_now + extra
        self.details["big"] = {
            "versions": total,
            "promotion_s": round(took, 1),
            "rss_mib": round(rss, 1),
            "hwm_mib": round(hwm, 1),
            "live_snapshots": len(self.live_snaps),
        }
        self.figure(
            f"operator RSS @ {total} versions",
            round(rss, 1),
            "MiB",
            "<= 400 MiB",
            rss <= 400,
            note=f"peak {hwm:.0f} MiB; {extra} promoted in {took:.0f}s",
        )

    # --- API cost -----------------------------------------------------------------------

    def cpu_figures(self) -> None:
        """CPU per healthy snapshot: what the operator and the API server need, whatever the load."""
        healthy = [w for n, w in self.windows.items() if (n.startswith("step-") or n in ("burst", "soak")) and w.t1]
        snaps = sum(w.snapshots for w in healthy)
        if not snaps:
            return
        op = sum(w.cpu.get("operator", 0.0) for w in healthy)
        wait = sum(w.cpu.get("operator_cpu_wait", 0.0) for w in healthy)
        api = sum(w.cpu.get("kube-apiserver", 0.0) for w in healthy)
        etcd = sum(w.cpu.get("etcd", 0.0) for w in healthy)
        per_op, per_api = 1000 * op / snaps, 1000 * api / snaps
        self.details["cpu_per_healthy_snapshot_ms"] = {
            "operator": round(per_op, 2),
            "kube-apiserver": round(per_api, 2),
            "etcd": round(1000 * etcd / snaps, 2),
            "operator_waiting_for_cpu_ms": round(1000 * wait / snaps, 2),
            "snapshots": snaps,
            "load_avg": [round(w.load, 2) for w in healthy],
        }
        self.figure(
            "operator CPU per healthy snapshot",
            round(per_op, 2),
            "ms",
            "-",
            note=f"=> {1000 / per_op:.0f} snapshots/s per operator core" if per_op else "",
        )
        self.figure(
            "kube-apiserver CPU per healthy snapshot",
            round(per_api, 2),
            "ms",
            "-",
            note=f"operator waited {1000 * wait / snaps:.1f} ms/snapshot for a CPU; "
            f"load avg {max(w.load for w in healthy):.1f} on {os.cpu_count()} CPUs",
        )

    def api_figures(self) -> None:
        if self.bc is None:
            return
        if not self.bc.private:
            self._api_figures_from_metrics()
            return
        reqs = clu.read_audit(self.bc, since=self.t_start_epoch)
        self.details["audit_requests"] = len(reqs)
        api: JSON = {}

        def win(name: str) -> list[clu.Req]:
            w = self.windows.get(name)
            return clu.between(reqs, w.t0, w.t1) if w and w.t1 else []

        # healthy snapshots: throughput steps, burst, soak (nothing else happens then)
        healthy_w = [n for n in self.windows if n.startswith("step-") or n in ("burst", "soak")]
        writes = [r for n in healthy_w for r in win(n) if r.write]
        reads = [r for n in healthy_w for r in win(n) if not r.write]
        snaps = sum(self.windows[n].snapshots for n in healthy_w)
        if snaps:
            per = len(writes) / snaps
            api["healthy"] = {
                "snapshots": snaps,
                "writes": len(writes),
                "reads": len(reads),
                "breakdown": clu.breakdown(writes),
                "reads_breakdown": clu.breakdown(reads),
            }
            self.figure(
                "API writes per healthy snapshot",
                round(per, 2),
                "writes",
                "<= 3",
                per <= 3,
                note=", ".join(f"{k} {v / snaps:.2f}" for k, v in clu.breakdown(writes).items()),
            )
        self.healthy_writes = (len(writes) / snaps) if snaps else 0.0

        # detection: writes attributable to the breaching versions' objects
        w = self.windows.get("breach")
        if w and w.t1:
            keys: set[tuple[str, str, str]] = set()
            prefixes: list[tuple[str, str]] = []
            for ns, rm, snap, inc in w.extra["keys"]:
                keys |= {
                    (ns, "performancesnapshots", snap),
                    (ns, "registeredmodels", rm),
                    (ns, "incidents", inc),
                    (ns, "configmaps", f"{rm}-model-card"),
                }
                prefixes += [(ns, f"{rm}."), (ns, f"{inc}.")]
            mine = [r for r in win("breach") if r.write and self._attributed(r, keys, prefixes)]
            n = w.extra["n"]
            per = len(mine) / n
            self.detection_writes = per
            api["detection"] = {
                "breaches": n,
                "writes": len(mine),
                "breakdown": clu.breakdown(mine),
                "window_writes_total": sum(r.write for r in win("breach")),
            }
            self.figure(
                "API writes per breach, detection (IncidentOnly)",
                round(per, 2),
                "writes",
                "<= 4",
                per <= 4,
                note=", ".join(f"{k} {v / n:.2f}" for k, v in clu.breakdown(mine).items()),
            )
        w = self.windows.get("remediation")
        if w and w.t1:
            keys, prefixes = set(), []
            ns = self.ns_rem
            for snap, _m, v1, v2, d, inc in w.extra["keys"]:
                keys |= {
                    (ns, "performancesnapshots", snap),
                    (ns, "registeredmodels", v1),
                    (ns, "registeredmodels", v2),
                    (ns, "incidents", inc),
                    (ns, "deployments", d),
                    (ns, "configmaps", f"{v1}-model-card"),
                    (ns, "configmaps", f"{v2}-model-card"),
                }
                prefixes += [(ns, f"{v1}."), (ns, f"{v2}."), (ns, f"{inc}.")]
            mine = [r for r in win("remediation") if r.write and self._attributed(r, keys, prefixes)]
            n = w.extra["n"]
            total = len(mine) / n
            detection = getattr(self, "detection_writes", 0.0)
            rem = total - detection
            api["remediation"] = {
                "breaches": n,
                "writes": len(mine),
                "per_breach_total": round(total, 2),
                "breakdown": clu.breakdown(mine),
            }
            self.figure(
                "API writes per breach, remediation (beyond detection)",
                round(rem, 2),
                "writes",
                "<= 6",
                rem <= 6,
                note=f"total {total:.2f}: " + ", ".join(f"{k} {v / n:.2f}" for k, v in clu.breakdown(mine).items()),
            )
        w = self.windows.get("idle")
        if w and w.t1:
            idle = win("idle")
            minutes = (w.t1 - w.t0) / 60
            wr = [r for r in idle if r.write]
            api["idle"] = {
                "seconds": round(w.t1 - w.t0, 1),
                "requests": len(idle),
                "writes": len(wr),
                "breakdown": clu.breakdown(idle),
            }
            self.figure(
                f"API writes per minute, idle ({len(self.versions)} versions)",
                round(len(wr) / minutes, 2),
                "writes/min",
                "~0",
                len(wr) / minutes < 1,
            )
            self.figure(
                "API requests per minute, idle (all verbs)",
                round(len(idle) / minutes, 2),
                "req/min",
                "-",
                note=", ".join(f"{k} {v}" for k, v in clu.breakdown(idle).items()),
            )
        w = self.windows.get("restart")
        if w and w.t1:
            rs = win("restart")
            rw = [r for r in rs if r.write]
            api["restart"] = {
                "requests": len(rs),
                "writes": len(rw),
                "breakdown": clu.breakdown(rs),
                "written": sorted({f"{r.kind} {r.namespace}/{r.name}" for r in rw})[:20],
            }
            self.figure(
                "API writes during restart (nothing changed)",
                len(rw),
                "writes",
                "0",
                not rw,
                note=", ".join(f"{k} {v}" for k, v in clu.breakdown(rw).items()),
            )
        w = self.windows.get("setup")
        if w and w.t1:
            su = [r for r in win("setup") if r.write]
            nv = len(self.versions) + 2 * len(self.pairs)
            api["setup"] = {
                "versions": nv,
                "writes": len(su),
                "per_version": round(len(su) / max(1, nv), 2),
                "breakdown": clu.breakdown(su),
            }
        api["by_agent"] = dict(Counter(r.agent for r in reqs))
        api["attribution"] = {
            n: self.windows[n].extra.get("keys") for n in ("breach", "remediation") if n in self.windows
        }
        api["windows"] = {
            n: {"t0": w.t0, "t1": w.t1, "snapshots": w.snapshots, "cpu_s": w.cpu, "load": w.load}
            for n, w in self.windows.items()
        }
        self.details["api"] = api

    @staticmethod
    def _attributed(r: clu.Req, keys: set[tuple[str, str, str]], prefixes: list[tuple[str, str]]) -> bool:
        if (r.namespace, r.resource, r.name) in keys:
            return True
        if r.resource == "events":
            return any(r.namespace == ns and r.name.startswith(p) for ns, p in prefixes)
        return False

    def _api_figures_from_metrics(self) -> None:
        """Shared cluster: apiserver write deltas minus our own writes (includes other clients)."""

        def net(name: str) -> float | None:
            w = self.windows.get(name)
            if not w or not w.t1:
                return None
            return (w.server_writes1 - w.server_writes0) - (w.own_writes1 - w.own_writes0)

        note = "approx.: apiserver_request_total deltas, every client"
        healthy = [n for n in self.windows if n.startswith("step-") or n in ("burst", "soak")]
        snaps = sum(self.windows[n].snapshots for n in healthy)
        per_healthy = sum(net(n) or 0 for n in healthy) / snaps if snaps else 0.0
        self.figure(
            "API writes per healthy snapshot", round(per_healthy, 2), "writes", "<= 3", per_healthy <= 3, note=note
        )
        for name, label, target in (
            ("breach", "detection (IncidentOnly)", 4),
            ("remediation", "incl. remediation (Automatic)", 10),
        ):
            w = self.windows.get(name)
            v = net(name)
            if w is None or v is None:
                continue
            per = (v - per_healthy * w.snapshots) / max(1, w.extra.get("n", 1))
            self.figure(
                f"API writes per breach, {label}", round(per, 2), "writes", f"<= {target}", per <= target, note=note
            )
        w = self.windows.get("idle")
        v = net("idle")
        if w and v is not None:
            per_min = v / ((w.t1 - w.t0) / 60)
            self.figure("API writes per minute, idle", round(per_min, 2), "writes/min", "~0", per_min < 1, note=note)

    # --- driver ---------------------------------------------------------------------------

    async def run(self) -> int:
        skip = set(filter(None, (self.args.skip or "").split(",")))
        try:
            # The client is opened after the cluster exists (its kubeconfig is read on open).
            self.kube = None
            self.log("bench", f"run {self.rid}, work dir {self.work_dir}")
            await self._open_cluster_and_client()
            if "floor" not in skip:
                await self.phase_floor()
            await self.start_operator()
            await self.phase_setup()
            for name, fn in (
                ("breach", self.phase_breach),
                ("remediation", self.phase_remediation),
                ("memory", self.phase_memory),
                ("restart", self.phase_restart),
                ("throughput", self.phase_profiled_throughput),
                ("soak", self.phase_soak),
                ("idle", self.phase_idle),
                ("big", self.phase_big),
            ):
                if name in skip:
                    continue
                t_phase = time.monotonic()
                try:
                    await fn()
                except Exception as err:  # one broken phase must not lose the others' figures
                    self.log(name, f"FAILED: {err!r}")
                    self.details.setdefault("errors", {})[name] = repr(err)[:500]
                    if self.op is None or not self.op.alive():
                        raise
                self.details.setdefault("phase_seconds", {})[name] = round(time.monotonic() - t_phase, 1)
            if self.op is not None:
                await asyncio.to_thread(self.op.stop)
                await asyncio.sleep(1.0)  # watches closed: their audit records are written
            self.cpu_figures()
            self.api_figures()
            return 0
        finally:
            await self.shutdown()

    async def _open_cluster_and_client(self) -> None:
        # prepare() needs the client for namespaces; the cluster must exist first.
        args = self.args
        self.log(
            "cluster", "starting or reusing the " + ("shared" if args.shared_cluster else "private") + " dev cluster"
        )
        self.bc = await asyncio.to_thread(
            clu.open_cluster,
            Path(args.cluster_dir) if args.cluster_dir else None,
            shared=args.shared_cluster,
            work_dir=self.work_dir,
            progress=lambda m: self.log("cluster", m),
        )
        self._kube_cm = Kube(self.bc.kubeconfig, limit=max(64, args.concurrency * 2))
        self.kube = await self._kube_cm.__aenter__()
        await self._prepare_namespaces()

    async def _prepare_namespaces(self) -> None:
        assert self.bc is not None and self.kube is not None
        self.log("cluster", f"{self.bc.server} (audit log: {self.bc.audit_log or 'none'})")

        def install() -> None:
            from kubernetes import config

            from modelreg.kube.crds import install_crds

            with config.new_client_from_config(config_file=str(self.bc.kubeconfig)) as api:
                install_crds(api, REPO / "crds")

        await asyncio.to_thread(install)
        ns_path = path("namespaces", group="", version="v1")
        stale = [n["metadata"]["name"] for n in await self.kube.list_all(ns_path, labelSelector="modelreg-bench=1")]
        if stale:
            self.log("cluster", f"deleting {len(stale)} namespaces left by earlier runs")
            for ns in stale:
                await self.kube.delete(f"{ns_path}/{ns}")
            deadline = time.monotonic() + 300
            while time.monotonic() < deadline:
                if not await self.kube.list_all(ns_path, labelSelector="modelreg-bench=1"):
                    break
                await asyncio.sleep(1)
        for ns in self.all_namespaces():
            await self.kube.create(
                ns_path,
                {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns, "labels": {"modelreg-bench": "1"}}},
                exist_ok=True,
            )
        await self.start_watches()
        self.log("cluster", f"namespaces bench-{self.rid}-* ready; watches open")

    async def shutdown(self) -> None:
        if self.op is not None:
            await asyncio.to_thread(self.op.stop)
        for t in self.tasks:
            t.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)
        if self.kube is not None and self.bc is not None:
            down = self.bc.private and self.bc.started_here and not self.args.keep_cluster
            if not self.args.keep_namespaces and not down:
                ns_path = path("namespaces", group="", version="v1")
                for ns in [*self.ns_main, self.ns_rem, self.ns_floor, *self.ns_big]:
                    await self.kube.delete(f"{ns_path}/{ns}")
                self.log("cleanup", f"namespaces bench-{self.rid}-* deleted")
            await self._kube_cm.__aexit__(None, None, None)
            if down:
                self.log("cleanup", "stopping the private bench cluster (started by this run)")
                await asyncio.to_thread(self.bc.dc.down)

    def write(self, out: Path | None) -> None:
        bench_cpu = resource.getrusage(resource.RUSAGE_SELF)
        self.details["elapsed_s"] = round(time.monotonic() - self.t_start, 1)
        self.details["bench_cpu_s"] = round(bench_cpu.ru_utime + bench_cpu.ru_stime, 1)
        self.details["machine"] = {"cpus": os.cpu_count(), "load_avg": os.getloadavg()}
        print("\n" + "-" * 110)
        print(f"{'figure':<52} {'value':>10} {'unit':<12} {'target':<22} status")
        for f in self.figures:
            print(f.row())
        print(f"elapsed {self.details['elapsed_s']} s; load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs")
        if out is not None:
            doc = {
                "figures": [f.as_dict() for f in self.figures],
                "details": self.details,
                "mode": self.args.mode,
                "run": self.rid,
                "finished": iso(datetime.now(UTC)),
            }
            out.write_text(json.dumps(doc, indent=2, default=str) + "\n")
            print(f"results written to {out}")


def top_frames(collapsed: Path, n: int = 25) -> JSON:
    """Self and inclusive sample shares per function from py-spy's collapsed stacks."""
    own: Counter[str] = Counter()
    incl: Counter[str] = Counter()
    total = 0
    try:
        lines = collapsed.read_text().splitlines()
    except OSError:
        return {}
    for line in lines:
        stack, _, count = line.rpartition(" ")
        if not count.isdigit():
            continue
        c = int(count)
        total += c
        frames = [
            f.split(" (")[0] + " (" + f.split(" (")[1].split(":")[0] + ")" if " (" in f else f for f in stack.split(";")
        ]
        own[frames[-1]] += c
        for f in set(frames):
            incl[f] += c
    if not total:
        return {}
    return {
        "samples": total,
        "self": [(f, round(100 * c / total, 1)) for f, c in own.most_common(n)],
        "inclusive": [(f, round(100 * c / total, 1)) for f, c in incl.most_common(n * 2)],
    }


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="python -m benchmarks.bench",
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    mode = p.add_mutually_exclusive_group()
    mode.add_argument("--quick", dest="mode", action="store_const", const="quick", help="small sizes, < 3 min")
    mode.add_argument("--full", dest="mode", action="store_const", const="full", help="full sizes (default)")
    p.add_argument("--out", type=Path, default=Path("bench-results.json"), help="JSON results file")
    sizes = p.add_argument_group("sizes (defaults depend on --quick / --full)")
    for key, value in SIZES["full"].items():
        kind = type(value) if not isinstance(value, str) else str
        sizes.add_argument(
            "--" + key.replace("_", "-"), type=kind, default=None, help=f"quick {SIZES['quick'][key]}, full {value}"
        )
    p.add_argument("--workers", type=int, default=8, help="operator --workers")
    p.add_argument("--concurrency", type=int, default=32, help="client requests in flight")
    p.add_argument(
        "--skip",
        default="",
        help="phases to skip, comma-separated: floor,breach,remediation,memory,restart,throughput,soak,idle,big",
    )
    p.add_argument(
        "--shared-cluster",
        action="store_true",
        help="run on the shared dev cluster (no audit log: API costs approximated)",
    )
    p.add_argument(
        "--cluster-dir", help="state dir of the private bench cluster (default ~/.cache/modelreg/clusters/bench)"
    )
    p.add_argument("--keep-cluster", action="store_true", help="leave the private bench cluster running")
    p.add_argument(
        "--operator-module",
        default="modelreg.cli.main",
        help="module run as `python -m MODULE run ...` (to A/B a patched operator)",
    )
    p.add_argument(
        "--profile",
        action="store_true",
        help="py-spy the operator during the throughput and restart phases (py-spy must be installed)",
    )
    p.add_argument("--keep-namespaces", action="store_true", help="do not delete the bench namespaces")
    p.add_argument("--work-dir", help="where the operator log and kubeconfig go (default: a temp dir)")
    args = p.parse_args(argv)
    args.mode = args.mode or "full"
    for key, value in SIZES[args.mode].items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    bench = Bench(args)
    code = 1
    try:
        code = asyncio.run(bench.run())
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
    finally:
        bench.write(args.out)
    return code


if __name__ == "__main__":
    sys.exit(main())
