"""modelreg benchmark (issue 6): latency, throughput, API cost, memory and restart of the operator.

    python -m benchmarks.bench --quick                 # a few minutes, small sizes
    python -m benchmarks.bench --full --out bench-results.json
    python -m benchmarks.bench --full --soak-minutes 15 --big-versions 10000

The operator runs as a separate process (``python -m modelreg.cli.main run``) against a
private dev cluster (its own state directory, started on first use, with an audit log that
counts the operator's requests exactly); ``--shared-cluster`` uses the shared one instead.
Everything is measured in one run, one phase per module of ``benchmarks/phases/``, in this order:

1. floor             a bare client opens the Incident the moment it sees a breaching snapshot
2. floor_throughput  a bare client's highest rate of the per-snapshot writes (create, two
                     status patches, retention delete)
3. setup        V versions (IncidentOnly) and R model pairs with a Deployment (Automatic),
                promoted straight to Production by the operator
4. breach       breach -> Incident visible on a watch, with healthy background snapshots
5. remediation  breach -> Incident Remediated and Deployment env on the restored artifact
6. memory       operator RSS at V versions + 10 x V snapshots
7. restart      operator restart to ready, spurious incidents / stage changes (and idle)
8. throughput   stepped healthy-snapshot rates; burst drain
9. soak         RSS growth at 20 snapshots/s
10. idle        API requests per minute with nothing to do
11. big         RSS at 10,000 versions (full mode or --big-versions)
The floors run before the operator starts, on the same API server; the breach and throughput
figures are also given as ratios to them. CPU and API costs (writes per healthy snapshot, per
breach, idle) come from the CPU counters and the audit log at the end.

Prints one line per figure (name, value, unit, target, OK/MISS) and writes them as JSON.
"""

from __future__ import annotations

import argparse
import asyncio
import resource
import secrets
import sys
import tempfile
import time
from pathlib import Path

from benchmarks import cluster as clu
from benchmarks.context import Context, Namespaces, Options
from benchmarks.drive import Drive
from benchmarks.kube import Kube, path
from benchmarks.objects import namespace_body
from benchmarks.observe import Observed
from benchmarks.phases import Phase
from benchmarks.phases.api_cost import ApiCost
from benchmarks.phases.big import Big
from benchmarks.phases.breach import Breach
from benchmarks.phases.cpu_cost import CpuCost
from benchmarks.phases.floor_latency import LatencyFloor
from benchmarks.phases.floor_throughput import ThroughputFloor
from benchmarks.phases.idle import Idle
from benchmarks.phases.memory import Memory
from benchmarks.phases.remediation import Remediation
from benchmarks.phases.restart import Restart
from benchmarks.phases.setup import Setup
from benchmarks.phases.soak import Soak
from benchmarks.phases.throughput import Throughput
from benchmarks.report import Report
from benchmarks.sizes import MODES, field_types, sizes_for

FLOORS: list[Phase] = [LatencyFloor(), ThroughputFloor()]
WITH_OPERATOR: list[Phase] = [Breach(), Remediation(), Memory(), Restart(), Throughput(), Soak(), Idle(), Big()]
COSTS: list[Phase] = [CpuCost(), ApiCost()]
SKIPPABLE = [p.name for p in FLOORS + WITH_OPERATOR]


async def install_crds(kube: Kube, timeout: float = 60.0) -> None:
    """Server-side apply the CRDs of ``crds/`` and wait until each is Established."""
    from modelreg.kube.crds import crd_documents

    crds = path("customresourcedefinitions", group="apiextensions.k8s.io", version="v1")
    names = []
    for doc in crd_documents(Path(__file__).resolve().parents[1] / "crds"):
        name = doc["metadata"]["name"]
        await kube.request(
            "PATCH",
            f"{crds}/{name}",
            body=doc,
            params={"fieldManager": "modelreg-install", "force": "true"},
            content_type="application/apply-patch+yaml",
        )
        names.append(name)
    deadline = time.monotonic() + timeout
    for name in names:
        while True:
            conds = (await kube.get(f"{crds}/{name}")).get("status", {}).get("conditions") or []
            if any(c.get("type") == "Established" and c.get("status") == "True" for c in conds):
                break
            if time.monotonic() > deadline:
                raise TimeoutError(f"CRD {name} not Established after {timeout}s")
            await asyncio.sleep(0.2)


async def prepare_namespaces(ctx: Context) -> None:
    """CRDs installed, namespaces left by earlier runs gone, this run's namespaces created."""
    kube = ctx.kube
    await install_crds(kube)
    ns_path = path("namespaces", group="", version="v1")
    stale = [n["metadata"]["name"] for n in await kube.list_all(ns_path, labelSelector="modelreg-bench=1")]
    if stale:
        ctx.log("cluster", f"deleting {len(stale)} namespaces left by earlier runs")
        for ns in stale:
            await kube.delete(f"{ns_path}/{ns}")
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            if not await kube.list_all(ns_path, labelSelector="modelreg-bench=1"):
                break
            await asyncio.sleep(1)
    for ns in ctx.namespaces_up_front():
        await kube.create(ns_path, namespace_body(ns), exist_ok=True)


async def run_phase(ctx: Context, phase: Phase, *, must_pass: bool = False) -> None:
    """Run ``phase`` and report its figures; a failure loses only its own figures, unless
    ``must_pass`` or the operator died with it."""
    t0 = time.monotonic()
    try:
        ctx.report.add(await phase.run(ctx))
    except Exception as err:
        if must_pass:
            raise
        ctx.log(phase.name, f"FAILED: {err!r}")
        ctx.report.details.setdefault("errors", {})[phase.name] = repr(err)[:500]
        if ctx.operator_died():
            raise
    ctx.report.details.setdefault("phase_seconds", {})[phase.name] = round(time.monotonic() - t0, 1)


async def run_phases(ctx: Context) -> None:
    skip = ctx.options.skip
    for phase in FLOORS:
        if phase.name not in skip:
            await run_phase(ctx, phase, must_pass=True)
    await ctx.start_operator()
    await run_phase(ctx, Setup(), must_pass=True)
    for phase in WITH_OPERATOR:
        if phase.name not in skip:
            await run_phase(ctx, phase)
    await asyncio.to_thread(ctx.stop_operator)
    await asyncio.sleep(1.0)  # watches closed: their audit records are written
    for phase in COSTS:
        ctx.report.add(await phase.run(ctx))


async def bench(args: argparse.Namespace, report: Report, drive: Drive) -> int:
    work_dir = Path(args.work_dir or tempfile.mkdtemp(prefix="modelreg-bench-"))
    work_dir.mkdir(parents=True, exist_ok=True)
    drive.log("bench", f"run {report.run}, work dir {work_dir}")
    drive.log("cluster", "starting or reusing the " + ("shared" if args.shared_cluster else "private") + " dev cluster")
    bc = await asyncio.to_thread(
        clu.open_cluster,
        Path(args.cluster_dir) if args.cluster_dir else None,
        shared=args.shared_cluster,
        work_dir=work_dir,
        progress=lambda m: drive.log("cluster", m),
    )
    drive.log("cluster", f"{bc.server} (audit log: {bc.audit_log or 'none'})")
    async with Kube(bc.kubeconfig, limit=max(64, args.concurrency * 2)) as kube:
        ctx = Context(
            sizes=args.sizes,
            options=Options(
                workers=args.workers,
                concurrency=args.concurrency,
                operator_module=args.operator_module,
                profile=args.profile,
                skip=frozenset(filter(None, args.skip.split(","))),
            ),
            ns=Namespaces(report.run, args.sizes.namespaces),
            cluster=bc,
            kube=kube,
            report=report,
            seen=Observed(report.run),
            drive=drive,
            work_dir=work_dir,
        )
        watches = []
        try:
            await prepare_namespaces(ctx)
            watches = await ctx.seen.start_watches(kube, ctx.ns.rem, ctx.log)
            ctx.log("cluster", f"namespaces bench-{report.run}-* ready; watches open")
            await run_phases(ctx)
            return 0
        finally:
            await asyncio.to_thread(ctx.stop_operator)
            for t in watches:
                t.cancel()
            await asyncio.gather(*watches, return_exceptions=True)
            down = bc.private and bc.started_here and not args.keep_cluster
            if not args.keep_namespaces and not down:
                ns_path = path("namespaces", group="", version="v1")
                for ns in ctx.ns.every():
                    await kube.delete(f"{ns_path}/{ns}")
                ctx.log("cleanup", f"namespaces bench-{report.run}-* deleted")
            if down:
                ctx.log("cleanup", "stopping the private bench cluster (started by this run)")
                await asyncio.to_thread(bc.dc.down)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="python -m benchmarks.bench",
        description=(__doc__ or "").split("\n\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    mode = p.add_mutually_exclusive_group()
    mode.add_argument("--quick", dest="mode", action="store_const", const="quick", help="small sizes")
    mode.add_argument("--full", dest="mode", action="store_const", const="full", help="full sizes (default)")
    p.add_argument("--out", type=Path, default=Path("bench-results.json"), help="JSON results file")
    sizes = p.add_argument_group("sizes (defaults depend on --quick / --full)")
    for key, kind in field_types().items():
        sizes.add_argument(
            "--" + key.replace("_", "-"),
            type=kind,
            default=None,
            help=f"quick {getattr(MODES['quick'], key)}, full {getattr(MODES['full'], key)}",
        )
    p.add_argument("--workers", type=int, default=8, help="operator --workers")
    p.add_argument("--concurrency", type=int, default=32, help="client requests in flight (and floor workers)")
    p.add_argument("--skip", default="", help="phases to skip, comma-separated: " + ",".join(SKIPPABLE))
    p.add_argument(
        "--shared-cluster",
        action="store_true",
        help="run on the shared dev cluster (no audit log: API costs approximated)",
    )
    p.add_argument(
        "--cluster-dir", help="state dir of the private bench cluster (default ~/.cache/modelreg/clusters/bench)"
    )
    p.add_argument("--keep-cluster", action="store_true", help="leave the private bench cluster running")
    p.add_argument(
        "--operator-module",
        default="modelreg.cli.main",
        help="module run as `python -m MODULE run ...` (to A/B a patched operator)",
    )
    p.add_argument(
        "--profile",
        action="store_true",
        help="py-spy the operator during the throughput and restart phases (py-spy must be installed)",
    )
    p.add_argument("--keep-namespaces", action="store_true", help="do not delete the bench namespaces")
    p.add_argument("--work-dir", help="where the operator log and kubeconfig go (default: a temp dir)")
    args = p.parse_args(argv)
    args.mode = args.mode or "full"
    args.sizes = sizes_for(args.mode, {key: getattr(args, key) for key in field_types()})
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    report = Report(mode=args.mode, run=secrets.token_hex(2))
    drive = Drive(concurrency=args.concurrency)
    report.details["sizes"] = {
        **args.sizes.as_dict(),
        **{k: v for k, v in vars(args).items() if k not in ("out", "sizes", "mode") and k not in args.sizes.as_dict()},
    }
    code = 1
    try:
        code = asyncio.run(bench(args, report, drive))
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
    finally:
        usage = resource.getrusage(resource.RUSAGE_SELF)
        report.details["elapsed_s"] = round(time.monotonic() - drive.t_start, 1)
        report.details["bench_cpu_s"] = round(usage.ru_utime + usage.ru_stime, 1)
        report.write(args.out)
    return code


if __name__ == "__main__":
    sys.exit(main())
