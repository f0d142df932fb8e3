"""CPU per healthy snapshot: what the operator and the API server need, whatever the load."""

from __future__ import annotations

import os

from benchmarks.context import Context, Window
from benchmarks.report import Figure


def healthy_windows(ctx: Context) -> dict[str, Window]:
    """The windows with only healthy snapshots: throughput steps, the burst, the soak."""
    return {n: w for n, w in ctx.windows.items() if (n.startswith("step-") or n in ("burst", "soak")) and w.t1}


class CpuCost:
    name = "cpu"

    async def run(self, ctx: Context) -> list[Figure]:
        healthy = list(healthy_windows(ctx).values())
        snaps = sum(w.snapshots for w in healthy)
        if not snaps:
            return []
        op = sum(w.cpu.get("operator", 0.0) for w in healthy)
        wait = sum(w.cpu.get("operator_cpu_wait", 0.0) for w in healthy)
        api = sum(w.cpu.get("kube-apiserver", 0.0) for w in healthy)
        etcd = sum(w.cpu.get("etcd", 0.0) for w in healthy)
        per_op, per_api = 1000 * op / snaps, 1000 * api / snaps
        ctx.report.details["cpu_per_healthy_snapshot_ms"] = {
            "operator": round(per_op, 2),
            "kube-apiserver": round(per_api, 2),
            "etcd": round(1000 * etcd / snaps, 2),
            "operator_waiting_for_cpu_ms": round(1000 * wait / snaps, 2),
            "snapshots": snaps,
            "load_avg": [round(w.load, 2) for w in healthy],
        }
        return [
            Figure(
                "operator CPU per healthy snapshot",
                round(per_op, 2),
                "ms",
                "-",
                note=f"=> {1000 / per_op:.0f} snapshots/s per operator core" if per_op else "",
            ),
            Figure(
                "kube-apiserver CPU per healthy snapshot",
                round(per_api, 2),
                "ms",
                "-",
                note=f"operator waited {1000 * wait / snaps:.1f} ms/snapshot for a CPU; "
                f"load avg {max(w.load for w in healthy):.1f} on {os.cpu_count()} CPUs",
            ),
        ]
