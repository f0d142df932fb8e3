"""Promotion: the gates of the next stage, one gate-checked step toward ``targetStage``,
archive-on-promotion, and at most one version in Production (docs/registeredmodel.md)."""

from __future__ import annotations

from datetime import UTC, datetime

from modelreg.api.models import Approval, EffectivePolicy, Gates, RegisteredModelSpec, RegisteredModelStatus
from modelreg.core import canary as canary_rules
from modelreg.core.lifecycle.stages import ACTIVE_STAGES, RANK, Event, VersionView, duration, enter_stage, label, later

GATE_DIGEST = "artifact.digest"
GATE_EVALUATION = "requiredEvaluation"
GATE_SOAK = "minSandboxDuration"
GATE_HEALTHY = "minHealthySnapshots"
GATE_APPROVAL = "approval"


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


def advance(
    view: VersionView,
    spec: RegisteredModelSpec,
    policy: EffectivePolicy,
    ordered: list[VersionView],
    statuses: dict[str, RegisteredModelStatus],
    now: datetime,
) -> tuple[list[Event], list[datetime]]:
    """Advance or demote ``view`` toward ``targetStage``, one gate-checked step at a time (mutates).

    Returns the Events and the times a time gate will pass. Entering Production archives
    the version that was there.
    """
    events: list[Event] = []
    wake: list[datetime] = []
    status = statuses[view.name]
    while status.stage in ACTIVE_STAGES:
        current = status.stage
        target = policy.target_stage
        if RANK[target] < RANK[current]:
            was_production = current == "Production"
            enter_stage(status, target, "Demoted", f"targetStage lowered to {target}", now)
            events.append(Event(view.name, "Normal", "Demoted", f"{label(view)} demoted to {target}"))
            if was_production and spec.serving is not None:
                events.append(
                    Event(
                        view.name,
                        "Warning",
                        "ServingLeftAsIs",
                        f"{spec.model_name} has no Production version now; "
                        f"{spec.serving.target_ref.kind}/{spec.serving.target_ref.name} left as it is",
                    )
                )
            break
        if RANK[target] == RANK[current] or canary_rules.failed(status):
            break
        pending, when = pending_gates(spec, status, policy, now)
        if when is not None:
            wake.append(when)
        if pending:
            break
        if current == "Development":
            enter_stage(status, "Sandbox", "Promoted", "gates passed: artifact.digest, requiredEvaluation", now)
            events.append(Event(view.name, "Normal", "Promoted", f"{label(view)} promoted to Sandbox"))
        else:
            for other in ordered:
                if other.name != view.name and statuses[other.name].stage == "Production":
                    enter_stage(statuses[other.name], "Archived", "Superseded", f"superseded by {label(view)}", now)
                    events.append(
                        Event(
                            other.name,
                            "Normal",
                            "Archived",
                            f"{label(other)} archived: superseded by {label(view)}",
                        )
                    )
            enter_stage(status, "Production", "Promoted", "gates passed: soak, healthy snapshots, approval", now)
            events.append(Event(view.name, "Normal", "Promoted", f"{label(view)} promoted to Production"))
    return events, wake


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
        message = f"superseded by {label(keep)}, which entered Production later"
        enter_stage(statuses[view.name], "Archived", "Superseded", message, now)
        events.append(Event(view.name, "Normal", "Archived", f"{label(view)} archived: {message}"))
    return events
