"""User-facing commands that talk to a cluster."""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Register cluster commands (filled in as the features land)."""
