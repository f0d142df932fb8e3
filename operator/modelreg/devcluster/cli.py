"""`modelreg dev-cluster` subcommands (placeholder, replaced by the devcluster module)."""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    pass
