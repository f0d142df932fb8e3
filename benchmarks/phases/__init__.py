"""The benchmark's phases, one per module, each behind :class:`Phase`, in the order they run.

The floors run first, on the bare API server (no operator yet); the operator's phases then
share the objects the setup phase creates; the cost phases read what the others left (the
audit log, the CPU counters) once the operator has stopped.
"""

from __future__ import annotations

from typing import Protocol

from benchmarks.context import Context
from benchmarks.report import Figure


class Phase(Protocol):
    name: str

    async def run(self, ctx: Context) -> list[Figure]: ...
