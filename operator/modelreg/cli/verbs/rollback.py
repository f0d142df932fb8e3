"""``modelreg rollback NAME``: roll back a Production version now."""

from __future__ import annotations

import argparse

from modelreg.cli.shell import command, connection_args
from modelreg.cli.verbs.annotate import set_annotation
from modelreg.core.lifecycle.annotations import ROLLBACK_ANNOTATION


def add_parser(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("rollback", help="roll back a Production version now")
    p.add_argument("name", metavar="NAME", help="RegisteredModel name")
    connection_args(p)
    p.set_defaults(func=run)


@command
def run(args: argparse.Namespace) -> int:
    return set_annotation(args, ROLLBACK_ANNOTATION, "rollback", ("Production",))
