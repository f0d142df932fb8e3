"""``modelreg list [-A]``: the RegisteredModels in the namespace (or all namespaces)."""

from __future__ import annotations

import argparse

from modelreg.cli.cluster import RMODELS, connect
from modelreg.cli.shell import command, connection_args, emit, output_arg, warn
from modelreg.cli.view import LIST_HEADERS, dump, get_in, list_row, render_table, strip_managed_fields


def add_parser(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("list", help="RegisteredModels in the namespace")
    p.add_argument("-A", "--all-namespaces", action="store_true", help="list across all namespaces")
    output_arg(p)
    connection_args(p)
    p.set_defaults(func=run)


@command
def run(args: argparse.Namespace) -> int:
    kube = connect(args, args.namespace)
    with kube.api:
        items = kube.list(RMODELS, "" if args.all_namespaces else None)
    items.sort(key=lambda o: (get_in(o, "metadata", "namespace") or "", get_in(o, "metadata", "name") or ""))
    if args.output:
        emit(dump([strip_managed_fields(o) for o in items], args.output))
        return 0
    if not items:
        where = "any namespace" if args.all_namespaces else f"namespace {kube.namespace}"
        warn(f"No registered models found in {where}.")
        return 0
    if args.all_namespaces:
        emit(
            render_table(
                ("NAMESPACE", *LIST_HEADERS),
                [[get_in(o, "metadata", "namespace"), *list_row(o)] for o in items],
            )
        )
    else:
        emit(render_table(LIST_HEADERS, [list_row(o) for o in items]))
    return 0
