"""``modelreg promote NAME --to STAGE``: set a version's ``spec.targetStage``."""

from __future__ import annotations

import argparse

from modelreg.cli.cluster import RMODELS, connect
from modelreg.cli.shell import command, connection_args, emit
from modelreg.cli.view import STAGES


def add_parser(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("promote", help="set a version's spec.targetStage")
    p.add_argument("name", metavar="NAME", help="RegisteredModel name")
    p.add_argument("--to", required=True, choices=STAGES, help="target stage")
    connection_args(p)
    p.set_defaults(func=run)


@command
def run(args: argparse.Namespace) -> int:
    kube = connect(args, args.namespace)
    with kube.api:
        kube.merge_patch(RMODELS, args.name, {"spec": {"targetStage": args.to}})
    emit(f"registeredmodel/{args.name} targetStage set to {args.to}")
    return 0
