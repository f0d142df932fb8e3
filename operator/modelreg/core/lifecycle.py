"""The lifecycle state machine of one model (all versions sharing a ``modelName``).

Pure: given every version of a model, the operator-wide defaults and the clock,
:func:`reconcile` decides each version's next stage and its whole status, the
Events to post, and when to look again (time-only gates). :func:`rollback`
decides a rollback (docs/registeredmodel.md): which version becomes RolledBack and which
archived sibling returns to Production. :func:`apply_snapshot` folds one
evaluated snapshot into a version's status and says whether a rollback is due.

Nothing here reads the clock, talks to Kubernetes or raises on bad input.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Literal

from modelreg.api.models import (
    MAX_INCIDENT_SNAPSHOTS,
    MAX_STAGE_HISTORY,
    Approval,
    ConclusiveSnapshot,
    EffectivePolicy,
    Gates,
    LastSnapshot,
    RegisteredModelSpec,
    RegisteredModelStatus,
    RetryRecord,
    RollbackRecord,
    Stage,
    StageHistoryEntry,
)
from modelreg.core import canary as canary_rules
from modelreg.core.conditions import is_true, set_condition
from modelreg.core.durations import parse_duration
from modelreg.core.evaluation import Evaluation, next_consecutive_breaches, rollback_due
from modelreg.core.health import classify_health
from modelreg.core.policy import Defaults, effective_policy

RETRY_ANNOTATION = "modelreg.io/retry"
ROLLBACK_ANNOTATION = "modelreg.io/rollback"

ACTIVE_STAGES: tuple[Stage, ...] = ("Development", "Sandbox", "Production")
RANK: dict[str, int] = {"Development": 0, "Sandbox": 1, "Production": 2}

GATE_DIGEST = "artifact.digest"
GATE_EVALUATION = "requiredEvaluation"
GATE_SOAK = "minSandboxDuration"
GATE_HEALTHY = "minHealthySnapshots"
GATE_APPROVAL = "approval"

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
        status.conditions = [c for c in status.conditions if c.type != "ServingSynced"]
    else:
        status.production_since = None
    if stage == "Sandbox":
        status.gates = Gates(sandbox_since=now, healthy_snapshots=0, pending=[])
    if stage == "Archived":
        status.archived_at = now


def counted_approvals(spec: RegisteredModelSpec, status: RegisteredModelStatus) -> list[Approval]:
    """Approvals that count: those given after the last retry (docs/registeredmodel.md)."""
    before = status.retry.approvals_before if status.retry else []
    return [a for a in (spec.approvals or []) if a not in before]


def evaluation_gate(spec: RegisteredModelSpec, policy: EffectivePolicy) -> list[str]:
    """Unmet ``requiredEvaluation`` entries, as ``requiredEvaluation:<metric>``."""
    results = {e.metric: e.value for e in spec.evaluation or []}
    unmet = []
    for req in policy.promotion_policy.required_evaluation:
        value = results.get(req.metric)
        if value is None or (req.min is not None and value < req.min) or (req.max is not None and value > req.max):
            unmet.append(f"{GATE_EVALUATION}:{req.metric}")
    return unmet


def pending_gates(
    spec: RegisteredModelSpec, status: RegisteredModelStatus, policy: EffectivePolicy, now: datetime
) -> tuple[list[str], datetime | None]:
    """Gates of the next stage that are not met yet, and when a time gate will pass."""
    if status.stage == "Development":
        pending = [] if spec.artifact.digest else [GATE_DIGEST]
        return pending + evaluation_gate(spec, policy), None
    if status.stage == "Sandbox":
        promo = policy.promotion_policy
        gates = status.gates or Gates(sandbox_since=now)
        since = gates.sandbox_since or now
        due = later(since, duration(promo.min_sandbox_duration))
        pending = []
        wake: datetime | None = None
        if now < due:
            pending.append(GATE_SOAK)
            wake = due
        if gates.healthy_snapshots < promo.min_healthy_snapshots:
            pending.append(GATE_HEALTHY)
        if promo.require_approval and not counted_approvals(spec, status):
            pending.append(GATE_APPROVAL)
        return pending, wake
    return [], None


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


# --------------------------------------------------------------------------- rollback


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


# --------------------------------------------------------------------------- reconcile


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
            events.append(Event(view.name, "Normal", "Registered", f"{_label(view)} registered in Development"))
        retry_value = view.annotations.get(RETRY_ANNOTATION)
        if retry_value is not None and (status.retry is None or status.retry.observed_value != retry_value):
            approvals = list(view.spec.approvals or []) if view.spec else []
            acted = not is_new and (status.stage in ("Archived", "RolledBack") or canary_rules.failed(status))
            status.retry = RetryRecord(observed_value=retry_value, at=now, approvals_before=approvals)
            if acted:
                enter_stage(status, "Development", "Retried", f"retry requested ({retry_value})", now)
                status.gates = Gates(sandbox_since=None, healthy_snapshots=0, pending=[])
                status.consecutive_breaches = 0
                status.last_conclusive = None
                status.rolled_back_to = None
                status.canary = None
                status.conditions = set_condition(
                    status.conditions, "RollbackTriggered", False, "Retried", "retry requested", now
                )
                events.append(Event(view.name, "Normal", "Retried", f"{_label(view)} moved back to Development"))
        rb_value = view.annotations.get(ROLLBACK_ANNOTATION)
        if rb_value is not None and (status.rollback is None or status.rollback.observed_value != rb_value):
            status.rollback = RollbackRecord(observed_value=rb_value, at=now)
            policy = policies[view.name]
            if is_new:
                continue
            if status.stage != "Production":
                events.append(
                    Event(
                        view.name,
                        "Warning",
                        "RollbackIgnored",
                        f"rollback requested but stage is {status.stage}",
                    )
                )
            elif policy is not None and policy.rollback_policy.mode == "Disabled":
                events.append(
                    Event(
                        view.name,
                        "Warning",
                        "RollbackIgnored",
                        "rollback requested but rollbackPolicy.mode is Disabled",
                    )
                )
            else:
                outcome = rollback(statuses, versions, view.name, now, f"manual rollback ({rb_value})")
                rollbacks.append(outcome)
                events.extend(rollback_events(outcome))

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
        status = statuses[view.name]
        policy = policies[view.name]
        if view.spec is None or policy is None or view.name in dupes:
            continue
        while status.stage in ACTIVE_STAGES:
            current = status.stage
            target = policy.target_stage
            if RANK[target] < RANK[current]:
                was_production = current == "Production"
                enter_stage(status, target, "Demoted", f"targetStage lowered to {target}", now)
                events.append(Event(view.name, "Normal", "Demoted", f"{_label(view)} demoted to {target}"))
                if was_production and view.spec.serving is not None:
                    events.append(
                        Event(
                            view.name,
                            "Warning",
                            "ServingLeftAsIs",
                            f"{view.spec.model_name} has no Production version now; "
                            f"{view.spec.serving.target_ref.kind}/{view.spec.serving.target_ref.name} left as it is",
                        )
                    )
                break
            if RANK[target] == RANK[current] or canary_rules.failed(status):
                break
            pending, when = pending_gates(view.spec, status, policy, now)
            if when is not None:
                wake.append(when)
            if pending:
                break
            if current == "Development":
                enter_stage(status, "Sandbox", "Promoted", "gates passed: artifact.digest, requiredEvaluation", now)
                events.append(Event(view.name, "Normal", "Promoted", f"{_label(view)} promoted to Sandbox"))
            else:
                for other in ordered:
                    if other.name != view.name and statuses[other.name].stage == "Production":
                        enter_stage(
                            statuses[other.name],
                            "Archived",
                            "Superseded",
                            f"superseded by {_label(view)}",
                            now,
                        )
                        events.append(
                            Event(
                                other.name,
                                "Normal",
                                "Archived",
                                f"{_label(other)} archived: superseded by {_label(view)}",
                            )
                        )
                enter_stage(status, "Production", "Promoted", "gates passed: soak, healthy snapshots, approval", now)
                events.append(Event(view.name, "Normal", "Promoted", f"{_label(view)} promoted to Production"))

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


def _entered_production(view: VersionView, status: RegisteredModelStatus) -> tuple[datetime, datetime, str]:
    entered = status.production_since
    if entered is None:
        entered = next((h.at for h in reversed(status.stage_history) if h.stage == "Production"), None)
    return (entered or datetime.fromtimestamp(0, UTC), view.created, view.name)


def single_production(
    ordered: list[VersionView], statuses: dict[str, RegisteredModelStatus], now: datetime
) -> list[Event]:
    """Archive all but the latest-promoted of several versions in Production (mutates)."""
    prods = [v for v in ordered if statuses[v.name].stage == "Production"]
    if len(prods) <= 1:
        return []
    keep = max(prods, key=lambda v: _entered_production(v, statuses[v.name]))
    events = []
    for view in prods:
        if view.name == keep.name:
            continue
        message = f"superseded by {_label(keep)}, which entered Production later"
        enter_stage(statuses[view.name], "Archived", "Superseded", message, now)
        events.append(Event(view.name, "Normal", "Archived", f"{_label(view)} archived: {message}"))
    return events


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


def _label(view: VersionView) -> str:
    return f"{view.spec.model_name} {view.spec.version}" if view.spec else view.name


def finalize(
    view: VersionView,
    status: RegisteredModelStatus,
    policy: EffectivePolicy | None,
    duplicate: bool,
    now: datetime,
    *,
    restorable: bool = True,
) -> datetime | None:
    """Fill gates, health, effectivePolicy and conditions (mutates). Returns a recheck time.

    ``restorable`` says whether a rollback of this version would find a version to
    restore (see :func:`critical_stall`); :func:`reconcile` knows the siblings.
    """
    gen = view.generation
    status.observed_generation = gen
    conds = status.conditions
    if view.spec is None or policy is None:
        msg = view.spec_error or "spec could not be read"
        conds = set_condition(conds, "Stalled", True, "InvalidSpec", msg, now, gen)
        conds = set_condition(conds, "Ready", False, "InvalidSpec", msg, now, gen)
        conds = set_condition(conds, "Reconciling", False, "InvalidSpec", msg, now, gen)
        status.conditions = conds
        status.health = status.health or "Unknown"
        return None
    status.effective_policy = policy
    stage = status.stage or "Development"
    target = policy.target_stage

    # Gates of the next step toward the target.
    pending: list[str] = []
    if stage in ACTIVE_STAGES and RANK[target] > RANK[stage]:
        pending, _ = pending_gates(view.spec, status, policy, now)
    gates = status.gates or Gates()
    status.gates = Gates(sandbox_since=gates.sandbox_since, healthy_snapshots=gates.healthy_snapshots, pending=pending)

    # Health.
    last = status.last_conclusive
    health = classify_health(
        stage=stage,
        last_conclusive_verdict=last.verdict if last else None,
        # Only conclusive snapshots keep a version fresh (docs/evaluation.md: Inconclusive ones go stale).
        last_snapshot_at=last.at if last else None,
        production_since=status.production_since,
        stale_after=duration(policy.rollback_policy.stale_after),
        now=now,
    )
    status.health = health.health

    at_target = stage == target or stage == "Archived"
    advancing = stage in ACTIVE_STAGES and RANK[target] > RANK[stage]
    stalled_reason = ""
    stalled_msg = ""
    if duplicate:
        stalled_reason = "DuplicateVersion"
        stalled_msg = f"another RegisteredModel already registers {view.spec.model_name} {view.spec.version}"
    elif stage == "RolledBack":
        stalled_reason = "RolledBack"
        stalled_msg = (
            f"rolled back to {status.rolled_back_to}; set annotation {RETRY_ANNOTATION} to a new value to retry"
        )
    elif stage == "Sandbox" and canary_rules.failed(status):
        stalled_reason = canary_rules.STALLED_REASON
        stalled_msg = canary_rules.stalled_message(status, RETRY_ANNOTATION)
    elif advancing and GATE_APPROVAL in pending:
        stalled_reason = "AwaitingApproval"
        stalled_msg = "an approval in spec.approvals is required for Production"
    elif stage == "Production" and health.health == "Critical":
        stalled_reason, stalled_msg = critical_stall(view.name, status, policy, restorable)

    if stalled_reason:
        conds = set_condition(conds, "Stalled", True, stalled_reason, stalled_msg, now, gen)
    else:
        conds = set_condition(conds, "Stalled", False, "NotStalled", "", now, gen)
    reconciling = advancing and not stalled_reason
    conds = set_condition(
        conds,
        "Reconciling",
        reconciling,
        "Progressing" if reconciling else "Idle",
        f"advancing from {stage} toward {target}" if reconciling else "",
        now,
        gen,
    )
    if not advancing:
        conds = set_condition(conds, "GatesPassed", True, "AtTarget", f"at {stage}", now, gen)
    elif pending:
        conds = set_condition(conds, "GatesPassed", False, "GatesPending", "pending: " + ", ".join(pending), now, gen)
    else:
        conds = set_condition(conds, "GatesPassed", True, "GatesPassed", "all gates passed", now, gen)
    degraded = health.health in ("Degraded", "Critical")
    conds = set_condition(
        conds, "Degraded", degraded, health.health if degraded else "Healthy", health.reason, now, gen
    )
    if duplicate:
        ready, reason, msg = False, "DuplicateVersion", stalled_msg
    elif health.health == "Critical":
        ready, reason, msg = False, "Critical", health.reason
    elif stage == "Archived":
        ready, reason, msg = True, "Superseded", "archived: superseded by a newer Production version"
    elif stage == "RolledBack":
        ready, reason, msg = False, "RolledBack", stalled_msg
    elif at_target:
        ready, reason, msg = True, "AtTarget", f"at target stage {target}"
    else:
        ready, reason, msg = False, "Progressing", f"{stage} → {target}"
    conds = set_condition(conds, "Ready", ready, reason, msg, now, gen)
    if not any(c.type == "RollbackTriggered" for c in conds):
        conds = set_condition(conds, "RollbackTriggered", False, "NoBreach", "", now, gen)
    status.conditions = conds
    return health.recheck_at


def critical_stall(
    name: str, status: RegisteredModelStatus, policy: EffectivePolicy, restorable: bool
) -> tuple[str, str]:
    """Why a Critical Production version waits for a person, or ``("", "")`` when a rollback is coming.

    docs/registeredmodel.md: IncidentOnly and Disabled modes never roll back by themselves, and a
    rollback with no archived version to restore ends in NoRestoreTarget. Either way
    only a person can unblock the version, so it is Stalled (kstatus: Failed) and the
    message names the open Incident.
    """
    incident = f"Incident {status.incident.name} is open" if status.incident else "no Incident is open"
    mode = policy.rollback_policy.mode
    if mode in ("IncidentOnly", "Disabled"):
        undo = f"`modelreg rollback {name}`" if mode == "IncidentOnly" else "a fix or a new version"
        return (
            "CriticalNoAutoRollback" if mode == "IncidentOnly" else "CriticalRollbackDisabled",
            f"Critical in Production and rollbackPolicy.mode is {mode}: no automatic rollback; "
            f"{incident}; waiting for a person ({undo}, or resolve the Incident)",
        )
    if not restorable:
        return (
            "NoRestoreTarget",
            f"Critical in Production with no archived version to roll back to; {incident}; "
            "waiting for a person (a fixed version, or resolve the Incident)",
        )
    return "", ""


# --------------------------------------------------------------------------- snapshots


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


__all__ = [
    "RETRY_ANNOTATION",
    "ROLLBACK_ANNOTATION",
    "Event",
    "ModelPlan",
    "RollbackOutcome",
    "SnapshotEffect",
    "VersionView",
    "apply_snapshot",
    "reconcile",
    "restore_target",
    "rollback",
]
