"""Throughput floor: the highest rate of the per-snapshot writes the API server takes, with no framework.

Per healthy snapshot the contract requires four writes: the snapshot's create, its status
(the verdict), the version's status (its last snapshot) and, once the history is full, the
retention delete of its oldest snapshot. A bare client (no operator running) does exactly
those, one version per worker (as the operator's per-version queue does), as fast as the API
server answers, for ``floor_seconds``. The throughput phase reports the operator's sustained
rate as a ratio to this one.
"""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime
from functools import partial

from benchmarks.context import Context
from benchmarks.kube import path
from benchmarks.objects import HEALTHY, version_body
from benchmarks.phases.floor_latency import delete_all
from benchmarks.report import Figure, iso, ms, pct


class ThroughputFloor:
    name = "floor_throughput"

    async def run(self, ctx: Context) -> list[Figure]:
        kube, ns = ctx.kube, ctx.ns.floor
        workers = ctx.options.concurrency
        rms = [f"tput-{i:04d}" for i in range(workers)]
        rvs: dict[str, str] = {}

        async def make_rm(rm: str) -> None:
            out = await kube.create(path("registeredmodels", ns), version_body(rm, rm, "1.0.0", "IncidentOnly"))
            rvs[rm] = out["metadata"]["resourceVersion"]

        await ctx.drive.bulk(self.name, "floor versions", [partial(make_rm, r) for r in rms])

        async def one_snapshot(rm: str, oldest: str | None) -> str:
            name = await ctx.create_snapshot(ns, rm, HEALTHY)
            now = iso(datetime.now(UTC))
            verdict = {"verdict": "Healthy", "breaches": [], "stage": "Production", "evaluatedAt": now}
            await kube.merge_patch(path("performancesnapshots", ns, name) + "/status", {"status": verdict})
            last = {"name": name, "at": now, "verdict": "Healthy", "metrics": HEALTHY, "breaches": []}
            out = await kube.merge_patch(
                path("registeredmodels", ns, rm) + "/status",
                {
                    "metadata": {"resourceVersion": rvs[rm]},
                    "status": {"health": "Healthy", "consecutiveBreaches": 0, "lastSnapshot": last},
                },
            )
            rvs[rm] = out["metadata"]["resourceVersion"]
            if oldest is not None:
                await kube.delete(path("performancesnapshots", ns, oldest))
            return name

        # One snapshot per version first, so that every timed snapshot has its retention delete
        # (a history of one: the limit changes which snapshot goes, not what a delete costs).
        oldest = dict(zip(rms, await asyncio.gather(*(one_snapshot(rm, None) for rm in rms)), strict=True))
        seconds = ctx.sizes.floor_seconds
        ctx.log(self.name, f"{workers} workers, create + 2 status patches + retention delete, for {seconds:g}s")
        lat: list[float] = []
        cpu0 = ctx.cpu()
        t0 = time.monotonic()
        deadline = t0 + seconds

        async def worker(rm: str) -> None:
            while time.monotonic() < deadline:
                start = time.monotonic()
                oldest[rm] = await one_snapshot(rm, oldest[rm])
                lat.append(time.monotonic() - start)

        await asyncio.gather(*(worker(rm) for rm in rms))
        wall = time.monotonic() - t0
        rate = len(lat) / wall
        ctx.floors.writes_per_s = rate
        ctx.report.details["floor_throughput"] = {
            "workers": workers,
            "seconds": round(wall, 1),
            "snapshots": len(lat),
            "writes": 4 * len(lat),
            "snapshots_per_s": round(rate, 1),
            "p50_ms": ms(pct(lat, 50)),
            "p99_ms": ms(pct(lat, 99)),
            "cpu_cores": ctx.cpu_delta(cpu0, wall),
        }
        await delete_all(ctx, ns)
        return [
            Figure(
                "floor: snapshots/s (create, 2 status patches, delete)",
                round(rate, 1),
                "snapshots/s",
                "-",
                note=f"{workers} in flight, p99 {ms(pct(lat, 99))} ms each",
            )
        ]
