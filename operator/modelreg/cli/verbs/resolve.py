"""``modelreg resolve INCIDENT``: mark an Incident Resolved."""

from __future__ import annotations

import argparse
from datetime import UTC, datetime

from modelreg.cli.cluster import INCIDENTS, connect
from modelreg.cli.shell import command, connection_args, emit
from modelreg.core import timefmt


def add_parser(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("resolve", help="mark an Incident Resolved")
    p.add_argument("incident", metavar="INCIDENT", help="Incident name")
    connection_args(p)
    p.set_defaults(func=run)


@command
def run(args: argparse.Namespace) -> int:
    kube = connect(args, args.namespace)
    with kube.api:
        kube.get(INCIDENTS, args.incident)
        closed_at = timefmt.rfc3339(datetime.now(UTC))
        kube.patch_status(INCIDENTS, args.incident, {"status": {"phase": "Resolved", "closedAt": closed_at}})
    emit(f"incident/{args.incident} resolved")
    return 0
