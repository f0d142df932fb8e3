"""Big: the operator's RSS once the fleet is topped up to ``big_versions`` versions."""

from __future__ import annotations

import asyncio
import time
from functools import partial

from benchmarks.context import Context
from benchmarks.kube import path
from benchmarks.objects import namespace_body, version_body
from benchmarks.report import Figure


class Big:
    name = "big"

    async def run(self, ctx: Context) -> list[Figure]:
        kube, sizes, seen = ctx.kube, ctx.sizes, ctx.seen
        total_now = ctx.fleet.total
        extra = sizes.big_versions - total_now
        if sizes.big_versions <= 0 or extra <= 0:
            return []
        big = ctx.ns.big
        for ns in big:
            await kube.create(path("namespaces", group="", version="v1"), namespace_body(ns), exist_ok=True)
        keys = [(big[i % len(big)], f"b{i:05d}-v1", f"b{i:05d}") for i in range(extra)]
        t0 = time.monotonic()
        await ctx.drive.bulk(
            self.name,
            f"{extra} more versions",
            [
                partial(kube.create, path("registeredmodels", ns), version_body(n, m, "1.0.0", "IncidentOnly"))
                for ns, n, m in keys
            ],
        )
        want = [(ns, n) for ns, n, _ in keys]
        await ctx.drive.wait_for(self.name, "promotion", lambda: seen.in_production(want), 1800)
        took = time.monotonic() - t0
        await ctx.op.wait_settled(timeout=600)
        await asyncio.sleep(sizes.settle_seconds)
        rss, hwm = ctx.op.mem_mib()
        total = total_now + extra
        ctx.report.details["big"] = {
            "versions": total,
            "promotion_s": round(took, 1),
            "rss_mib": round(rss, 1),
            "hwm_mib": round(hwm, 1),
            "live_snapshots": len(seen.live_snaps),
        }
        return [
            Figure(
                f"operator RSS @ {total} versions",
                round(rss, 1),
                "MiB",
                "<= 400 MiB",
                rss <= 400,
                note=f"peak {hwm:.0f} MiB; {extra} promoted in {took:.0f}s",
            )
        ]
