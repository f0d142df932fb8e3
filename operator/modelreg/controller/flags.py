"""Flags of `modelreg run`, importable without Kopf (the CLI builds its parser from them)."""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import os
import socket
import sys

from modelreg.core.policy import Defaults


def priority_from(value: str) -> int:
    """A peering priority derived from a per-pod value (e.g. the pod UID)."""
    return int.from_bytes(hashlib.sha256(value.encode()).digest()[:4], "big") & 0x7FFFFFFF


def default_priority(env: os._Environ[str] | dict[str, str]) -> int:
    """A per-pod peering priority: equal priorities freeze each other, so each replica
    derives its own from its pod UID (downward API) unless one is given."""
    if env.get("MODELREG_PRIORITY"):
        return int(env["MODELREG_PRIORITY"])
    source = env.get("MODELREG_PRIORITY_FROM_ENV") or "MODELREG_POD_UID"
    if env.get(source):
        return priority_from(env[source])
    return 0


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--namespace", "-n", action="append", default=[], help="watch only this namespace (repeat)")
    parser.add_argument("--metrics-port", type=int, default=int(os.environ.get("MODELREG_METRICS_PORT", "8081")))
    parser.add_argument("--liveness-port", type=int, default=int(os.environ.get("MODELREG_LIVENESS_PORT", "8080")))
    parser.add_argument("--workers", type=int, default=8, help="models processed concurrently")
    parser.add_argument(
        "--exclude-namespace",
        action="append",
        default=[],
        metavar="GLOB",
        help="leave objects in namespaces matching GLOB alone (repeat); watching stays cluster-wide",
    )
    parser.add_argument("--no-builtin-healer", action="store_true", help="leave every Incident to other healers")
    parser.add_argument("--peering", default=os.environ.get("MODELREG_PEERING"), help="Kopf peering name (HA)")
    parser.add_argument(
        "--priority",
        type=int,
        default=default_priority(os.environ),
        help="Kopf peering priority (default: $MODELREG_PRIORITY, else derived from $MODELREG_POD_UID, else 0)",
    )
    parser.add_argument(
        "--priority-from-env",
        metavar="NAME",
        default=None,
        help="derive the peering priority from environment variable NAME (e.g. MODELREG_POD_UID); --priority wins",
    )
    parser.add_argument("--identity", default=os.environ.get("MODELREG_IDENTITY") or socket.gethostname())
    parser.add_argument(
        "--metric-query-concurrency",
        type=int,
        default=int(os.environ.get("MODELREG_METRIC_QUERY_CONCURRENCY", "16")),
        help="Prometheus queries of MetricSource polling in flight at once (default 16)",
    )
    parser.add_argument("--verbose", "-v", action="store_true")
    group = parser.add_argument_group("operator-wide defaults (SPEC §5; also MODELREG_DEFAULT_<FIELD>)")
    for field in dataclasses.fields(Defaults):
        flag = "--default-" + field.name.replace("_", "-")
        group.add_argument(flag, dest=f"default_{field.name}", metavar="VALUE", help=f"default {field.default!r}")


def defaults_from(args: argparse.Namespace) -> Defaults:
    base = Defaults.from_env(os.environ)
    flags = {
        Defaults.env_var(f.name): getattr(args, f"default_{f.name}")
        for f in dataclasses.fields(Defaults)
        if getattr(args, f"default_{f.name}", None) is not None
    }
    return Defaults.from_env(flags, base=base)


def _given(flag: str) -> bool:
    return any(a == flag or a.startswith(flag + "=") for a in sys.argv[1:])


def resolve_priority(args: argparse.Namespace, argv_has_priority: bool) -> int:
    if args.priority_from_env and not argv_has_priority:
        value = os.environ.get(args.priority_from_env)
        if not value:
            raise ValueError(f"--priority-from-env {args.priority_from_env}: the variable is unset or empty")
        return priority_from(value)
    return int(args.priority)
