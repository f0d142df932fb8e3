"""Remediation: breach -> Incident Remediated and the Deployment's env on the restored artifact."""

from __future__ import annotations

import asyncio
import math
import time

from benchmarks.context import Context
from benchmarks.objects import BREACHING, artifact_uri
from benchmarks.phases.breach import healthy_background
from benchmarks.report import Figure, ms, pct


class Remediation:
    name = "remediation"

    async def run(self, ctx: Context) -> list[Figure]:
        pairs, seen, sizes, rem = ctx.fleet.pairs, ctx.seen, ctx.sizes, ctx.ns.rem
        if not pairs:
            return []
        stop = asyncio.Event()
        bg_count = [0]
        w = await ctx.open_window(self.name)
        bg = asyncio.create_task(healthy_background(ctx, stop, ctx.fleet.versions, bg_count))
        names: dict[str, tuple[str, str, str, str]] = {}

        async def one(i: int) -> None:
            pair = pairs[i]
            s = await ctx.create_snapshot(rem, pair[2], BREACHING)
            names[s] = pair

        def done_at(s: str) -> float | None:
            m, _, _, d = names[s]
            inc = seen.incident_of.get(s)
            if inc is None or inc[0] not in seen.remediated:
                return None
            uri, since = seen.env.get((rem, d), ("", 0.0))
            if uri != artifact_uri(m, "1.0.0") or since < seen.sent[s]:
                return None
            return max(seen.remediated[inc[0]], since)

        n = len(pairs)
        ctx.log(self.name, f"{n} breaches (Automatic, Deployment opted in) at {sizes.remediation_rate}/s")
        cpu0 = ctx.cpu()
        t0 = time.monotonic()
        await ctx.drive.paced(sizes.remediation_rate, one, count=n)
        await ctx.drive.wait_for(
            self.name,
            "remediations",
            lambda: (all(done_at(s) is not None for s in names), f"{sum(done_at(s) is not None for s in names)}/{n}"),
            60,
        )
        stop.set()
        await bg
        await ctx.op.wait_settled()
        await asyncio.sleep(sizes.settle_seconds)
        cpu = ctx.cpu_delta(cpu0, time.monotonic() - t0)
        await ctx.close_window(self.name, snapshots=bg_count[0])
        w.extra["keys"] = [(s, *pair, seen.incident_of.get(s, ("", 0))[0]) for s, pair in names.items()]
        w.extra["n"] = n
        lat: list[float] = []
        lat_inc: list[float] = []
        lat_rem: list[float] = []
        for s in names:
            t = done_at(s)
            lat.append(t - seen.sent[s] if t is not None else math.inf)
            if s in seen.incident_of:
                lat_inc.append(seen.incident_of[s][1] - seen.sent[s])
                inc = seen.incident_of[s][0]
                if inc in seen.remediated:
                    lat_rem.append(seen.remediated[inc] - seen.sent[s])
        p50, p99 = pct(lat, 50), pct(lat, 99)
        ctx.report.details["remediation"] = {
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
        return [
            Figure("breach->remediated p50 (Automatic + Deployment)", ms(p50), "ms", "-"),
            Figure("breach->remediated p99 (Automatic + Deployment)", ms(p99), "ms", "<= 500 ms", p99 <= 0.5),
        ]
