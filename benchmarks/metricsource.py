"""Benchmark of MetricSource polling: N monitored versions polled from a real Prometheus.

    python -m benchmarks.metricsource --quick     # 100 versions (CI size)
    python -m benchmarks.metricsource --full      # 1,000 versions

A real Prometheus (Debian's package) scrapes a synthetic exporter of every
version's series each second; the operator polls every version every
``--interval`` seconds (window = interval). Reported: windows written per
second, operator CPU per written window, Prometheus query latency p50/p99 as
the operator sees it (its ``modelreg_metric_query_seconds`` histogram), and
the time from an error spike in the exporter (every request failing) to the
Incident, against the target interval + evaluationDelay + scrape interval + 1 s.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

from kubernetes import client, config
from tests.integration.prom import Exporter, PrometheusServer

from benchmarks.cluster import open_cluster
from benchmarks.opproc import OperatorProc, proc_cpu_seconds

GROUP, VERSION = "modelreg.io", "v1alpha1"
DELAY = 2
SCRAPE = 1
QUERIES = {
    "sampleCount": 'sum(increase(model_requests_total{model="{{modelName}}",version="{{version}}"}[{{window}}]))',
    "errorCount": 'sum(increase(model_requests_total{model="{{modelName}}",version="{{version}}",outcome="error"}'
    "[{{window}}])) or vector(0)",
}


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def scrape(port: int) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as resp:
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
    total = buckets[bounds[-1]]
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


def pct(values: list[float], p: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(round(p / 100 * (len(values) - 1))))] if values else float("nan")


async def main(args: argparse.Namespace) -> dict[str, Any]:
    n = 1000 if args.full else args.versions
    work = Path(tempfile.mkdtemp(prefix="msrc-bench-"))
    bc = open_cluster(None, shared=True, work_dir=work, progress=log)
    api = config.new_client_from_config(config_file=str(bc.kubeconfig))
    core, custom = client.CoreV1Api(api), client.CustomObjectsApi(api)
    from modelreg.kube.crds import install_crds

    install_crds(api, Path(__file__).resolve().parents[1] / "crds")
    ns = f"msrc-bench-{int(time.time())}"
    core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=ns)))
    exporter = Exporter().start()
    prom = PrometheusServer(work / "prom", [exporter.target])
    prom.workdir.mkdir()
    prom.start()
    op = OperatorProc(kubeconfig=bc.kubeconfig, log_path=work / "operator.log", workers=8, extra=("--namespace", ns))
    op.start()
    result: dict[str, Any] = {"versions": n, "interval_s": args.interval}
    try:
        await asyncio.sleep(3)
        custom.create_namespaced_custom_object(
            GROUP,
            VERSION,
            ns,
            "metricsources",
            {
                "apiVersion": f"{GROUP}/{VERSION}",
                "kind": "MetricSource",
                "metadata": {"name": "prom"},
                "spec": {"prometheus": {"url": prom.url}, "queries": QUERIES},
            },
        )
        for i in range(n):
            exporter.traffic(f"m{i}", "1.0.0", rate=10, errors=0.0)
        interval = f"{args.interval}s"
        for i in range(n):
            custom.create_namespaced_custom_object(
                GROUP,
                VERSION,
                ns,
                "registeredmodels",
                {
                    "apiVersion": f"{GROUP}/{VERSION}",
                    "kind": "RegisteredModel",
                    "metadata": {"name": f"m{i}-1-0-0"},
                    "spec": {
                        "modelName": f"m{i}",
                        "version": "1.0.0",
                        "artifact": {"uri": f"s3://m/{i}", "digest": "sha256:" + "ab" * 32},
                        "targetStage": "Production",
                        "promotionPolicy": {
                            "minSandboxDuration": "0s",
                            "minHealthySnapshots": 0,
                            "requireApproval": False,
                        },
                        "rollbackPolicy": {"mode": "IncidentOnly", "minSamples": 1},
                        "monitoring": {
                            "sourceRef": {"name": "prom"},
                            "interval": interval,
                            "evaluationDelay": f"{DELAY}s",
                        },
                    },
                },
            )
        log(f"{n} monitored versions created; warming up for {2 * args.interval + DELAY} s")
        await asyncio.sleep(2 * args.interval + DELAY + 2)

        text0 = scrape(op.metrics_port)
        cpu0, t0 = proc_cpu_seconds(op.pid), time.monotonic()
        await asyncio.sleep(args.duration)
        text1 = scrape(op.metrics_port)
        cpu1, t1 = proc_cpu_seconds(op.pid), time.monotonic()
        w0 = series(text0, "modelreg_pulled_windows_total")
        w1 = series(text1, "modelreg_pulled_windows_total")
        written = w1.get('{outcome="Written"}', 0) - w0.get('{outcome="Written"}', 0)
        failed = sum(v - w0.get(k, 0) for k, v in w1.items() if "Written" not in k and "Exists" not in k)
        b0, b1 = query_buckets(text0), query_buckets(text1)
        delta = {b: b1[b] - b0.get(b, 0) for b in b1}
        result.update(
            windows_written=written,
            windows_failed=failed,
            windows_per_s=written / (t1 - t0),
            expected_windows_per_s=n / args.interval,
            cpu_ms_per_window=1000 * (cpu1 - cpu0) / max(written, 1),
            query_p50_ms=1000 * histogram_quantile(0.5, delta),
            query_p99_ms=1000 * histogram_quantile(0.99, delta),
        )
        log(json.dumps(result))

        # Spikes: every request of a version fails from its start on. The starts are spread
        # over one interval, so the figures cover every phase against the aligned windows.
        spikes = min(20, n)
        started: dict[str, float] = {}
        seen: dict[str, float] = {}
        first = time.time()
        deadline = time.monotonic() + 4 * args.interval + DELAY + 30
        while len(seen) < spikes and time.monotonic() < deadline:
            for i in range(spikes):
                rm = f"m{i}-1-0-0"
                if rm not in started and time.time() >= first + i * args.interval / spikes:
                    exporter.traffic(f"m{i}", "1.0.0", rate=10, errors=1.0)
                    started[rm] = time.time()
            for inc in custom.list_namespaced_custom_object(GROUP, VERSION, ns, "incidents")["items"]:
                rm = inc["spec"]["modelRef"]["name"]
                if rm in started:
                    seen.setdefault(rm, time.time() - started[rm])
            await asyncio.sleep(0.1)
        latencies = sorted(seen.values())
        target = args.interval + DELAY + SCRAPE + 1
        result.update(
            spike_incidents=len(seen),
            spike_to_incident_p50_s=pct(latencies, 50),
            spike_to_incident_p99_s=pct(latencies, 99),
            spike_target_s=target,
        )
        log(json.dumps(result))
        return result
    finally:
        op.stop()
        prom.stop()
        exporter.stop()
        core.delete_namespace(ns)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="100 versions (the default)")
    parser.add_argument("--full", action="store_true", help="1,000 versions")
    parser.add_argument("--versions", type=int, default=100)
    parser.add_argument("--interval", type=int, default=10)
    parser.add_argument("--duration", type=float, default=60.0, help="seconds measured")
    parser.add_argument("--out", default=None, help="write the figures as JSON")
    args = parser.parse_args()
    figures = asyncio.run(main(args))
    print(json.dumps(figures, indent=2))
    if args.out:
        Path(args.out).write_text(json.dumps(figures, indent=2) + "\n", encoding="utf-8")
