"""One pass of the lifecycle over every version of a model (all sharing a ``modelName``).

:func:`reconcile` names the steps; each step's rules live in the module of its concern.
"""

from __future__ import annotations

from datetime import datetime

from modelreg.core.lifecycle.annotations import manual_rollback, retry
from modelreg.core.lifecycle.promotion import advance, single_production
from modelreg.core.lifecycle.rollback import complete_rollbacks, restore_target, rollback_events
from modelreg.core.lifecycle.stages import (
    Event,
    ModelPlan,
    RollbackOutcome,
    VersionView,
    enter_stage,
    label,
    policy_for,
)
from modelreg.core.lifecycle.status import finalize
from modelreg.core.policy import Defaults


def _duplicates(views: list[VersionView]) -> set[str]:
    """Names of versions whose (modelName, version) an older object already holds."""
    seen: dict[str, str] = {}
    dupes: set[str] = set()
    for view in sorted(views, key=lambda v: (v.created, v.name)):
        if view.spec is None:
            continue
        if view.spec.version in seen:
            dupes.add(view.name)
        else:
            seen[view.spec.version] = view.name
    return dupes


def reconcile(views: list[VersionView], defaults: Defaults, now: datetime) -> ModelPlan:
    """Decide every version's stage and status for one model."""
    # Shallow copies: the core only ever assigns fields (new lists, new models), never
    # mutates a nested value in place, so the callers' statuses stay untouched.
    statuses = {v.name: v.status.model_copy() for v in views}
    versions = {v.name: v.spec.version for v in views if v.spec is not None}
    policies = {v.name: policy_for(v, defaults) for v in views}
    events: list[Event] = []
    rollbacks: list[RollbackOutcome] = []
    dupes = _duplicates(views)
    ordered = sorted(views, key=lambda v: (v.created, v.name))

    # 1. New objects, retry and manual-rollback annotations.
    for view in ordered:
        status = statuses[view.name]
        is_new = status.stage is None
        if is_new:
            enter_stage(status, "Development", "Registered", "new version registered", now)
            events.append(Event(view.name, "Normal", "Registered", f"{label(view)} registered in Development"))
        events.extend(retry(view, status, is_new, now))
        rollback_evs, outcomes = manual_rollback(view, statuses, versions, policies[view.name], is_new, now)
        events.extend(rollback_evs)
        rollbacks.extend(outcomes)

    # 1a. At most one Production version: a state with two (a write from a killed
    #     operator landing after its successor read the model) keeps the one that
    #     entered Production last and archives the other.
    events.extend(single_production(ordered, statuses, now))

    # 1b. Complete a rollback whose second half (the restore) was never written.
    for outcome in complete_rollbacks(ordered, statuses, policies, now):
        rollbacks.append(outcome)
        events.extend(rollback_events(outcome))

    # 2. Advance or demote toward spec.targetStage, one gate-checked step at a time.
    wake: list[datetime] = []
    for view in ordered:
        policy = policies[view.name]
        if view.spec is None or policy is None or view.name in dupes:
            continue
        stepped, when = advance(view, view.spec, policy, ordered, statuses, now)
        events.extend(stepped)
        wake.extend(when)

    # 3. Gates, health and conditions for every version.
    production: str | None = None
    for view in ordered:
        status = statuses[view.name]
        if status.stage == "Production":
            production = view.name
        # A Production version with nothing to restore can never be rolled back (docs/registeredmodel.md).
        restorable = status.stage != "Production" or restore_target(statuses, exclude=view.name) is not None
        recheck = finalize(view, status, policies[view.name], view.name in dupes, now, restorable=restorable)
        if recheck is not None:
            wake.append(recheck)
    future = [w for w in wake if w > now]
    return ModelPlan(
        statuses=statuses,
        events=events,
        requeue_at=min(future) if future else None,
        production=production,
        rollbacks=rollbacks,
    )
