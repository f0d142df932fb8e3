"""Breach: breaching snapshot -> Incident visible on a watch, with healthy snapshots in the background."""

from __future__ import annotations

import asyncio
import math
import time

from benchmarks.context import Context
from benchmarks.objects import BREACHING, HEALTHY
from benchmarks.report import Figure, ms, pct, ratio


async def healthy_background(
    ctx: Context, stop: asyncio.Event, versions: list[tuple[str, str, str]], counter: list[int]
) -> None:
    """Healthy snapshots at ``background_rate`` over ``versions`` until ``stop``; ``counter[0]`` counts them."""
    rate = ctx.sizes.background_rate
    if rate <= 0 or not versions:
        return

    async def one(i: int) -> None:
        ns, rm, _ = versions[i % len(versions)]
        await ctx.create_snapshot(ns, rm, HEALTHY)
        counter[0] += 1

    await ctx.drive.paced(rate, one, stop=stop)


class Breach:
    name = "breach"

    async def run(self, ctx: Context) -> list[Figure]:
        sizes, versions, seen = ctx.sizes, ctx.fleet.versions, ctx.seen
        n = min(sizes.breaches, len(versions))
        step = len(versions) / n
        chosen = [versions[int(i * step)] for i in range(n)]
        chosen_set = {(ns, rm) for ns, rm, _ in chosen}
        others = [v for v in versions if (v[0], v[1]) not in chosen_set]
        stop = asyncio.Event()
        bg_count = [0]
        w = await ctx.open_window(self.name)
        bg = asyncio.create_task(healthy_background(ctx, stop, others, bg_count))
        names: list[str] = []
        keys: list[tuple[str, str, str]] = []

        async def one(i: int) -> None:
            ns, rm, _ = chosen[i]
            s = await ctx.create_snapshot(ns, rm, BREACHING)
            names.append(s)
            keys.append((ns, rm, s))

        ctx.log(
            self.name,
            f"{n} breaches at {sizes.breach_rate}/s over {len(versions)} versions, "
            f"background {sizes.background_rate}/s healthy",
        )
        cpu0 = ctx.cpu()
        t0 = time.monotonic()
        await ctx.drive.paced(sizes.breach_rate, one, count=n)
        await ctx.drive.wait_for(
            self.name,
            "incidents",
            lambda: (all(s in seen.incident_of for s in names), f"{sum(s in seen.incident_of for s in names)}/{n}"),
            30,
        )
        stop.set()
        await bg
        await ctx.op.wait_settled()
        await asyncio.sleep(sizes.settle_seconds)
        cpu = ctx.cpu_delta(cpu0, time.monotonic() - t0)
        await ctx.close_window(self.name, snapshots=bg_count[0])
        w.extra["keys"] = [(ns, rm, s, seen.incident_of.get(s, ("", 0))[0]) for ns, rm, s in keys]
        w.extra["n"] = n
        lat = [seen.incident_of[s][1] - seen.sent[s] for s in names if s in seen.incident_of]
        missing = n - len(lat)
        lat += [math.inf] * missing
        p50, p99 = pct(lat, 50), pct(lat, 99)
        ctx.report.details["breach"] = {
            "n": n,
            "missing": missing,
            "background_snapshots": bg_count[0],
            "p50_ms": ms(p50),
            "p90_ms": ms(pct(lat, 90)),
            "p99_ms": ms(p99),
            "max_ms": ms(max(lat)),
            "cpu_cores": cpu,
        }
        figures = [
            Figure(f"breach->incident p50 ({len(versions)} versions)", ms(p50), "ms", "-"),
            Figure(f"breach->incident p99 ({len(versions)} versions)", ms(p99), "ms", "<= 250 ms", p99 <= 0.25),
        ]
        times = ratio(p99, ctx.floors.incident_p99)
        if times is not None:
            figures.append(Figure("breach->incident p99 / floor p99", times, "x", "<= 3x", times <= 3))
        return figures
