"""Folding one evaluated snapshot into a version's status: the breach streak, Sandbox gates,
the canary's streak, RollbackTriggered, and whether a rollback is now due."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from modelreg.api.models import (
    MAX_INCIDENT_SNAPSHOTS,
    ConclusiveSnapshot,
    EffectivePolicy,
    Gates,
    LastSnapshot,
    RegisteredModelStatus,
    Stage,
)
from modelreg.core import canary as canary_rules
from modelreg.core.conditions import is_true, set_condition
from modelreg.core.evaluation import Evaluation, next_consecutive_breaches, rollback_due
from modelreg.core.lifecycle.stages import VersionView
from modelreg.core.lifecycle.status import finalize


@dataclass(frozen=True)
class SnapshotEffect:
    status: RegisteredModelStatus
    counted: bool  # the snapshot changed the version's streak/gates (False: already counted)
    rollback_due: bool  # this snapshot makes a rollback due (Production, streak reached)
    stage: Stage
    canary_incident: bool = False  # a failing KServe canary in IncidentOnly mode opens an Incident


def apply_snapshot(
    view: VersionView,
    status: RegisteredModelStatus,
    policy: EffectivePolicy,
    evaluation: Evaluation,
    snapshot_name: str,
    snapshot_at: datetime | None,
    now: datetime,
) -> SnapshotEffect:
    """Fold one evaluated snapshot into a version's status (returns a new status)."""
    new = status.model_copy()  # shallow: fields are reassigned, never mutated in place
    stage: Stage = new.stage or "Development"
    if snapshot_name in new.counted_snapshots:
        # Already folded in (a redelivery after a kill): shown on the snapshot, never counted twice.
        return SnapshotEffect(status=new, counted=False, rollback_due=False, stage=stage)
    new.counted_snapshots = [*new.counted_snapshots, snapshot_name][-MAX_INCIDENT_SNAPSHOTS:]
    new.last_snapshot = LastSnapshot(
        name=snapshot_name,
        at=snapshot_at,
        verdict=evaluation.verdict,
        metrics=evaluation.metrics,
        breaches=evaluation.breaches,
        drift=evaluation.drift.value if evaluation.drift is not None else None,
    )
    if evaluation.verdict in ("Healthy", "Degraded", "Critical"):
        new.last_conclusive = ConclusiveSnapshot(
            name=snapshot_name,
            at=snapshot_at,
            verdict=evaluation.verdict,
            metrics=evaluation.metrics,
            drift=evaluation.drift.value if evaluation.drift is not None else None,
        )
    due = canary_incident = False
    if stage == "Sandbox":
        gates = new.gates or Gates(sandbox_since=now)
        if evaluation.verdict == "Healthy":
            gates = gates.model_copy(update={"healthy_snapshots": gates.healthy_snapshots + 1})
        elif evaluation.verdict == "Critical":
            gates = gates.model_copy(update={"sandbox_since": now, "healthy_snapshots": 0})
        new.gates = gates
        # A canary's snapshots are real users' traffic: the one exception to "Sandbox never rolls back".
        canary_effect = canary_rules.count_snapshot(new, evaluation.verdict, policy)
        new, canary_incident = canary_effect.status, canary_effect.incident_due
    elif stage == "Production":
        new.consecutive_breaches = next_consecutive_breaches(new.consecutive_breaches, evaluation.verdict, stage)
        # Due on every breaching snapshot once the streak is long enough; the
        # incident decision folds repeats into the open episode.
        due = evaluation.verdict == "Critical" and rollback_due(new.consecutive_breaches, policy.rollback_policy)
        if new.consecutive_breaches == 0 and is_true(new.conditions, "RollbackTriggered"):
            new.conditions = set_condition(
                new.conditions,
                "RollbackTriggered",
                False,
                "Recovered",
                f"{snapshot_name} did not breach",
                now,
                view.generation,
            )
        if due:
            new.conditions = set_condition(
                new.conditions,
                "RollbackTriggered",
                True,
                "ConsecutiveBreaches",
                f"{new.consecutive_breaches} consecutive breaching snapshot(s), latest {snapshot_name}",
                now,
                view.generation,
            )
    finalize(view, new, policy, False, now)
    return SnapshotEffect(status=new, counted=True, rollback_due=due, stage=stage, canary_incident=canary_incident)
