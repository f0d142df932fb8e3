"""Restart: the operator stopped and started again; time to ready, and nothing spurious done."""

from __future__ import annotations

import asyncio
import time

from benchmarks import cluster as clu
from benchmarks.context import Context
from benchmarks.kube import path
from benchmarks.objects import HEALTHY
from benchmarks.phases.idle import Idle
from benchmarks.profile import spy
from benchmarks.report import Figure

Census = tuple[int, dict[tuple[str, str], tuple[int, str]]]


async def census(ctx: Context) -> Census:
    """Incidents, and each version's (stage history length, stage), in the run's namespaces."""
    mine = f"bench-{ctx.ns.rid}-"
    incs = [i for i in await ctx.kube.list_all(path("incidents")) if i["metadata"]["namespace"].startswith(mine)]
    rms = {}
    for o in await ctx.kube.list_all(path("registeredmodels")):
        meta = o["metadata"]
        if meta["namespace"].startswith(mine):
            st = o.get("status") or {}
            rms[(meta["namespace"], meta["name"])] = (len(st.get("stageHistory") or []), st.get("stage", ""))
    return len(incs), rms


async def watch_started(ctx: Context, resource: str, offset: int, since: float, timeout: float) -> float | None:
    """Monotonic time the operator's watch on ``resource`` started (audit log), None without one."""
    if not ctx.cluster.private:
        return None
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        reqs = await asyncio.to_thread(clu.read_audit, ctx.cluster, offset)
        for r in reqs:
            if r.verb == "watch" and r.resource == resource and r.t >= since:
                return r.t - (time.time() - time.monotonic())
        await asyncio.sleep(0.2)
    return None


class Restart:
    name = "restart"

    async def run(self, ctx: Context) -> list[Figure]:
        op, seen, fleet = ctx.op, ctx.seen, ctx.fleet
        inc0, rms0 = await census(ctx)
        keys = {(ns, m) for ns, _, m in fleet.versions} | {(ctx.ns.rem, m) for m, *_ in fleet.pairs}
        ctx.log(
            self.name,
            f"stopping the operator ({len(rms0)} versions, {len(seen.live_snaps)} snapshots, {inc0} incidents present)",
        )
        await asyncio.to_thread(op.stop)
        await ctx.open_window(self.name)
        offset = clu.audit_size(ctx.cluster) if ctx.cluster.private else 0
        since = time.time()
        t0 = op.start()
        async with spy(ctx, self.name):
            t_live = await op.wait_live(120)
            t_models = await op.wait_settled(
                min_reconciles=len(keys), quiet=0.5, timeout=600, progress=lambda m: ctx.log(self.name, m)
            )
            # Kopf opens the snapshot watch only after it has handled every listed snapshot.
            t_snaps = await watch_started(ctx, "performancesnapshots", offset, since, 600)
        ready = max(t_live, t_models, t_snaps or 0.0) - t0
        ctx.log(
            self.name,
            f"live after {t_live - t0:.2f}s, all {len(keys)} models reconciled after "
            f"{t_models - t0:.2f}s, snapshots listed and handled (watch opened) after "
            + (f"{t_snaps - t0:.2f}s" if t_snaps else "?"),
        )
        await asyncio.sleep(ctx.sizes.settle_seconds)
        await ctx.close_window(self.name)
        rss, hwm = op.mem_mib()
        # Ready means handling new events too (Kopf's index wait once held them back for
        # tens of seconds after everything listed had been reconciled): a new snapshot.
        ns, rm, _ = fleet.versions[0]
        probe = await ctx.create_snapshot(ns, rm, HEALTHY)
        deadline = time.monotonic() + 600
        while probe not in seen.evaluated and time.monotonic() < deadline:
            await asyncio.sleep(0.01)
        t_react = seen.evaluated.get(probe)
        react_ms = (t_react - seen.sent[probe]) * 1000 if t_react else None
        ctx.log(
            self.name,
            "a snapshot created after that evaluated in "
            + (f"{react_ms:.0f} ms ({t_react - t0:.2f}s after start)" if t_react else "- (not within 600 s)"),
        )
        # A new event still waiting more than a second after "ready" was not ready yet.
        ready += max(0.0, (react_ms if react_ms is not None else 600_000.0) / 1000 - 1.0)
        await Idle().run(ctx)  # the restarted operator has nothing to do: measure idle now
        inc1, rms1 = await census(ctx)
        stage_changes = sum(max(0, rms1.get(k, (0, ""))[0] - h) for k, (h, _) in rms0.items())
        stage_diff = sum(rms1.get(k, (0, ""))[1] != s for k, (_, s) in rms0.items())
        spurious = max(0, inc1 - inc0) + stage_changes + stage_diff
        ctx.report.details["restart"] = {
            "live_s": round(t_live - t0, 2),
            "ready_s": round(ready, 2),
            "models_reconciled_s": round(t_models - t0, 2),
            "snapshot_watch_s": round(t_snaps - t0, 2) if t_snaps else None,
            "models": len(keys),
            "incidents_before": inc0,
            "incidents_after": inc1,
            "stage_history_growth": stage_changes,
            "stage_changed": stage_diff,
            "new_snapshot_evaluated_ms": round(react_ms, 1) if react_ms is not None else None,
            "rss_after_restart_mib": round(rss, 1),
            "hwm_after_restart_mib": round(hwm, 1),
        }
        return [
            Figure(
                f"restart to ready ({len(rms0)} versions, {len(seen.live_snaps)} snapshots)",
                round(ready, 2),
                "s",
                "<= 30 s",
                ready <= 30,
                note=f"a new snapshot then evaluated in {react_ms:.0f} ms" if react_ms is not None else "",
            ),
            Figure("spurious incidents + stage changes on restart", spurious, "count", "0", spurious == 0),
        ]
