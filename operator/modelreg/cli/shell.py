"""What every user verb shares: its options, printing, and the wrapper that turns failures into one line."""

from __future__ import annotations

import argparse
import functools
import os
import sys
from collections.abc import Callable

from modelreg.cli.errors import error_message

Handler = Callable[[argparse.Namespace], int]


def emit(text: str) -> None:
    """Print UTF-8 text even when the terminal's encoding cannot represent it."""
    try:
        sys.stdout.write(text + "\n")
    except UnicodeEncodeError:
        sys.stdout.flush()
        sys.stdout.buffer.write((text + "\n").encode("utf-8"))
    sys.stdout.flush()


def warn(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def command(func: Handler) -> Handler:
    """Run a command; any failure becomes ``error: <one line>`` on stderr and exit code 1."""

    @functools.wraps(func)
    def wrapper(args: argparse.Namespace) -> int:
        try:
            return int(func(args) or 0)
        except KeyboardInterrupt:
            raise
        except BrokenPipeError:
            return 1
        except Exception as err:
            if os.environ.get("MODELREG_DEBUG") == "1":
                raise
            ns = getattr(args, "resolved_namespace", None)
            warn(f"error: {error_message(err, ns)}")
            return 1

    return wrapper


def connection_args(parser: argparse.ArgumentParser, *, multi_namespace: bool = False) -> None:
    group = parser.add_argument_group("cluster")
    group.add_argument("--kubeconfig", default=None, help="kubeconfig file (default: $KUBECONFIG or ~/.kube/config)")
    group.add_argument("--context", default=None, help="kubeconfig context (default: the current context)")
    if multi_namespace:
        group.add_argument(
            "-n",
            "--namespace",
            action="append",
            default=None,
            metavar="NAMESPACE",
            help="only this namespace (repeatable; default: all namespaces you can read)",
        )
    else:
        group.add_argument(
            "-n",
            "--namespace",
            default=None,
            help="namespace (default: the context's namespace, else 'default')",
        )
    group.add_argument(
        "--request-timeout",
        type=float,
        default=30.0,
        metavar="SECONDS",
        help="per-request timeout (default 30)",
    )


def output_arg(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("-o", "--output", choices=("json", "yaml"), default=None, help="machine-readable output")
