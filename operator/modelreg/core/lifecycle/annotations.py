"""The two annotations a person sets on a version (docs/registeredmodel.md): retry and rollback.

Each acts once per new value: the value seen is recorded in ``status.retry`` /
``status.rollback``, so a redelivery or a restart never acts twice.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime

from modelreg.api.models import EffectivePolicy, Gates, RegisteredModelStatus, RetryRecord, RollbackRecord
from modelreg.core import canary as canary_rules
from modelreg.core.conditions import set_condition
from modelreg.core.lifecycle.rollback import rollback, rollback_events
from modelreg.core.lifecycle.stages import Event, RollbackOutcome, VersionView, enter_stage, label

RETRY_ANNOTATION = "modelreg.io/retry"
ROLLBACK_ANNOTATION = "modelreg.io/rollback"


def retry(view: VersionView, status: RegisteredModelStatus, is_new: bool, now: datetime) -> list[Event]:
    """Act on a new value of the retry annotation (mutates ``status``).

    An Archived, RolledBack or canary-failed version goes back to Development with its
    streaks, gates and rollback state cleared; approvals given before the retry stop counting.
    """
    retry_value = view.annotations.get(RETRY_ANNOTATION)
    if retry_value is None or (status.retry is not None and status.retry.observed_value == retry_value):
        return []
    approvals = list(view.spec.approvals or []) if view.spec else []
    acted = not is_new and (status.stage in ("Archived", "RolledBack") or canary_rules.failed(status))
    status.retry = RetryRecord(observed_value=retry_value, at=now, approvals_before=approvals)
    if not acted:
        return []
    enter_stage(status, "Development", "Retried", f"retry requested ({retry_value})", now)
    status.gates = Gates(sandbox_since=None, healthy_snapshots=0, pending=[])
    status.consecutive_breaches = 0
    status.last_conclusive = None
    status.rolled_back_to = None
    status.canary = None
    status.conditions = set_condition(status.conditions, "RollbackTriggered", False, "Retried", "retry requested", now)
    return [Event(view.name, "Normal", "Retried", f"{label(view)} moved back to Development")]


def manual_rollback(
    view: VersionView,
    statuses: dict[str, RegisteredModelStatus],
    versions: Mapping[str, str],
    policy: EffectivePolicy | None,
    is_new: bool,
    now: datetime,
) -> tuple[list[Event], list[RollbackOutcome]]:
    """Act on a new value of the rollback annotation (mutates ``statuses``).

    Only a Production version whose rollbackPolicy.mode is not Disabled rolls back;
    otherwise a RollbackIgnored Warning says why.
    """
    status = statuses[view.name]
    rb_value = view.annotations.get(ROLLBACK_ANNOTATION)
    if rb_value is None or (status.rollback is not None and status.rollback.observed_value == rb_value):
        return [], []
    status.rollback = RollbackRecord(observed_value=rb_value, at=now)
    if is_new:
        return [], []
    if status.stage != "Production":
        return [Event(view.name, "Warning", "RollbackIgnored", f"rollback requested but stage is {status.stage}")], []
    if policy is not None and policy.rollback_policy.mode == "Disabled":
        return [
            Event(view.name, "Warning", "RollbackIgnored", "rollback requested but rollbackPolicy.mode is Disabled")
        ], []
    outcome = rollback(statuses, versions, view.name, now, f"manual rollback ({rb_value})")
    return rollback_events(outcome), [outcome]
