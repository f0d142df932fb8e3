"""The user verbs of ``modelreg``, one module each: ``add_parser(sub)`` and ``run(args)``.

They talk to the cluster through :mod:`modelreg.cli.cluster` (the official synchronous
``kubernetes`` client, never a kubectl subprocess), format with the pure
:mod:`modelreg.cli.view`, and turn every failure into one line on stderr
(:func:`modelreg.cli.shell.command`).
"""

from __future__ import annotations

import argparse

from modelreg.cli.verbs import (
    approve,
    card,
    fleet,
    list_,
    promote,
    record_snapshot,
    resolve,
    retry,
    rollback,
    status,
    wait,
)

#: In the order ``modelreg --help`` lists them.
VERBS = (status, list_, fleet, card, record_snapshot, promote, approve, retry, rollback, resolve, wait)


def add_parsers(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    for verb in VERBS:
        verb.add_parser(sub)
