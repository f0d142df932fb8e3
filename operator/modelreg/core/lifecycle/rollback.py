"""Rollback (docs/registeredmodel.md): which archived sibling is restored, the two-sided
stage change, finishing a rollback cut off between its two status writes, and its Events."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime

from modelreg.api.models import EffectivePolicy, RegisteredModelStatus
from modelreg.core.lifecycle.stages import Event, RollbackOutcome, VersionView, enter_stage


def _history_has_rollback_since_retry(status: RegisteredModelStatus) -> bool:
    for entry in reversed(status.stage_history):
        if entry.reason == "Retried":
            return False
        if entry.stage == "RolledBack":
            return True
    return False


def restore_target(statuses: Mapping[str, RegisteredModelStatus], exclude: str) -> str | None:
    """The most recently archived sibling not rolled back since its last retry (docs/registeredmodel.md)."""
    candidates = [
        ((s.archived_at.timestamp() if s.archived_at else 0.0), name)
        for name, s in statuses.items()
        if name != exclude and s.stage == "Archived" and not _history_has_rollback_since_retry(s)
    ]
    return max(candidates)[1] if candidates else None


def rollback(
    statuses: dict[str, RegisteredModelStatus],
    versions: Mapping[str, str],
    name: str,
    now: datetime,
    why: str,
) -> RollbackOutcome:
    """Roll ``name`` (in Production) back; mutates ``statuses``.

    ``versions`` maps object names to their ``spec.version``. With no restore
    target the version stays in Production and the outcome says NoRestoreTarget.
    """
    target = restore_target(statuses, exclude=name)
    if target is None:
        return RollbackOutcome(
            rolled_back=name,
            restored=None,
            restored_version=None,
            reason="NoRestoreTarget",
            message=f"no archived version of this model to restore; {versions.get(name, name)} stays in Production",
        )
    restored_version = versions.get(target, target)
    status = statuses[name]
    enter_stage(status, "RolledBack", "RolledBack", f"{why}; restored {restored_version}", now)
    status.rolled_back_to = restored_version
    enter_stage(statuses[target], "Production", "Restored", f"restored by rollback of {versions.get(name, name)}", now)
    return RollbackOutcome(
        rolled_back=name,
        restored=target,
        restored_version=restored_version,
        reason="RolledBack",
        message=f"{versions.get(name, name)} rolled back to {restored_version}",
    )


def complete_rollbacks(
    ordered: list[VersionView],
    statuses: dict[str, RegisteredModelStatus],
    policies: Mapping[str, EffectivePolicy | None],
    now: datetime,
) -> list[RollbackOutcome]:
    """Restore the target of a rollback that was cut off between its two status writes.

    The operator writes the RolledBack version first; if it is killed (or loses a
    conflict) before the restored sibling is written, the model is left with no
    Production version. That state is recognised here and finished: the newest
    RolledBack version whose last history entry is the rollback, a sibling of the
    version it names still Archived since before then and still targeting
    Production, and no version in Production.
    """
    if any(s.stage == "Production" for s in statuses.values()):
        return []
    by_version = {v.spec.version: v.name for v in ordered if v.spec is not None}
    rolled = [
        (statuses[v.name].stage_history[-1].at, v.name)
        for v in ordered
        if statuses[v.name].stage == "RolledBack"
        and statuses[v.name].stage_history
        and statuses[v.name].stage_history[-1].stage == "RolledBack"
    ]
    if not rolled:
        return []
    at, name = max(rolled)
    target = by_version.get(statuses[name].rolled_back_to or "")
    if target is None:
        return []
    sibling = statuses[target]
    policy = policies.get(target)
    if (
        sibling.stage != "Archived"
        or sibling.archived_at is None
        or sibling.archived_at > at
        or policy is None
        or policy.target_stage != "Production"
    ):
        return []
    enter_stage(sibling, "Production", "Restored", f"restored by rollback of {name} (completed)", now)
    version = statuses[name].rolled_back_to
    return [RollbackOutcome(name, target, version, "RolledBack", f"{name} rolled back to {version}")]


def rollback_events(outcome: RollbackOutcome) -> list[Event]:
    if outcome.restored is None:
        return [Event(outcome.rolled_back, "Warning", "NoRestoreTarget", outcome.message)]
    return [
        Event(outcome.rolled_back, "Warning", "RolledBack", outcome.message),
        Event(outcome.restored, "Normal", "Restored", f"returned to Production: {outcome.message}"),
    ]


def fold_rollback_events(events: list[Event]) -> list[Event]:
    """One Event per version for a rollback triggered and done in the same pass.

    ``RollbackTriggered`` (which names the Incident) and ``RolledBack`` on the
    same version become one ``RolledBack`` Warning carrying both messages;
    everything else is kept, in order.
    """
    rolled = {e.object_name for e in events if e.reason == "RolledBack"}
    triggers = {e.object_name: e for e in events if e.reason == "RollbackTriggered" and e.object_name in rolled}
    out: list[Event] = []
    for e in events:
        if e.reason == "RollbackTriggered" and e.object_name in triggers:
            continue
        if e.reason == "RolledBack" and e.object_name in triggers:
            e = Event(e.object_name, e.type, e.reason, f"{triggers[e.object_name].message}; rolled back: {e.message}")
        out.append(e)
    return out
