"""Flags of `modelreg run`, importable without Kopf (the CLI builds its parser from them)."""

from __future__ import annotations

import argparse
import dataclasses
import os

from modelreg.core.policy import Defaults

REMOVED_HA_FLAGS = ("--peering", "--priority", "--priority-from-env")
REMOVED_HA_MESSAGE = (
    "{flag} was removed with Kopf peering: run the replicas with --leader-elect "
    "(one active replica through a coordination.k8s.io Lease; see --leader-election-id)"
)


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
    for flag in REMOVED_HA_FLAGS:  # refused with a pointer to --leader-elect (check_flags)
        parser.add_argument(
            flag,
            dest="removed_" + flag[2:].replace("-", "_"),
            nargs="?",
            const="",
            default=None,
            help=argparse.SUPPRESS,
        )
    parser.add_argument(
        "--identity",
        default=os.environ.get("MODELREG_IDENTITY"),
        help="the name Incidents are claimed under; all replicas of one operator share it "
        "(default: $MODELREG_IDENTITY, else the Lease id with --leader-elect, else the host name)",
    )
    ha = parser.add_argument_group("high availability and sharding")
    ha.add_argument(
        "--leader-elect",
        action="store_true",
        default=os.environ.get("MODELREG_LEADER_ELECT", "").lower() in ("1", "true", "yes"),
        help="one active replica, elected through a coordination.k8s.io/v1 Lease; standbys watch but write nothing",
    )
    ha.add_argument(
        "--leader-election-namespace",
        metavar="NS",
        default=None,
        help="namespace of the Lease (default: $POD_NAMESPACE, else the pod's service-account namespace, "
        "else the one --namespace, else default)",
    )
    ha.add_argument(
        "--leader-election-id",
        metavar="NAME",
        default=None,
        help="name of the Lease (default: modelreg, or modelreg-<sha256(selector)[:8]> with --namespace-selector)",
    )
    ha.add_argument(
        "--leader-identity",
        metavar="NAME",
        default=None,
        help="this replica's holderIdentity in the Lease (default: $POD_NAME, else <hostname>_<random>)",
    )
    ha.add_argument(
        "--namespace-selector",
        metavar="LABELSELECTOR",
        default=None,
        help="own the namespaces whose labels match (e.g. shard=a); watched, so namespaces "
        "labelled later are picked up and unlabelled ones let go. Not with --namespace",
    )
    parser.add_argument(
        "--metric-query-concurrency",
        type=int,
        default=int(os.environ.get("MODELREG_METRIC_QUERY_CONCURRENCY", "16")),
        help="Prometheus queries of MetricSource polling in flight at once (default 16)",
    )
    parser.add_argument("--verbose", "-v", action="store_true")
    group = parser.add_argument_group("operator-wide defaults (docs/defaults.md; also MODELREG_DEFAULT_<FIELD>)")
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


def check_flags(args: argparse.Namespace) -> None:
    """Refuse what cannot run, naming the flag (ValueError; `modelreg run` exits 2)."""
    from modelreg.core.selector import SelectorError, parse

    for flag in REMOVED_HA_FLAGS:
        if getattr(args, "removed_" + flag[2:].replace("-", "_"), None) is not None:
            raise ValueError(REMOVED_HA_MESSAGE.format(flag=flag))
    for var, flag in (("MODELREG_PEERING", "--peering"), ("MODELREG_PRIORITY", "--priority")):
        if os.environ.get(var):
            raise ValueError(REMOVED_HA_MESSAGE.format(flag=f"${var} ({flag})"))
    if args.namespace_selector is not None:
        if args.namespace:
            raise ValueError(
                "--namespace-selector and --namespace are mutually exclusive: "
                "a shard owns the namespaces its selector matches"
            )
        try:
            parse(args.namespace_selector)
        except SelectorError as err:
            raise ValueError(
                f"--namespace-selector {args.namespace_selector!r}: invalid label selector: {err}"
            ) from None
