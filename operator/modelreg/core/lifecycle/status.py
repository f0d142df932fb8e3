"""A version's status beyond its stage: gates pending, health, effectivePolicy and the
kstatus conditions (Ready, Reconciling, Stalled, GatesPassed, Degraded, RollbackTriggered)."""

from __future__ import annotations

from datetime import datetime

from modelreg.api.models import EffectivePolicy, Gates, RegisteredModelStatus
from modelreg.core import canary as canary_rules
from modelreg.core.conditions import get_condition, set_condition
from modelreg.core.health import classify_health
from modelreg.core.lifecycle.annotations import RETRY_ANNOTATION
from modelreg.core.lifecycle.promotion import GATE_APPROVAL, pending_gates
from modelreg.core.lifecycle.stages import ACTIVE_STAGES, RANK, VersionView, duration


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

    advancing = stage in ACTIVE_STAGES and RANK[target] > RANK[stage]
    stalled_reason, stalled_msg = _stalled(view, status, policy, stage, pending, health.health, duplicate, restorable)
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
    ready, reason, msg = _ready(stage, target, health.health, health.reason, duplicate, stalled_msg)
    conds = set_condition(conds, "Ready", ready, reason, msg, now, gen)
    if get_condition(conds, "RollbackTriggered") is None:
        conds = set_condition(conds, "RollbackTriggered", False, "NoBreach", "", now, gen)
    status.conditions = conds
    return health.recheck_at


def _stalled(
    view: VersionView,
    status: RegisteredModelStatus,
    policy: EffectivePolicy,
    stage: str,
    pending: list[str],
    health: str,
    duplicate: bool,
    restorable: bool,
) -> tuple[str, str]:
    """Why the version waits for a person (the Stalled reason and message), or ``("", "")``."""
    advancing = stage in ACTIVE_STAGES and RANK[policy.target_stage] > RANK[stage]
    if duplicate and view.spec is not None:
        return (
            "DuplicateVersion",
            f"another RegisteredModel already registers {view.spec.model_name} {view.spec.version}",
        )
    if stage == "RolledBack":
        return (
            "RolledBack",
            f"rolled back to {status.rolled_back_to}; set annotation {RETRY_ANNOTATION} to a new value to retry",
        )
    if stage == "Sandbox" and canary_rules.failed(status):
        return canary_rules.STALLED_REASON, canary_rules.stalled_message(status, RETRY_ANNOTATION)
    if advancing and GATE_APPROVAL in pending:
        return "AwaitingApproval", "an approval in spec.approvals is required for Production"
    if stage == "Production" and health == "Critical":
        return critical_stall(view.name, status, policy, restorable)
    return "", ""


def _ready(
    stage: str, target: str, health: str, health_reason: str, duplicate: bool, stalled_msg: str
) -> tuple[bool, str, str]:
    """The Ready condition's status, reason and message."""
    if duplicate:
        return False, "DuplicateVersion", stalled_msg
    if health == "Critical":
        return False, "Critical", health_reason
    if stage == "Archived":
        return True, "Superseded", "archived: superseded by a newer Production version"
    if stage == "RolledBack":
        return False, "RolledBack", stalled_msg
    if stage == target:
        return True, "AtTarget", f"at target stage {target}"
    return False, "Progressing", f"{stage} → {target}"


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
