"""Benchmark of MetricSource polling: N monitored versions polled from a real Prometheus.

    python -m benchmarks.metricsource --quick     # 100 versions (CI size)
    python -m benchmarks.metricsource --full      # 1,000 versions

A real Prometheus (Debian's package) scrapes a synthetic exporter of every
version's series each second; the operator polls every version every
``--interval`` seconds (window = interval, evaluationDelay :data:`DELAY`).
Phases, one run:

1. poll     windows written per second, operator CPU per written window (its
            evaluation included), API writes per window, Prometheus query
            latency p50/p99 as the operator sees it (``modelreg_metric_query_seconds``).
2. spike    every request of a version failing from an instant on (spikes spread
            over one interval, each ended once its Incident is seen) → the
            Incident, split at the end of the first breaching window; target
            interval + evaluationDelay + scrape interval + 1 s at p99.
3. push     pushed breaching snapshots → Incident p99, in rounds with the poller
            (the operator also owns the monitored namespace) and without it (the
            same operator restarted on the push namespace only), interleaved,
            median of 3 each; target: within 10 %.
4. limit    the API server's write limit: a bare client creating snapshots with
            the payload of a pulled one, as fast as it can, in a namespace the
            operator does not watch, last (it saturates the
            API server); windows/s and API writes/s as a share of it.
"""

from __future__ import annotations

import argparse
import asyncio
import http.server
import json
import math
import re
import sys
import tempfile
import threading
import time
import urllib.request
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from kubernetes import config
from tests.integration.prom import PrometheusServer, free_port

from benchmarks.cluster import BenchCluster, apiserver_writes, component_pids, open_cluster
from benchmarks.kube import API_VERSION, Kube, path
from benchmarks.opproc import OperatorProc, proc_cpu_seconds, proc_sched

JSON = dict[str, Any]
DELAY = 2  # evaluationDelay (s)
SCRAPE = 1  # Prometheus's scrape interval in tests/integration/prom.py (s)
ROUNDS = 3  # push rounds per mode
LIMIT_SECONDS = 10.0
LIMIT_CONCURRENCY = (16, 64)
BREACHING = {"errorRate": 0.2, "oodRate": 0.02}
QUERIES = {
    "sampleCount": 'sum(increase(model_requests_total{model="{{modelName}}",version="{{version}}"}[{{window}}]))',
    "errorCount": 'sum(increase(model_requests_total{model="{{modelName}}",version="{{version}}",outcome="error"}'
    "[{{window}}])) or vector(0)",
}


class Exporter:
    """``model_requests_total`` of every version, exact at any instant, cheap to scrape at 1,000 versions.

    The tests' exporter (tests/integration/prom.py) drives prometheus_client every 100 ms and adds
    feature histograms: at 1,000 versions its scrape outlasts Prometheus's 1 s scrape timeout on
    2 busy cores (``up`` 0 for most scrapes, NoData windows). Here each counter is its value at a
    change of traffic plus rate × time since, rendered only when Prometheus scrapes.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        # (model, version) → (success at since, errors at since, since, requests/s, error share)
        self._series: dict[tuple[str, str], tuple[float, float, float, float, float]] = {}
        self.port = 0

    def traffic(self, model: str, version: str, *, rate: float, errors: float) -> None:
        """From now on ``rate`` requests per second, a share ``errors`` of them failing."""
        now = time.time()
        with self._lock:
            ok, bad = self._values((model, version), now)
            self._series[(model, version)] = (ok, bad, now, rate, errors)

    def _values(self, key: tuple[str, str], now: float) -> tuple[float, float]:
        if key not in self._series:
            return 0.0, 0.0
        ok, bad, since, rate, errors = self._series[key]
        return ok + rate * (1 - errors) * (now - since), bad + rate * errors * (now - since)

    def render(self) -> bytes:
        now = time.time()
        lines = ["# TYPE model_requests_total counter"]
        with self._lock:
            for key in self._series:
                ok, bad = self._values(key, now)
                labels = f'model="{key[0]}",version="{key[1]}"'
                lines.append(f'model_requests_total{{{labels},outcome="success"}} {ok:.3f}')
                lines.append(f'model_requests_total{{{labels},outcome="error"}} {bad:.3f}')
        return ("\n".join(lines) + "\n").encode()

    def start(self) -> Exporter:
        exporter = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                body = exporter.render()
                self.send_response(200)
                self.send_header("Content-Type", "text/plain; version=0.0.4")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.port = free_port()
        self._server = http.server.ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        self._server.shutdown()

    @property
    def target(self) -> str:
        return f"127.0.0.1:{self.port}"


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def pct(values: list[float], p: float) -> float:
    """Nearest-rank percentile (nan when empty)."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[max(0, math.ceil(p / 100 * len(ordered)) - 1)]


def scrape(port: int) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=30) as resp:
        return str(resp.read().decode())


def series(text: str, name: str) -> dict[str, float]:
    out: dict[str, float] = {}
    for line in text.splitlines():
        m = re.match(rf"^{re.escape(name)}(\{{[^}}]*\}})? (\S+)$", line)
        if m:
            out[m.group(1) or ""] = float(m.group(2))
    return out


def histogram_quantile(q: float, buckets: dict[float, float]) -> float:
    """Prometheus's histogram_quantile over cumulative buckets (linear within a bucket)."""
    bounds = sorted(buckets)
    total = buckets[bounds[-1]] if bounds else 0.0
    if total <= 0:
        return float("nan")
    rank = q * total
    prev_bound, prev_count = 0.0, 0.0
    for b in bounds:
        if buckets[b] >= rank:
            if b == float("inf"):
                return prev_bound
            return prev_bound + (b - prev_bound) * (rank - prev_count) / max(buckets[b] - prev_count, 1e-12)
        prev_bound, prev_count = b, buckets[b]
    return bounds[-1]


def query_buckets(text: str) -> dict[float, float]:
    out: dict[float, float] = {}
    for labels, value in series(text, "modelreg_metric_query_seconds_bucket").items():
        le = re.search(r'le="([^"]+)"', labels)
        if le:
            out[float(le.group(1))] = value
    return out


def written(text: str) -> float:
    return series(text, "modelreg_pulled_windows_total").get('{outcome="Written"}', 0.0)


def rm_body(name: str, model: str, monitoring: JSON | None) -> JSON:
    spec: JSON = {
        "modelName": model,
        "version": "1.0.0",
        "artifact": {"uri": f"s3://bench/{model}", "digest": "sha256:" + "ab" * 32},
        "targetStage": "Production",
        "promotionPolicy": {"minSandboxDuration": "0s", "minHealthySnapshots": 0, "requireApproval": False},
        "rollbackPolicy": {"mode": "IncidentOnly", "minSamples": 1},
    }
    if monitoring is not None:
        spec["monitoring"] = monitoring
    return {"apiVersion": API_VERSION, "kind": "RegisteredModel", "metadata": {"name": name}, "spec": spec}


def iso(dt: datetime) -> str:
    return dt.strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass
class Bench:
    args: argparse.Namespace
    bc: BenchCluster
    kube: Kube
    work: Path
    n: int
    ns: str  # the monitored versions
    pns: str  # pushed snapshots
    lns: str  # the write-limit probe (not watched by the operator)
    exporter: Exporter = field(default_factory=Exporter)
    prom: PrometheusServer | None = None
    op: OperatorProc | None = None
    incidents: dict[tuple[str, str], tuple[str, float]] = field(default_factory=dict)  # rm → (trigger, mono)
    result: JSON = field(default_factory=dict)
    tasks: list[asyncio.Task[None]] = field(default_factory=list)

    def rm(self, i: int) -> str:
        return f"m{i}-1-0-0"

    def on_incident(self, typ: str, obj: JSON, t: float) -> None:
        if typ in ("ADDED", "MODIFIED"):
            spec = obj.get("spec") or {}
            key = (obj["metadata"]["namespace"], (spec.get("modelRef") or {}).get("name", ""))
            self.incidents.setdefault(key, ((spec.get("trigger") or {}).get("snapshot", ""), t))

    async def operator(self, namespaces: list[str]) -> None:
        if self.op is not None:
            self.op.stop()
        extra: tuple[str, ...] = ()
        for ns in namespaces:
            extra += ("--namespace", ns)
        self.op = OperatorProc(self.bc.kubeconfig, self.work / "operator.log", self.args.workers, extra=extra)
        self.op.start()
        await self.op.wait_live()

    async def bulk(self, coros: list[Any], limit: int = 16) -> None:
        sem = asyncio.Semaphore(limit)

        async def one(c: Any) -> None:
            async with sem:
                await c

        await asyncio.gather(*(one(c) for c in coros))

    async def until(self, what: str, pred: Any, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while not await pred():
            if time.monotonic() > deadline:
                raise TimeoutError(f"{what}: not within {timeout:.0f}s")
            await asyncio.sleep(0.5)

    async def windows_now(self) -> float:
        assert self.op is not None
        return written(await asyncio.to_thread(scrape, self.op.metrics_port))

    async def one_burst(self, timeout: float, windows: float | None = None) -> None:
        """Until the operator has written ``windows`` (default: one of every monitored version) from now."""
        start = await self.windows_now()
        want = self.n if windows is None else windows

        async def burst() -> bool:
            return await self.windows_now() - start >= want

        await self.until("a full burst of windows", burst, timeout)

    # --- set-up -------------------------------------------------------------------------

    async def setup(self) -> None:
        for ns in (self.ns, self.pns, self.lns):
            await self.kube.create(path("namespaces", group="", version="v1"), {"metadata": {"name": ns}})
        self.exporter.start()
        self.prom = PrometheusServer(self.work / "prom", [self.exporter.target])
        self.prom.workdir.mkdir()
        self.prom.start()
        for ns in (self.ns, self.pns):
            ready = asyncio.Event()
            self.tasks.append(
                asyncio.create_task(self.kube.watch(path("incidents", ns), self.on_incident, ready=ready))
            )
            await asyncio.wait_for(ready.wait(), 30)
        await self.operator([self.ns, self.pns])
        await self.kube.create(
            path("metricsources", self.ns),
            {
                "apiVersion": API_VERSION,
                "kind": "MetricSource",
                "metadata": {"name": "prom"},
                "spec": {"prometheus": {"url": self.prom.url}, "queries": QUERIES},
            },
        )
        for i in range(self.n):
            self.exporter.traffic(f"m{i}", "1.0.0", rate=10, errors=0.0)
        mon = {"sourceRef": {"name": "prom"}, "interval": f"{self.args.interval}s", "evaluationDelay": f"{DELAY}s"}
        t0 = time.monotonic()
        await self.bulk(
            [
                self.kube.create(path("registeredmodels", self.ns), rm_body(self.rm(i), f"m{i}", mon))
                for i in range(self.n)
            ]
        )
        pushes = [self.push_rm(r, k) for r in range(2 * ROUNDS) for k in range(self.args.pushes)]
        await self.bulk(
            [self.kube.create(path("registeredmodels", self.pns), rm_body(p, p[:-6], None)) for p in pushes]
        )
        log(f"{self.n} monitored and {len(pushes)} pushed versions created in {time.monotonic() - t0:.1f}s")

        async def in_production() -> bool:
            items = (await self.kube.get(path("registeredmodels", self.pns))).get("items") or []
            return bool(sum((o.get("status") or {}).get("stage") == "Production" for o in items) == len(pushes))

        await self.until("pushed versions in Production", in_production, 120 + self.n / 10)
        await self.one_burst(timeout=3 * self.args.interval + DELAY + self.n / 5)
        log("warm: one window of every version written")

    def push_rm(self, r: int, k: int) -> str:
        return f"p{r}k{k}-1-0-0"

    # --- phases -------------------------------------------------------------------------

    async def phase_poll(self) -> None:
        assert self.op is not None
        # From the end of a burst over whole intervals, so every measured interval is one burst.
        await self.one_burst(3 * self.args.interval + DELAY + self.n / 5)
        text0 = await asyncio.to_thread(scrape, self.op.metrics_port)
        api0 = apiserver_writes(await self.kube.request("GET", "/metrics", text=True))
        pids = component_pids(self.bc)
        others0 = {c: proc_cpu_seconds(pid) for c, pid in pids.items()}
        sched0 = proc_sched(self.op.pid)
        cpu0, t0 = proc_cpu_seconds(self.op.pid), time.monotonic()
        await asyncio.sleep(max(1, round(self.args.duration / self.args.interval)) * self.args.interval)
        text1 = await asyncio.to_thread(scrape, self.op.metrics_port)
        api1 = apiserver_writes(await self.kube.request("GET", "/metrics", text=True))
        cpu1, t1 = proc_cpu_seconds(self.op.pid), time.monotonic()
        sched1 = proc_sched(self.op.pid)
        others = {c: round((proc_cpu_seconds(pid) - others0[c]) / (t1 - t0), 3) for c, pid in pids.items()}
        w0 = series(text0, "modelreg_pulled_windows_total")
        w1 = series(text1, "modelreg_pulled_windows_total")
        count = written(text1) - written(text0)
        failed = sum(v - w0.get(k, 0) for k, v in w1.items() if "Written" not in k and "Exists" not in k)
        b0, b1 = query_buckets(text0), query_buckets(text1)
        delta = {b: b1[b] - b0.get(b, 0) for b in b1}
        self.result.update(
            windows_written=count,
            windows_failed=failed,
            windows_per_s=round(count / (t1 - t0), 2),
            expected_windows_per_s=self.n / self.args.interval,
            cpu_ms_per_window=round(1000 * (cpu1 - cpu0) / max(count, 1), 2),
            operator_cpu_share=round((cpu1 - cpu0) / (t1 - t0), 3),
            # Runnable but waiting for a core (schedstat): > 0 when the machine is short of CPU.
            operator_cpu_wait_share=round((sched1[1] - sched0[1]) / (t1 - t0), 3),
            component_cpu_share=others,
            api_writes_per_window=round((api1 - api0) / max(count, 1), 2),
            api_writes_per_s=round((api1 - api0) / (t1 - t0), 1),
            query_p50_ms=round(1000 * histogram_quantile(0.5, delta), 1),
            query_p99_ms=round(1000 * histogram_quantile(0.99, delta), 1),
        )
        log(f"poll: {json.dumps(self.result)}")

    async def phase_limit(self) -> None:
        """The API server's write limit, same payload as a pulled window, by a bare client."""
        listed = await self.kube.get(path("performancesnapshots", self.ns), limit="1")
        spec = listed["items"][0]["spec"]
        labels = listed["items"][0]["metadata"].get("labels") or {}
        best = 0.0
        seq = 0
        for conc in LIMIT_CONCURRENCY:
            done = 0
            stop = time.monotonic() + LIMIT_SECONDS

            async def writer(stop: float = stop) -> None:
                nonlocal done, seq
                while time.monotonic() < stop:
                    seq += 1
                    body = {
                        "apiVersion": API_VERSION,
                        "kind": "PerformanceSnapshot",
                        "metadata": {"name": f"limit-{seq}", "labels": labels},
                        "spec": spec,
                    }
                    await self.kube.create(path("performancesnapshots", self.lns), body)
                    done += 1

            t0 = time.monotonic()
            await asyncio.gather(*(writer() for _ in range(conc)))
            rate = done / (time.monotonic() - t0)
            log(f"limit: {done} snapshot creates at concurrency {conc}: {rate:.0f}/s")
            best = max(best, rate)
        self.result.update(
            api_write_limit_per_s=round(best, 1),
            windows_share_of_limit=round(self.result["windows_per_s"] / best, 3),
            api_writes_share_of_limit=round(self.result["api_writes_per_s"] / best, 3),
            # One interval's windows all share t, so they reach the API server as one burst.
            burst_drain_at_limit_s=round(self.result["api_writes_per_window"] * self.n / best, 2),
        )

    async def phase_spike(self) -> None:
        interval = self.args.interval
        spikes = min(self.args.spikes, self.n)
        chosen = [i * self.n // spikes for i in range(spikes)]  # spread over the fleet (and each burst's order)
        start: dict[str, tuple[float, float]] = {}  # rm → (wall, mono) of the spike
        ended: set[str] = set()
        first = time.monotonic()
        deadline = first + 4 * interval + DELAY + 60 + self.n / 10
        while len(ended) < spikes and time.monotonic() < deadline:
            for j, i in enumerate(chosen):
                rm = self.rm(i)
                if rm not in start and time.monotonic() >= first + j * interval / spikes:
                    self.exporter.traffic(f"m{i}", "1.0.0", rate=10, errors=1.0)
                    start[rm] = (time.time(), time.monotonic())
                if rm in start and rm not in ended and (self.ns, rm) in self.incidents:
                    self.exporter.traffic(f"m{i}", "1.0.0", rate=10, errors=0.0)  # the spike is over
                    ended.add(rm)
            await asyncio.sleep(0.05)
        total, to_end, after_end = [], [], []
        for rm, (wall, mono) in start.items():
            if (self.ns, rm) not in self.incidents:
                continue
            trigger, seen = self.incidents[(self.ns, rm)]
            total.append(seen - mono)
            t = int(trigger.rsplit("-", 1)[1])  # the window's end (the snapshot is <rm>-<t>)
            to_end.append(t - wall)
            after_end.append(seen - mono - (t - wall))
        target = interval + DELAY + SCRAPE + 1
        self.result.update(
            spikes=spikes,
            spike_incidents=len(total),
            spike_to_incident_p50_s=round(pct(total, 50), 2),
            spike_to_incident_p99_s=round(pct(total, 99), 2),
            spike_target_s=target,
            spike_target_met=pct(total, 99) <= target and len(total) == spikes,
            spike_to_window_end_p50_s=round(pct(to_end, 50), 2),
            spike_to_window_end_p99_s=round(pct(to_end, 99), 2),
            window_end_to_incident_p50_s=round(pct(after_end, 50), 2),
            window_end_to_incident_p99_s=round(pct(after_end, 99), 2),
        )
        log(f"spike: {json.dumps({k: v for k, v in self.result.items() if 'spike' in k or 'window_end' in k})}")

    async def push_round(self, r: int) -> float:
        """Breaching snapshots of the round's versions, spread over one interval; their p99 → Incident (s)."""
        sent: dict[str, float] = {}
        spread = self.args.interval / self.args.pushes
        t0 = time.monotonic()
        now = datetime.now(UTC)
        for k in range(self.args.pushes):
            await asyncio.sleep(max(0.0, t0 + k * spread - time.monotonic()))
            rm = self.push_rm(r, k)
            body = {
                "apiVersion": API_VERSION,
                "kind": "PerformanceSnapshot",
                "metadata": {"name": f"{rm}-breach"},
                "spec": {
                    "modelRef": {"name": rm},
                    "window": {"start": iso(now - timedelta(minutes=1)), "end": iso(now)},
                    "sampleCount": 1000,
                    "metrics": BREACHING,
                },
            }
            sent[rm] = time.monotonic()
            await self.kube.create(path("performancesnapshots", self.pns), body)

        async def all_seen() -> bool:
            return all((self.pns, rm) in self.incidents for rm in sent)

        await self.until(f"push round {r}: incidents", all_seen, 60 + self.n / 10)
        return pct([self.incidents[(self.pns, rm)][1] - t for rm, t in sent.items()], 99)

    async def phase_push(self) -> None:
        p99: dict[str, list[float]] = {"with": [], "without": []}
        for r in range(2 * ROUNDS):
            mode = "with" if r % 2 == 0 else "without"
            if mode == "with":
                await self.operator([self.ns, self.pns])
                # Polling again: one interval's worth of windows at the rate measured in phase 1.
                per_interval = max(1.0, min(self.n, self.result["windows_per_s"] * self.args.interval))
                await self.one_burst(3 * self.args.interval + DELAY + self.n / 2, per_interval)
            else:
                await self.operator([self.pns])
            p99[mode].append(await self.push_round(r))
            log(f"push round {r} ({mode} the poller): breach→incident p99 {1000 * p99[mode][-1]:.0f} ms")
        med = {m: sorted(v)[len(v) // 2] for m, v in p99.items()}
        ratio = med["with"] / med["without"]
        self.result.update(
            push_p99_with_poller_ms=[round(1000 * v) for v in p99["with"]],
            push_p99_without_poller_ms=[round(1000 * v) for v in p99["without"]],
            push_p99_median_with_ms=round(1000 * med["with"]),
            push_p99_median_without_ms=round(1000 * med["without"]),
            push_p99_ratio=round(ratio, 3),
            push_target_met=ratio <= 1.10,
        )

    async def teardown(self) -> None:
        for task in self.tasks:
            task.cancel()
        if self.op is not None:
            self.op.stop()
        if self.prom is not None:
            self.prom.stop()
        self.exporter.stop()
        for ns in (self.ns, self.pns, self.lns):
            await self.kube.delete(path("namespaces", name=ns, group="", version="v1"))


async def main(args: argparse.Namespace) -> JSON:
    n = 1000 if args.full else args.versions
    work = Path(tempfile.mkdtemp(prefix="msrc-bench-"))
    bc = open_cluster(None, shared=True, work_dir=work, progress=log)
    from modelreg.kube.crds import install_crds

    install_crds(
        config.new_client_from_config(config_file=str(bc.kubeconfig)),  # type: ignore[no-untyped-call]
        Path(__file__).resolve().parents[1] / "crds",
    )
    rid = int(time.time())
    async with Kube(bc.kubeconfig) as kube:
        bench = Bench(args, bc, kube, work, n, f"msrc-{rid}", f"msrc-{rid}-push", f"msrc-{rid}-limit")
        bench.result.update(
            versions=n,
            workers=args.workers,
            interval_s=args.interval,
            evaluation_delay_s=DELAY,
            scrape_interval_s=SCRAPE,
        )
        try:
            await bench.setup()
            await bench.phase_poll()
            await bench.phase_spike()
            await bench.phase_push()
            await bench.phase_limit()  # last: it saturates the API server on purpose
            log(f"operator log: {work / 'operator.log'}")
            return bench.result
        finally:
            await bench.teardown()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="100 versions (the default)")
    parser.add_argument("--full", action="store_true", help="1,000 versions")
    parser.add_argument("--versions", type=int, default=100)
    parser.add_argument("--interval", type=int, default=10)
    parser.add_argument("--duration", type=float, default=60.0, help="seconds of the poll phase (whole intervals)")
    parser.add_argument("--spikes", type=int, default=20, help="versions spiked, spread over one interval")
    parser.add_argument("--pushes", type=int, default=20, help="pushed breaches per round")
    parser.add_argument("--workers", type=int, default=8, help="the operator's --workers")
    parser.add_argument("--out", default=None, help="write the figures as JSON")
    args = parser.parse_args()
    figures = asyncio.run(main(args))
    print(json.dumps(figures, indent=2))
    if args.out:
        Path(args.out).write_text(json.dumps(figures, indent=2) + "\n", encoding="utf-8")
