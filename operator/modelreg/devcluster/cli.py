"""`modelreg dev-cluster up | down | status | env | build`."""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from modelreg.devcluster.binaries import ensure_binaries
from modelreg.devcluster.cluster import DevCluster, default_state_dir
from modelreg.devcluster.errors import DevClusterError

Handler = Callable[[argparse.Namespace], int]


def _stderr(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def _progress_printer() -> Callable[[str], None]:
    t0 = time.monotonic()

    def progress(msg: str) -> None:
        _stderr(f"[dev-cluster {time.monotonic() - t0:5.1f}s] {msg}")

    return progress


def _cluster(args: argparse.Namespace) -> DevCluster:
    return DevCluster(args.state_dir, args.cache_root, progress=_progress_printer())


def _guarded(name: str, fn: Handler) -> Handler:
    """Turn expected failures into a one-line message and exit code 1 (no traceback)."""

    def run(args: argparse.Namespace) -> int:
        try:
            return fn(args)
        except DevClusterError as exc:
            _stderr(f"modelreg dev-cluster {name}: error: {exc.message}")
            if exc.detail and getattr(args, "verbose", False):
                _stderr(exc.detail)
            return 1
        except (OSError, subprocess.SubprocessError) as exc:
            _stderr(f"modelreg dev-cluster {name}: error: {exc}")
            return 1

    return run


def cmd_up(args: argparse.Namespace) -> int:
    info = _cluster(args).up(
        extra_etcd_args=args.etcd_arg,
        extra_apiserver_args=args.apiserver_arg,
        extra_controller_manager_args=args.controller_manager_arg,
        etcd_compaction=args.etcd_compaction,
        timeout=args.timeout,
        reuse=not args.fresh,
    )
    if info.reused:
        _stderr(f"[dev-cluster] reused running cluster ({info.start_seconds:.2f}s)")
    print(info.kubeconfig, flush=True)
    return 0


def cmd_down(args: argparse.Namespace) -> int:
    cluster = _cluster(args)
    if cluster.down():
        _stderr(f"[dev-cluster] stopped and removed {cluster.state_dir}")
    else:
        _stderr(f"[dev-cluster] nothing to do: no cluster in {cluster.state_dir}")
    return 0


def cmd_status(args: argparse.Namespace) -> int:
    st = _cluster(args).status()
    if args.json:
        print(json.dumps(st.as_dict(), indent=2))
    else:
        print(f"running:     {'yes' if st.running else 'no'} ({st.detail})")
        print(f"state dir:   {st.state_dir}")
        if st.server:
            print(f"server:      {st.server}")
            print(f"kubeconfig:  {st.kubeconfig}")
            print(f"versions:    kubernetes {st.k8s_version}, etcd {st.etcd_version}")
            pids = ", ".join(f"{c}={pid}{'' if st.alive.get(c) else ' (dead)'}" for c, pid in st.pids.items())
            print(f"pids:        {pids}")
        if st.uptime_seconds is not None:
            print(f"uptime:      {st.uptime_seconds:.0f}s")
        if st.cold_start_seconds is not None:
            print(f"cold start:  {st.cold_start_seconds:.1f}s")
    return 0 if st.running else 1


def cmd_env(args: argparse.Namespace) -> int:
    for line in _cluster(args).env():
        print(line)
    return 0


def cmd_build(args: argparse.Namespace) -> int:
    bins = ensure_binaries(args.cache_root)
    for name, path in bins.all().items():
        print(f"{name}: {path}")
    return 0


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Add ``dev-cluster`` and its subcommands to the top-level subparsers."""
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--state-dir",
        type=Path,
        default=None,
        help=f"cluster state directory (default: $MODELREG_CLUSTER_DIR or {default_state_dir()})",
    )
    common.add_argument(
        "--cache-root",
        type=Path,
        default=None,
        help="binary cache root (default: $MODELREG_CACHE or ~/.cache/modelreg)",
    )
    common.add_argument("-v", "--verbose", action="store_true", help="on failure, also print log tails")

    parser = sub.add_parser(
        "dev-cluster",
        help="run a local Kubernetes control plane for development and tests",
        description="Local control plane: etcd + kube-apiserver + kube-controller-manager (no kubelet).",
    )
    dc = parser.add_subparsers(dest="dev_cluster_command", metavar="{up,down,status,env,build}")
    dc.required = True

    up = dc.add_parser(
        "up",
        parents=[common],
        help="start (or reuse) the cluster; prints the kubeconfig path",
        description="Start the control plane, or reuse a running one. Progress goes to stderr; "
        "the last stdout line is the kubeconfig path. Pass flags as --apiserver-arg=--flag=value.",
    )
    up.add_argument("--etcd-arg", action="append", default=[], metavar="ARG", help="extra etcd flag")
    up.add_argument("--apiserver-arg", action="append", default=[], metavar="ARG", help="extra kube-apiserver flag")
    up.add_argument(
        "--controller-manager-arg",
        action="append",
        default=[],
        metavar="ARG",
        help="extra kube-controller-manager flag",
    )
    up.add_argument("--etcd-compaction", metavar="RETENTION", help="periodic etcd auto-compaction, e.g. 5m")
    up.add_argument("--timeout", type=float, default=60.0, help="seconds to wait for each readiness stage")
    up.add_argument("--fresh", action="store_true", help="always start a new cluster (discarding a running one)")
    up.set_defaults(func=_guarded("up", cmd_up))

    down = dc.add_parser("down", parents=[common], help="stop the cluster and delete its state")
    down.set_defaults(func=_guarded("down", cmd_down))

    status = dc.add_parser("status", parents=[common], help="show the cluster; exit 0 when running, 1 when not")
    status.add_argument("--json", action="store_true", help="machine-readable output")
    status.set_defaults(func=_guarded("status", cmd_status))

    env = dc.add_parser("env", parents=[common], help="print `export KUBECONFIG=... PATH=...` lines")
    env.set_defaults(func=_guarded("env", cmd_env))

    build = dc.add_parser("build", parents=[common], help="build (or verify) the pinned control-plane binaries")
    build.set_defaults(func=_guarded("build", cmd_build))
