"""``modelreg retry NAME``: move an Archived or RolledBack version (or a failed canary) back to Development."""

from __future__ import annotations

import argparse

from modelreg.cli.shell import command, connection_args
from modelreg.cli.verbs.annotate import set_annotation
from modelreg.core.lifecycle.annotations import RETRY_ANNOTATION


def add_parser(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("retry", help="move an Archived or RolledBack version back to Development")
    p.add_argument("name", metavar="NAME", help="RegisteredModel name")
    connection_args(p)
    p.set_defaults(func=run)


@command
def run(args: argparse.Namespace) -> int:
    return set_annotation(args, RETRY_ANNOTATION, "retry", ("RolledBack", "Archived"))
