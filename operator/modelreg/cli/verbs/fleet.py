"""``modelreg fleet``: every Production version you can read (exit code 1 when any is Critical)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from modelreg.cli.cluster import INCIDENTS, RMODELS, Kube, Obj, connect
from modelreg.cli.shell import command, connection_args, emit, output_arg, warn
from modelreg.cli.style import Style
from modelreg.cli.view import (
    dump,
    fleet_exit_code,
    fleet_row,
    fleet_sort_key,
    fleet_summary,
    fleet_table,
    get_in,
    is_production,
)


def add_parser(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser(
        "fleet",
        help="all Production versions you can read (exit code 1 when any is Critical)",
        description="Health, last snapshot age, key metrics and open incidents of every Production "
        "version. Exit code 1 when any is Critical.",
    )
    p.add_argument(
        "-A",
        "--all-namespaces",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="all namespaces you can read (default; falls back to the context's namespace when forbidden)",
    )
    output_arg(p)
    connection_args(p, multi_namespace=True)
    p.set_defaults(func=run)


@command
def run(args: argparse.Namespace) -> int:
    kube = connect(args)
    with kube.api:
        rows = _fleet_data(kube, args)
    if args.output:
        emit(dump(rows, args.output))
    else:
        if rows:
            emit(Style(sys.stdout).table_column(fleet_table(rows), "HEALTH"))
        emit(fleet_summary(rows))
    return fleet_exit_code(rows)


def _is_forbidden(err: BaseException) -> bool:
    from kubernetes.client.exceptions import ApiException

    return isinstance(err, ApiException) and err.status == 403


def _list_in_namespaces(kube: Kube, plural: str, namespaces: Sequence[str]) -> tuple[list[Obj], list[str]]:
    """Items from each namespace; returns (items, namespaces that were forbidden)."""
    items: list[Obj] = []
    forbidden: list[str] = []
    last: BaseException | None = None
    for ns in namespaces:
        try:
            items.extend(kube.list(plural, ns))
        except Exception as err:
            if not _is_forbidden(err):
                raise
            forbidden.append(ns)
            last = err
    if last is not None and len(forbidden) == len(namespaces):
        raise last
    return items, forbidden


def _fleet_data(kube: Kube, args: argparse.Namespace) -> list[dict[str, Any]]:
    explicit = list(dict.fromkeys(args.namespace or []))
    cluster_wide = False
    if explicit:
        namespaces = explicit
    elif args.all_namespaces:
        namespaces = []
        try:
            models = kube.list(RMODELS, "")
            cluster_wide = True
        except Exception as err:
            if not _is_forbidden(err):
                raise
            warn(
                f"note: cannot list {RMODELS} in all namespaces (forbidden); showing namespace {kube.context_namespace}"
            )
            namespaces = [kube.context_namespace]
    else:
        namespaces = [kube.context_namespace]
    if not cluster_wide:
        models, forbidden = _list_in_namespaces(kube, RMODELS, namespaces)
        for ns in forbidden:
            warn(f"warning: cannot list {RMODELS} in namespace {ns} (forbidden); skipped")
    production = [m for m in models if is_production(m)]

    # Open incidents: cluster-wide when possible, else per namespace of the production versions.
    by_ns: dict[str, list[Obj] | None] = {}
    needed = sorted({get_in(m, "metadata", "namespace") or "" for m in production})
    if production and cluster_wide:
        try:
            everywhere = kube.list(INCIDENTS, "")
        except Exception as err:
            if not _is_forbidden(err):
                raise
        else:
            for ns in needed:
                by_ns[ns] = [i for i in everywhere if (get_in(i, "metadata", "namespace") or "") == ns]
    for ns in needed:
        if ns in by_ns:
            continue
        try:
            by_ns[ns] = kube.list(INCIDENTS, ns)
        except Exception as err:
            if not _is_forbidden(err):
                raise
            warn(f"warning: cannot list {INCIDENTS} in namespace {ns} (forbidden); counts shown as ?")
            by_ns[ns] = None
    now = datetime.now(UTC)
    rows = [fleet_row(m, by_ns.get(get_in(m, "metadata", "namespace") or ""), now) for m in production]
    rows.sort(key=fleet_sort_key)
    return rows
