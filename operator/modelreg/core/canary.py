"""The KServe canary's part in a version's lifecycle (docs/serving.md). Pure.

While a Sandbox version is the active canary of an InferenceService, real
users' traffic reaches it, so its snapshots count: consecutive Critical ones
(Healthy and Degraded reset the count, Inconclusive is skipped) reaching the
policy's ``consecutiveBreaches`` withdraw it in Automatic mode (the version
stays in Sandbox, Stalled with reason CanaryFailed, until ``modelreg retry``),
open an Incident with ``stage: Sandbox`` in IncidentOnly mode (the canary
stays), and do nothing in Disabled mode. The withdrawal itself is a serving
write (:mod:`modelreg.core.serving`), done by the same pass.
"""

from __future__ import annotations

from dataclasses import dataclass

from modelreg.api.models import EffectivePolicy, RegisteredModelStatus

STALLED_REASON = "CanaryFailed"


@dataclass(frozen=True)
class CanaryEffect:
    status: RegisteredModelStatus
    incident_due: bool  # IncidentOnly: the streak reached its limit on this snapshot


def failed(status: RegisteredModelStatus) -> bool:
    return status.canary is not None and status.canary.failed


def count_snapshot(status: RegisteredModelStatus, verdict: str, policy: EffectivePolicy) -> CanaryEffect:
    """Fold a snapshot of a Sandbox version into its canary's breach streak (returns a new status)."""
    canary = status.canary
    if canary is None or not canary.active or canary.failed:
        return CanaryEffect(status, False)
    streak = canary.consecutive_breaches
    if verdict == "Critical":
        streak += 1
    elif verdict in ("Healthy", "Degraded"):
        streak = 0
    rb = policy.rollback_policy
    due = verdict == "Critical" and streak >= max(1, rb.consecutive_breaches) and rb.mode != "Disabled"
    update: dict[str, object] = {"consecutive_breaches": streak}
    if due and rb.mode == "Automatic":
        update["failed"] = True
        update["message"] = f"withdrawn: {streak} consecutive breaching snapshot(s) of the canary"
    new = status.model_copy(update={"canary": canary.model_copy(update=update)})
    return CanaryEffect(new, due and rb.mode == "IncidentOnly")


def stalled_message(status: RegisteredModelStatus, retry_annotation: str) -> str:
    assert status.canary is not None
    return (
        f"canary on {status.canary.target} failed ({status.canary.consecutive_breaches} consecutive breaching "
        f"snapshot(s)) and was withdrawn; set annotation {retry_annotation} to a new value to retry"
    )
