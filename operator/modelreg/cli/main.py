"""The `modelreg` command (also `kubectl modelreg`)."""

from __future__ import annotations

import argparse
import sys

from modelreg import __version__


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="modelreg",
        description="Kubernetes-native model registry and deployment governor.",
    )
    parser.add_argument("--version", action="version", version=f"modelreg {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True

    from modelreg.devcluster.cli import register as register_devcluster

    register_devcluster(sub)
    from modelreg.cli import commands

    commands.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
