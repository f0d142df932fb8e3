"""Throughput: stepped healthy-snapshot rates (p99 evaluation <= 1 s), then a burst drained."""

from __future__ import annotations

import math
import time
from functools import partial
from typing import Any

from benchmarks.context import Context
from benchmarks.kube import JSON
from benchmarks.objects import HEALTHY
from benchmarks.profile import spy
from benchmarks.report import Figure, ms, pct, ratio


class Throughput:
    name = "throughput"

    async def run(self, ctx: Context) -> list[Figure]:
        async with spy(ctx, self.name):
            return [*await self.steps(ctx), *await self.burst(ctx)]

    async def steps(self, ctx: Context) -> list[Figure]:
        sizes, seen, versions = ctx.sizes, ctx.seen, ctx.fleet.versions
        steps: list[JSON] = []
        best = 0.0
        for rate in sizes.step_rates():
            names: list[str] = []
            wname = f"step-{rate:g}"
            await ctx.open_window(wname)

            async def one(i: int, names: list[str] = names) -> None:
                ns, rm, _ = versions[i % len(versions)]
                names.append(await ctx.create_snapshot(ns, rm, HEALTHY))

            ctx.log(self.name, f"{rate:g}/s for {sizes.step_seconds:g}s")
            cpu0 = ctx.cpu()
            t0 = time.monotonic()
            count, sent_for = await ctx.drive.paced(rate, one, duration=sizes.step_seconds)
            await ctx.drive.wait_for(
                self.name, "evaluation", partial(seen.evaluated_of, names), 20 + sizes.step_seconds
            )
            wall = time.monotonic() - t0
            cpu = ctx.cpu_delta(cpu0, wall)
            await ctx.op.wait_settled(timeout=120)
            await ctx.close_window(wname, snapshots=len(names))
            lat = [seen.evaluated[s] - seen.sent[s] if s in seen.evaluated else math.inf for s in names]
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
            ctx.log(
                self.name,
                f"{rate:g}/s: achieved {achieved:.1f}/s, p50 {ms(p50)} ms, p99 {ms(p99)} ms, "
                f"cpu {cpu} -> {'OK' if ok else 'MISS'}",
            )
            if not ok:
                break
            best = rate
        ctx.report.details["throughput_steps"] = steps
        figures = [
            Figure(
                "sustained healthy snapshots/s (p99 eval <= 1 s)",
                best,
                "snapshots/s",
                ">= 100/s",
                best >= 100,
                note=f"{sizes.step_seconds:g} s steps",
            )
        ]
        floor = ctx.floors.writes_per_s
        times = ratio(best, floor)
        if times is not None:
            figures.append(
                Figure(
                    "sustained snapshots/s / floor snapshots/s",
                    times,
                    "x",
                    "-",
                    note=f"floor {floor:.0f}/s; the operator's figure is the last step it passed",
                )
            )
        return figures

    async def burst(self, ctx: Context) -> list[Figure]:
        """B snapshots as fast as possible until all are evaluated."""
        sizes, seen, versions = ctx.sizes, ctx.seen, ctx.fleet.versions
        names: list[str] = []
        await ctx.open_window("burst")

        async def burst_one(i: int) -> Any:
            ns, rm, _ = versions[i % len(versions)]
            names.append(await ctx.create_snapshot(ns, rm, HEALTHY))

        ctx.log(self.name, f"burst of {sizes.burst}")
        cpu0 = ctx.cpu()
        t0 = time.monotonic()
        await ctx.drive.bulk(self.name, "burst snapshots", [partial(burst_one, i) for i in range(sizes.burst)])
        created = time.monotonic() - t0
        await ctx.drive.wait_for(self.name, "burst evaluation", lambda: seen.evaluated_of(names), 600)
        cpu = ctx.cpu_delta(cpu0, time.monotonic() - t0)
        await ctx.op.wait_settled(timeout=120)
        await ctx.close_window("burst", snapshots=len(names))
        ends = [seen.evaluated[s] for s in names if s in seen.evaluated]
        drain = (max(ends) - t0) if len(ends) == len(names) else math.inf
        ctx.report.details["burst"] = {
            "n": len(names),
            "create_s": round(created, 2),
            "drain_s": round(drain, 2),
            "evaluated_per_s": round(len(names) / drain, 1) if drain else None,
            "cpu_cores": cpu,
        }
        figures = [
            Figure(
                f"burst of {len(names)} drained in",
                round(drain, 2),
                "s",
                "-",
                note=f"{len(names) / drain:.0f}/s; created in {created:.1f}s" if math.isfinite(drain) else "",
            )
        ]
        # Both as fast as the API server allows: the burst's drain rate against the floor's.
        times = ratio(len(names) / drain if drain > 0 else 0.0, ctx.floors.writes_per_s)
        if times is not None:
            figures.append(Figure("burst drain snapshots/s / floor snapshots/s", times, "x", "-"))
        return figures
