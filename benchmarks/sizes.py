"""How big each phase runs: the quick and full sizes, and per-run overrides from the command line."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Sizes:
    versions: int  # IncidentOnly versions (each its own model pair slot), in `namespaces` namespaces
    namespaces: int
    model_names: int
    floor_breaches: int  # latency floor: breaching snapshots a bare client turns into Incidents
    floor_rate: float
    floor_seconds: float  # throughput floor: how long the bare client writes as fast as it can
    breaches: int
    breach_rate: float
    background_rate: float  # healthy snapshots/s during the breach and remediation phases
    remediations: int
    remediation_rate: float
    snapshots_per_version: int
    rates: str  # the throughput phase's steps, snapshots/s, comma-separated
    step_seconds: float
    burst: int
    soak_minutes: float
    soak_rate: float
    idle_seconds: float
    big_versions: int
    settle_seconds: float

    def step_rates(self) -> list[float]:
        return [float(r) for r in self.rates.split(",") if r.strip()]

    def as_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


QUICK = Sizes(
    versions=100,
    namespaces=10,
    model_names=30,
    floor_breaches=30,
    floor_rate=10.0,
    floor_seconds=10.0,
    breaches=30,
    breach_rate=5.0,
    background_rate=5.0,
    remediations=20,
    remediation_rate=4.0,
    snapshots_per_version=10,
    rates="25,50,100,150,200",
    step_seconds=15.0,
    burst=300,
    soak_minutes=1.0,
    soak_rate=20.0,
    idle_seconds=10.0,
    big_versions=0,
    settle_seconds=0.5,
)

FULL = Sizes(
    versions=1000,
    namespaces=10,
    model_names=300,
    floor_breaches=200,
    floor_rate=10.0,
    floor_seconds=60.0,
    breaches=200,
    breach_rate=5.0,
    background_rate=20.0,
    remediations=200,
    remediation_rate=5.0,
    snapshots_per_version=10,
    rates="20,30,40,50,60,80,100,150",
    step_seconds=60.0,
    burst=2000,
    soak_minutes=15.0,
    soak_rate=20.0,
    idle_seconds=60.0,
    big_versions=10000,
    settle_seconds=2.0,
)

MODES = {"quick": QUICK, "full": FULL}


def field_types() -> dict[str, type]:
    """Each size's type, for the command line's ``--<size>`` flags."""
    return {f.name: type(getattr(FULL, f.name)) for f in dataclasses.fields(Sizes)}


def sizes_for(mode: str, overrides: dict[str, Any]) -> Sizes:
    """``mode``'s sizes with every override that is not None."""
    return dataclasses.replace(MODES[mode], **{k: v for k, v in overrides.items() if v is not None})
