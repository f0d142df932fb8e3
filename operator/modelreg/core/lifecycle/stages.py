"""The words of the lifecycle: stages, what a version looks like to it, its Events and its plan.

Every other module of :mod:`modelreg.core.lifecycle` builds on these; :func:`enter_stage`
is the one way a status changes stage.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Literal

from modelreg.api.models import (
    MAX_STAGE_HISTORY,
    EffectivePolicy,
    Gates,
    RegisteredModelSpec,
    RegisteredModelStatus,
    Stage,
    StageHistoryEntry,
)
from modelreg.core.conditions import remove_condition
from modelreg.core.durations import parse_duration
from modelreg.core.policy import Defaults, effective_policy

ACTIVE_STAGES: tuple[Stage, ...] = ("Development", "Sandbox", "Production")
RANK: dict[str, int] = {"Development": 0, "Sandbox": 1, "Production": 2}

EventType = Literal["Normal", "Warning"]


@dataclass(frozen=True)
class VersionView:
    """What the lifecycle needs to know about one RegisteredModel object."""

    name: str
    created: datetime
    generation: int
    spec: RegisteredModelSpec | None
    status: RegisteredModelStatus
    annotations: Mapping[str, str] = field(default_factory=dict)
    spec_error: str | None = None
    uid: str = ""
    #: The effective policy, when the caller has it already (it depends only on spec and defaults).
    policy: EffectivePolicy | None = None


@dataclass(frozen=True)
class Event:
    object_name: str
    type: EventType
    reason: str
    message: str


@dataclass(frozen=True)
class RollbackOutcome:
    rolled_back: str
    restored: str | None
    restored_version: str | None
    reason: str  # "RolledBack" or "NoRestoreTarget"
    message: str


@dataclass
class ModelPlan:
    """The decision for every version of one model."""

    statuses: dict[str, RegisteredModelStatus]
    events: list[Event]
    requeue_at: datetime | None
    production: str | None
    rollbacks: list[RollbackOutcome] = field(default_factory=list)

    def changed(self, versions: Iterable[VersionView]) -> dict[str, RegisteredModelStatus]:
        """Only the statuses that differ from what the versions carry now."""
        return {v.name: self.statuses[v.name] for v in versions if self.statuses[v.name] != v.status}


# --------------------------------------------------------------------------- small helpers


def duration(text: str) -> timedelta:
    """A policy duration; one too large for a timedelta means "never" (never raises)."""
    try:
        return parse_duration(text)
    except (ValueError, OverflowError):
        return timedelta.max


def later(at: datetime, by: timedelta) -> datetime:
    """``at + by``, saturating at datetime.max instead of overflowing."""
    try:
        return at + by
    except OverflowError:
        return datetime.max.replace(tzinfo=at.tzinfo)


def policy_for(view: VersionView, defaults: Defaults) -> EffectivePolicy | None:
    if view.policy is not None:
        return view.policy
    return effective_policy(view.spec, defaults) if view.spec is not None else None


def enter_stage(status: RegisteredModelStatus, stage: Stage, reason: str, message: str, now: datetime) -> None:
    """Move ``status`` to ``stage`` and record it (mutates)."""
    status.stage = stage
    status.stage_history = [
        *status.stage_history,
        StageHistoryEntry(stage=stage, at=now, reason=reason, message=message),
    ][-MAX_STAGE_HISTORY:]
    if stage == "Production":
        status.production_since = now
        status.archived_at = None
        status.consecutive_breaches = 0
        # Serving must be (re)applied for this entry into Production.
        status.conditions = remove_condition(status.conditions, "ServingSynced")
    else:
        status.production_since = None
    if stage == "Sandbox":
        status.gates = Gates(sandbox_since=now, healthy_snapshots=0, pending=[])
    if stage == "Archived":
        status.archived_at = now


def label(view: VersionView) -> str:
    """``<modelName> <version>`` for messages; the object name when the spec is unreadable."""
    return f"{view.spec.model_name} {view.spec.version}" if view.spec else view.name
