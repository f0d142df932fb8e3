"""Memory: the operator's RSS once the V versions hold ``snapshots_per_version`` x V live snapshots."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Awaitable, Callable
from typing import Any

from benchmarks.context import Context
from benchmarks.objects import HEALTHY
from benchmarks.report import Figure


class Memory:
    name = "memory"

    async def run(self, ctx: Context) -> list[Figure]:
        sizes, seen, versions = ctx.sizes, ctx.seen, ctx.fleet.versions
        main = set(ctx.ns.main)
        target = sizes.snapshots_per_version * len(versions)
        have: Counter[tuple[str, str]] = Counter()
        for ns, name in seen.live_snaps:
            if ns in main:
                have[(ns, name.rsplit("-", 1)[0])] += 1
        jobs: list[Callable[[], Awaitable[Any]]] = []
        names: list[str] = []
        for ns, rm, _ in versions:
            for _ in range(sizes.snapshots_per_version - have[(ns, rm)]):

                async def job(ns: str = ns, rm: str = rm) -> None:
                    names.append(await ctx.create_snapshot(ns, rm, HEALTHY))

                jobs.append(job)
        await ctx.drive.bulk(self.name, f"healthy snapshots up to {target}", jobs)
        await ctx.drive.wait_for(self.name, "evaluation", lambda: seen.evaluated_of(names), 1800)
        await ctx.op.wait_settled(timeout=600)
        await asyncio.sleep(sizes.settle_seconds)
        live = sum(1 for ns, _ in seen.live_snaps if ns in main)
        rss, hwm = ctx.op.mem_mib()
        ctx.report.details["memory"] = {
            "versions": ctx.fleet.total,
            "live_snapshots": len(seen.live_snaps),
            "main_snapshots": live,
            "rss_mib": round(rss, 1),
            "hwm_mib": round(hwm, 1),
        }
        label = f"{len(versions)} versions + {live} snapshots"
        return [
            Figure(f"operator RSS @ {label}", round(rss, 1), "MiB", "-"),
            Figure(
                f"operator peak RSS (VmHWM) @ {label}",
                round(hwm, 1),
                "MiB",
                "<= 150 MiB",
                hwm <= 150,
                note="" if len(versions) >= 1000 else "target is for 1,000 + 10,000",
            ),
        ]
