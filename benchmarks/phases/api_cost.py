"""API cost: the operator's writes per healthy snapshot, per breach (detection, remediation), idle and on restart.

On the private cluster they come exactly from the audit log (the operator's own identity);
on the shared one they are approximated from ``apiserver_request_total`` deltas.
"""

from __future__ import annotations

from collections import Counter

from benchmarks import cluster as clu
from benchmarks.context import Context
from benchmarks.kube import JSON
from benchmarks.report import Figure

Key = tuple[str, str, str]  # (namespace, resource, name)


def attributed(r: clu.Req, keys: set[Key], prefixes: list[tuple[str, str]]) -> bool:
    """Whether ``r`` wrote one of ``keys``, or an Event named for one of them (``prefix.``)."""
    if (r.namespace, r.resource, r.name) in keys:
        return True
    if r.resource == "events":
        return any(r.namespace == ns and r.name.startswith(p) for ns, p in prefixes)
    return False


def per_kind(reqs: list[clu.Req], n: int) -> str:
    return ", ".join(f"{k} {v / n:.2f}" for k, v in clu.breakdown(reqs).items())


class ApiCost:
    name = "api"

    async def run(self, ctx: Context) -> list[Figure]:
        if not ctx.cluster.private:
            return from_metrics(ctx)
        return from_audit(ctx)


def from_audit(ctx: Context) -> list[Figure]:
    reqs = clu.read_audit(ctx.cluster, since=ctx.t_start_epoch)
    ctx.report.details["audit_requests"] = len(reqs)
    api: JSON = {}
    figures: list[Figure] = []

    def win(name: str) -> list[clu.Req]:
        w = ctx.windows.get(name)
        return clu.between(reqs, w.t0, w.t1) if w and w.t1 else []

    # healthy snapshots: throughput steps, burst, soak (nothing else happens then)
    healthy_w = [n for n in ctx.windows if n.startswith("step-") or n in ("burst", "soak")]
    writes = [r for n in healthy_w for r in win(n) if r.write]
    reads = [r for n in healthy_w for r in win(n) if not r.write]
    snaps = sum(ctx.windows[n].snapshots for n in healthy_w)
    if snaps:
        per = len(writes) / snaps
        api["healthy"] = {
            "snapshots": snaps,
            "writes": len(writes),
            "reads": len(reads),
            "breakdown": clu.breakdown(writes),
            "reads_breakdown": clu.breakdown(reads),
        }
        figures.append(
            Figure(
                "API writes per healthy snapshot",
                round(per, 2),
                "writes",
                "<= 3",
                per <= 3,
                note=per_kind(writes, snaps),
            )
        )

    # detection: writes attributable to the breaching versions' objects
    detection = 0.0
    w = ctx.windows.get("breach")
    if w and w.t1:
        keys: set[Key] = set()
        prefixes: list[tuple[str, str]] = []
        for ns, rm, snap, inc in w.extra["keys"]:
            keys |= {
                (ns, "performancesnapshots", snap),
                (ns, "registeredmodels", rm),
                (ns, "incidents", inc),
                (ns, "configmaps", f"{rm}-model-card"),
            }
            prefixes += [(ns, f"{rm}."), (ns, f"{inc}.")]
        mine = [r for r in win("breach") if r.write and attributed(r, keys, prefixes)]
        n = w.extra["n"]
        detection = len(mine) / n
        api["detection"] = {
            "breaches": n,
            "writes": len(mine),
            "breakdown": clu.breakdown(mine),
            "window_writes_total": sum(r.write for r in win("breach")),
        }
        figures.append(
            Figure(
                "API writes per breach, detection (IncidentOnly)",
                round(detection, 2),
                "writes",
                "<= 4",
                detection <= 4,
                note=per_kind(mine, n),
            )
        )
    w = ctx.windows.get("remediation")
    if w and w.t1:
        keys, prefixes = set(), []
        ns = ctx.ns.rem
        for snap, _m, v1, v2, d, inc in w.extra["keys"]:
            keys |= {
                (ns, "performancesnapshots", snap),
                (ns, "registeredmodels", v1),
                (ns, "registeredmodels", v2),
                (ns, "incidents", inc),
                (ns, "deployments", d),
                (ns, "configmaps", f"{v1}-model-card"),
                (ns, "configmaps", f"{v2}-model-card"),
            }
            prefixes += [(ns, f"{v1}."), (ns, f"{v2}."), (ns, f"{inc}.")]
        mine = [r for r in win("remediation") if r.write and attributed(r, keys, prefixes)]
        n = w.extra["n"]
        total = len(mine) / n
        rem = total - detection
        api["remediation"] = {
            "breaches": n,
            "writes": len(mine),
            "per_breach_total": round(total, 2),
            "breakdown": clu.breakdown(mine),
        }
        figures.append(
            Figure(
                "API writes per breach, remediation (beyond detection)",
                round(rem, 2),
                "writes",
                "<= 6",
                rem <= 6,
                note=f"total {total:.2f}: {per_kind(mine, n)}",
            )
        )
    w = ctx.windows.get("idle")
    if w and w.t1:
        idle = win("idle")
        minutes = (w.t1 - w.t0) / 60
        wr = [r for r in idle if r.write]
        api["idle"] = {
            "seconds": round(w.t1 - w.t0, 1),
            "requests": len(idle),
            "writes": len(wr),
            "breakdown": clu.breakdown(idle),
        }
        figures += [
            Figure(
                f"API writes per minute, idle ({len(ctx.fleet.versions)} versions)",
                round(len(wr) / minutes, 2),
                "writes/min",
                "~0",
                len(wr) / minutes < 1,
            ),
            Figure(
                "API requests per minute, idle (all verbs)",
                round(len(idle) / minutes, 2),
                "req/min",
                "-",
                note=", ".join(f"{k} {v}" for k, v in clu.breakdown(idle).items()),
            ),
        ]
    w = ctx.windows.get("restart")
    if w and w.t1:
        rs = win("restart")
        rw = [r for r in rs if r.write]
        api["restart"] = {
            "requests": len(rs),
            "writes": len(rw),
            "breakdown": clu.breakdown(rs),
            "written": sorted({f"{r.kind} {r.namespace}/{r.name}" for r in rw})[:20],
        }
        figures.append(
            Figure(
                "API writes during restart (nothing changed)",
                len(rw),
                "writes",
                "0",
                not rw,
                note=", ".join(f"{k} {v}" for k, v in clu.breakdown(rw).items()),
            )
        )
    w = ctx.windows.get("setup")
    if w and w.t1:
        su = [r for r in win("setup") if r.write]
        nv = ctx.fleet.total
        api["setup"] = {
            "versions": nv,
            "writes": len(su),
            "per_version": round(len(su) / max(1, nv), 2),
            "breakdown": clu.breakdown(su),
        }
    api["by_agent"] = dict(Counter(r.agent for r in reqs))
    api["attribution"] = {n: ctx.windows[n].extra.get("keys") for n in ("breach", "remediation") if n in ctx.windows}
    api["windows"] = {
        n: {"t0": w.t0, "t1": w.t1, "snapshots": w.snapshots, "cpu_s": w.cpu, "load": w.load}
        for n, w in ctx.windows.items()
    }
    ctx.report.details["api"] = api
    return figures


def from_metrics(ctx: Context) -> list[Figure]:
    """Shared cluster: apiserver write deltas minus our own writes (includes other clients)."""

    def net(name: str) -> float | None:
        w = ctx.windows.get(name)
        if not w or not w.t1:
            return None
        return (w.server_writes1 - w.server_writes0) - (w.own_writes1 - w.own_writes0)

    note = "approx.: apiserver_request_total deltas, every client"
    healthy = [n for n in ctx.windows if n.startswith("step-") or n in ("burst", "soak")]
    snaps = sum(ctx.windows[n].snapshots for n in healthy)
    per_healthy = sum(net(n) or 0 for n in healthy) / snaps if snaps else 0.0
    figures = [
        Figure("API writes per healthy snapshot", round(per_healthy, 2), "writes", "<= 3", per_healthy <= 3, note=note)
    ]
    for name, label, target in (
        ("breach", "detection (IncidentOnly)", 4),
        ("remediation", "incl. remediation (Automatic)", 10),
    ):
        w = ctx.windows.get(name)
        v = net(name)
        if w is None or v is None:
            continue
        per = (v - per_healthy * w.snapshots) / max(1, w.extra.get("n", 1))
        figures.append(
            Figure(f"API writes per breach, {label}", round(per, 2), "writes", f"<= {target}", per <= target, note=note)
        )
    w = ctx.windows.get("idle")
    v = net("idle")
    if w and v is not None:
        per_min = v / ((w.t1 - w.t0) / 60)
        figures.append(
            Figure("API writes per minute, idle", round(per_min, 2), "writes/min", "~0", per_min < 1, note=note)
        )
    return figures
