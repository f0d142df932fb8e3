"""``modelreg run``: the operator's subcommand, which the CLI registers without loading Kopf.

The one module of the controller the CLI imports (see ``.importlinter``): it adds the
``run`` parser with the operator's flags, and starts the operator only when ``run`` runs.
"""

from __future__ import annotations

import argparse
import sys

from modelreg.controller.flags import add_arguments


def add_parser(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:  # type: ignore[type-arg]
    """The ``run`` parser with the operator's flags (the CLI adds the credential flags)."""
    parser: argparse.ArgumentParser = sub.add_parser("run", help="run the operator")
    add_arguments(parser)
    parser.set_defaults(func=start)
    return parser


def start(args: argparse.Namespace) -> int:
    # The operator talks to the API server through its own aiohttp client. Kopf imports the
    # `kubernetes` package when it is installed (only to recognise its model classes), which
    # costs about 25 MiB of resident memory per operator: make that optional import fail.
    sys.modules.setdefault("kubernetes", None)  # type: ignore[arg-type]
    from modelreg.controller.run import main

    return main(args)
