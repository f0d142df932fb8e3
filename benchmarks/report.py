"""Figures, percentiles and the report: one printed line per figure, a table at the end, a JSON file."""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

JSON = dict[str, Any]
HEADER = f"{'figure':<52} {'value':>10} {'unit':<12} {'target':<22} status"


def iso(dt: datetime) -> str:
    return dt.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def pct(values: list[float], p: float) -> float:
    """Nearest-rank percentile (inf when empty)."""
    if not values:
        return math.inf
    ordered = sorted(values)
    return ordered[max(0, math.ceil(p / 100 * len(ordered)) - 1)]


def ms(seconds: float) -> float:
    return round(seconds * 1000, 1) if math.isfinite(seconds) else math.inf


def ratio(value: float, floor: float | None) -> float | None:
    """``value / floor`` to two places (inf when ``value`` is); None without a finite, positive floor."""
    if floor is None or not math.isfinite(floor) or floor <= 0:
        return None
    return round(value / floor, 2) if math.isfinite(value) else math.inf


@dataclass
class Figure:
    name: str
    value: float | None
    unit: str
    target: str = ""
    ok: bool | None = None
    note: str = ""

    def row(self) -> str:
        if self.value is None:
            val = "n/a"
        elif isinstance(self.value, float) and not math.isfinite(self.value):
            val = "inf"
        elif isinstance(self.value, float):
            val = f"{self.value:.2f}" if abs(self.value) < 100 else f"{self.value:.0f}"
        else:
            val = str(self.value)
        status = "-" if self.ok is None else ("OK" if self.ok else "MISS")
        note = f"  ({self.note})" if self.note else ""
        return f"{self.name:<52} {val:>10} {self.unit:<12} {self.target:<22} {status}{note}"

    def as_dict(self) -> JSON:
        v = self.value
        if isinstance(v, float) and not math.isfinite(v):
            v = None
        return {
            "name": self.name,
            "value": v,
            "unit": self.unit,
            "target": self.target,
            "status": None if self.ok is None else ("OK" if self.ok else "MISS"),
            "note": self.note,
        }


@dataclass
class Report:
    """Every figure (printed as it comes) and the details each phase leaves for the JSON file."""

    mode: str
    run: str
    figures: list[Figure] = field(default_factory=list)
    details: JSON = field(default_factory=dict)

    def add(self, figures: list[Figure]) -> None:
        for fig in figures:
            self.figures.append(fig)
            print(fig.row(), flush=True)

    def table(self) -> str:
        return "\n".join([HEADER, *(f.row() for f in self.figures)])

    def document(self, finished: datetime) -> JSON:
        return {
            "figures": [f.as_dict() for f in self.figures],
            "details": self.details,
            "mode": self.mode,
            "run": self.run,
            "finished": iso(finished),
        }

    def write(self, out: Path | None) -> None:
        load = os.getloadavg()
        self.details["machine"] = {"cpus": os.cpu_count(), "load_avg": load}
        print("\n" + "-" * 110)
        print(self.table())
        print(f"elapsed {self.details.get('elapsed_s')} s; load average {load[0]:.2f} on {os.cpu_count()} CPUs")
        if out is not None:
            out.write_text(json.dumps(self.document(datetime.now(UTC)), indent=2, default=str) + "\n")
            print(f"results written to {out}")
