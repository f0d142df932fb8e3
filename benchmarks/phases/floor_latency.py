"""Latency floor: the least the API server allows between a snapshot's creation and a visible Incident.

A bare client (no operator running) watches the snapshots and creates the Incident the moment
one arrives, with nothing in between; the breach phase reports the operator's p99 as a ratio
to this one.
"""

from __future__ import annotations

import asyncio
import math
from functools import partial
from typing import Any

from benchmarks.context import Context
from benchmarks.kube import JSON, ApiError, path
from benchmarks.objects import BREACHING, incident_body, version_body
from benchmarks.report import Figure, ms, pct


async def delete_all(ctx: Context, ns: str) -> None:
    """Leave nothing in ``ns`` for the operator to reconcile."""
    for plural in ("incidents", "performancesnapshots", "registeredmodels"):
        await ctx.kube.request("DELETE", path(plural, ns))


class LatencyFloor:
    name = "floor"

    async def run(self, ctx: Context) -> list[Figure]:
        kube, ns, n = ctx.kube, ctx.ns.floor, ctx.sizes.floor_breaches
        rms = [f"floor-{i:04d}" for i in range(n)]
        await ctx.drive.bulk(
            self.name,
            "floor versions",
            [
                partial(kube.create, path("registeredmodels", ns), version_body(r, r, "1.0.0", "IncidentOnly"))
                for r in rms
            ],
        )
        seen: dict[str, float] = {}
        work: list[asyncio.Task[Any]] = []
        errors: list[str] = []

        async def open_incident(obj: JSON) -> None:
            try:
                await kube.create(
                    path("incidents", ns), incident_body(ns, obj["spec"]["modelRef"]["name"], obj["metadata"]["name"])
                )
            except ApiError as err:
                errors.append(str(err))

        def on_snap(typ: str, obj: JSON, t: float) -> None:
            if typ == "ADDED":
                work.append(asyncio.create_task(open_incident(obj)))

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
            names.append(await ctx.create_snapshot(ns, rms[i], BREACHING))

        ctx.log(self.name, f"{n} breaches at {ctx.sizes.floor_rate}/s; a bare client opens each Incident on sight")
        await ctx.drive.paced(ctx.sizes.floor_rate, breach, count=n)
        await ctx.drive.wait_for(
            self.name,
            "incidents",
            lambda: (all(s in seen for s in names), f"{sum(s in seen for s in names)}/{n}"),
            60,
        )
        for w in watches:
            w.cancel()
        await asyncio.gather(*work, *watches, return_exceptions=True)
        lat = [seen[s] - ctx.seen.sent[s] for s in names if s in seen]
        lat += [math.inf] * (n - len(lat))
        p99 = pct(lat, 99)
        ctx.floors.incident_p99 = p99
        ctx.report.details["floor"] = {
            "n": n,
            "errors": errors[:5],
            "p50_ms": ms(pct(lat, 50)),
            "p99_ms": ms(p99),
            "max_ms": ms(max(lat)),
        }
        await delete_all(ctx, ns)
        return [
            Figure("floor: breach->incident p50", ms(pct(lat, 50)), "ms", "-"),
            Figure("floor: breach->incident p99", ms(p99), "ms", "-"),
        ]
