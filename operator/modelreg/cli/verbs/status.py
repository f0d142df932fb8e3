"""``modelreg status NAME [--watch]``: one version's summary (stage, health, gates, last snapshot, incident)."""

from __future__ import annotations

import argparse
import sys
from datetime import UTC, datetime

from modelreg.cli import style
from modelreg.cli.cluster import RMODELS, connect
from modelreg.cli.errors import error_message
from modelreg.cli.follow import Deleted, follow
from modelreg.cli.shell import command, connection_args, emit, output_arg, warn
from modelreg.cli.view import dump, format_status, strip_managed_fields


def add_parser(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("status", help="one version's summary: stage, health, gates, last snapshot, incident")
    p.add_argument("name", metavar="NAME", help="RegisteredModel name")
    output_arg(p)
    connection_args(p)
    p.add_argument("-w", "--watch", action="store_true", help="redraw on every change (Ctrl-C to stop)")
    p.set_defaults(func=run)


@command
def run(args: argparse.Namespace) -> int:
    if getattr(args, "watch", False):
        return run_watch(args)
    kube = connect(args, args.namespace)
    with kube.api:
        obj = kube.get(RMODELS, args.name)
    if args.output:
        emit(dump(strip_managed_fields(obj), args.output))
    else:
        emit(style.Style(sys.stdout).status(format_status(obj, datetime.now(UTC))))
    return 0


def run_watch(args: argparse.Namespace) -> int:
    """Redraw ``modelreg status NAME`` on every change until Ctrl-C (or deletion)."""
    if getattr(args, "output", None):
        warn("error: --watch cannot be combined with -o")
        return 2
    tty = sys.stdout.isatty()
    painter = style.Style(sys.stdout)
    try:
        kube = connect(args, args.namespace)
        with kube.api:
            seen = None
            for obj in follow(kube, args.name, None):
                rv = (obj.get("metadata") or {}).get("resourceVersion")
                if rv == seen:
                    continue
                seen = rv
                text = painter.status(format_status(obj, datetime.now(UTC)))
                stamp = datetime.now(UTC).strftime("%H:%M:%SZ")
                header = f"modelreg status {args.name} --watch (updated {stamp}; Ctrl-C to stop)"
                if tty:
                    sys.stdout.write("\x1b[H\x1b[2J")
                    emit(f"{header}\n\n{text}")
                else:
                    emit(f"--- {header}\n{text}")
    except Deleted:
        warn(f"registeredmodel/{args.name} was deleted")
        return 1
    except KeyboardInterrupt:
        return 0
    except Exception as exc:
        warn(f"error: {error_message(exc, getattr(args, 'resolved_namespace', None))}")
        return 1
    return 0
