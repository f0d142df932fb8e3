"""Soak: the operator's RSS over ``soak_minutes`` at ``soak_rate`` healthy snapshots/s, from a steady state."""

from __future__ import annotations

import asyncio
import contextlib
import math
import statistics
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from functools import partial
from typing import Any

from benchmarks.context import Context
from benchmarks.objects import HEALTHY, HISTORY
from benchmarks.report import Figure, ms, pct


class Soak:
    name = "soak"

    async def run(self, ctx: Context) -> list[Figure]:
        sizes, seen, versions, op = ctx.sizes, ctx.seen, ctx.fleet.versions, ctx.op
        seconds = sizes.soak_minutes * 60
        if seconds <= 0:
            return []
        samples: list[tuple[float, float]] = []
        names: list[str] = []
        stop = asyncio.Event()

        async def sampler() -> None:
            t0 = time.monotonic()
            while not stop.is_set():
                samples.append((time.monotonic() - t0, op.mem_mib()[0]))
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), 5)

        async def progress() -> None:
            t0 = time.monotonic()
            while True:
                await asyncio.sleep(15)
                rss = samples[-1][1] if samples else 0
                ctx.log(
                    self.name,
                    f"{time.monotonic() - t0:.0f}/{seconds:.0f}s, RSS {rss:.1f} MiB, "
                    f"{len(seen.sent)} snapshots sent so far",
                )

        async def one(i: int) -> None:
            ns, rm, _ = versions[i % len(versions)]
            names.append(await ctx.create_snapshot(ns, rm, HEALTHY))

        # Steady state first: every version's evaluated history at its limit (the operator's
        # default, 20). Otherwise the soak measures the store and the statuses filling up to
        # their bounds (about 9 MiB at 1,000 versions from 10 snapshots each), not a leak.
        per_version = Counter(name.rsplit("-", 1)[0] for ns, name in seen.live_snaps)
        fill: list[Callable[[], Awaitable[Any]]] = []
        for ns, rm, _ in versions:
            for _ in range(max(0, HISTORY - per_version.get(rm, 0))):
                fill.append(partial(ctx.create_snapshot, ns, rm, HEALTHY))
        if fill:
            before = len(seen.evaluated)
            await ctx.drive.bulk(self.name, f"filling every version's history to {HISTORY}", fill)
            await ctx.drive.wait_for(
                self.name,
                "evaluation of the fill",
                lambda: (len(seen.evaluated) - before >= len(fill), f"{len(seen.evaluated) - before}/{len(fill)}"),
                600,
            )
            await op.wait_settled(timeout=300)
        ctx.log(self.name, f"{sizes.soak_rate:g}/s for {sizes.soak_minutes:g} min")
        await ctx.open_window(self.name)
        sampling = asyncio.create_task(sampler())
        reporting = asyncio.create_task(progress())
        settled = True
        try:
            await ctx.drive.paced(sizes.soak_rate, one, duration=seconds)
            await ctx.drive.wait_for(self.name, "evaluation", lambda: seen.evaluated_of(names), 60)
            try:
                await op.wait_settled(timeout=300)
            except TimeoutError:
                settled = False
                ctx.log(self.name, "the operator did not catch up within 300 s")
        finally:
            stop.set()
            reporting.cancel()
            await sampling
        samples.append((samples[-1][0] + 0.1, op.mem_mib()[0]))
        await ctx.close_window(self.name, snapshots=len(names))
        lat = [seen.evaluated[s] - seen.sent[s] if s in seen.evaluated else math.inf for s in names]
        start, end = samples[0][1], samples[-1][1]
        growth = end - start
        slope = None
        if len(samples) >= 3:
            xs, ys = [s[0] for s in samples], [s[1] for s in samples]
            slope = statistics.linear_regression(xs, ys).slope * 60
        ctx.report.details["soak"] = {
            "minutes": sizes.soak_minutes,
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
        return [
            Figure(
                f"RSS growth over {sizes.soak_minutes:g} min at {sizes.soak_rate:g}/s",
                round(growth, 2),
                "MiB",
                "<= 5 MiB / 15 min",
                growth <= 5 * max(1.0, sizes.soak_minutes / 15),
                note=f"{start:.0f} -> {end:.0f} MiB",
            )
        ]
