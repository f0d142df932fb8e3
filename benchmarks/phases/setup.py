"""Setup: V IncidentOnly versions and R Automatic model pairs with a Deployment, all promoted by the operator."""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Awaitable, Callable
from functools import partial
from typing import Any

from benchmarks.context import Context
from benchmarks.kube import path
from benchmarks.objects import artifact_uri, deployment_body, serving, version_body
from benchmarks.report import Figure


class Setup:
    name = "setup"

    async def run(self, ctx: Context) -> list[Figure]:
        kube, sizes, fleet, seen = ctx.kube, ctx.sizes, ctx.fleet, ctx.seen
        rem = ctx.ns.rem
        main = ctx.ns.main
        per_ns = math.ceil(sizes.versions / sizes.namespaces)
        if per_ns > sizes.model_names:
            ctx.log(
                self.name,
                "warning: more versions per namespace than model names; some versions will be Archived, not Production",
            )
        for i in range(sizes.versions):
            k, j = i % sizes.namespaces, i // sizes.namespaces
            offset = k * sizes.model_names // sizes.namespaces
            model = f"m{(offset + j) % sizes.model_names:04d}"
            fleet.versions.append((main[k], f"{model}-v1", model))
        for r in range(sizes.remediations):
            model = f"r{r:04d}"
            fleet.pairs.append((model, f"{model}-v1", f"{model}-v2", f"{model}-api"))

        t0 = time.monotonic()
        await ctx.open_window(self.name)
        deployments = path("deployments", rem, group="apps", version="v1")
        jobs: list[Callable[[], Awaitable[Any]]] = [
            partial(kube.create, path("registeredmodels", ns), version_body(n, m, "1.0.0", "IncidentOnly"))
            for ns, n, m in fleet.versions
        ]
        jobs += [partial(kube.create, deployments, deployment_body(d, m)) for m, _, _, d in fleet.pairs]
        jobs += [
            partial(kube.create, path("registeredmodels", rem), version_body(v1, m, "1.0.0", "Automatic", serving(d)))
            for m, v1, _, d in fleet.pairs
        ]
        await ctx.drive.bulk(self.name, "versions, deployments", jobs)

        async def feed_second_versions() -> None:
            """Create each pair's v2 as soon as its v1 is in Production and served."""
            pending = list(fleet.pairs)
            sem = asyncio.Semaphore(ctx.options.concurrency)

            async def create(m: str, v2: str, d: str) -> None:
                async with sem:
                    await kube.create(
                        path("registeredmodels", rem), version_body(v2, m, "2.0.0", "Automatic", serving(d))
                    )

            while pending:
                ready = [
                    p
                    for p in pending
                    if seen.stage.get((rem, p[1])) == "Production"
                    and seen.env.get((rem, p[3]), ("", 0))[0] == artifact_uri(p[0], "1.0.0")
                ]
                if ready:
                    pending = [p for p in pending if p not in ready]
                    await asyncio.gather(*(create(m, v2, d) for m, _, v2, d in ready))
                else:
                    await asyncio.sleep(0.1)

        feeder = asyncio.create_task(feed_second_versions())
        want = [(ns, n) for ns, n, _ in fleet.versions]
        await ctx.drive.wait_for(self.name, "promotion", lambda: seen.in_production(want), 900)
        t_prod = time.monotonic() - t0
        if fleet.pairs:
            want2 = [(rem, v2) for _, _, v2, _ in fleet.pairs]
            uris = {d: artifact_uri(m, "2.0.0") for m, _, _, d in fleet.pairs}
            await ctx.drive.wait_for(
                self.name,
                "remediation pairs (v1 served, then v2 promoted and served)",
                lambda: (
                    seen.in_production(want2)[0] and seen.served(rem, uris)[0],
                    f"v2 {seen.in_production(want2)[1]}, serving {seen.served(rem, uris)[1]}",
                ),
                900,
            )
        feeder.cancel()
        await ctx.op.wait_settled(progress=lambda m: ctx.log(self.name, m))
        await ctx.close_window(self.name)
        took = time.monotonic() - t0
        ctx.report.details["setup"] = {
            "versions": sizes.versions,
            "remediation_pairs": len(fleet.pairs),
            "seconds_to_production": round(t_prod, 1),
            "seconds_total": round(took, 1),
        }
        ctx.log(
            self.name,
            f"{sizes.versions} versions in Production after {t_prod:.1f}s; "
            f"{len(fleet.pairs)} remediation pairs ready; total {took:.1f}s",
        )
        return []
