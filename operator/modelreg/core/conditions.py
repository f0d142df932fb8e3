"""One helper for metav1.Condition lists (kstatus style), used everywhere.

Lists are never mutated: each function returns a new list. Setting a condition whose
status is unchanged keeps its lastTransitionTime; a changed status moves it to ``now``.
"""

from __future__ import annotations

from datetime import datetime

from modelreg.api.models import Condition, ConditionStatus

#: Condition types of a RegisteredModel, in the order they are written.
RM_CONDITION_TYPES = (
    "Ready",
    "Reconciling",
    "Stalled",
    "GatesPassed",
    "Degraded",
    "RollbackTriggered",
    "ServingSynced",
)


def get_condition(conditions: list[Condition], type_: str) -> Condition | None:
    return next((c for c in conditions if c.type == type_), None)


def remove_condition(conditions: list[Condition], type_: str) -> list[Condition]:
    """Return a new list without ``type_`` (the others keep their order)."""
    return [c for c in conditions if c.type != type_]


def is_true(conditions: list[Condition], type_: str) -> bool:
    cond = get_condition(conditions, type_)
    return cond is not None and cond.status == "True"


def set_condition(
    conditions: list[Condition],
    type_: str,
    status: ConditionStatus | bool,
    reason: str,
    message: str,
    now: datetime,
    generation: int | None = None,
) -> list[Condition]:
    """Return a new list with ``type_`` set; lastTransitionTime moves only when the status changes."""
    if isinstance(status, bool):
        status = "True" if status else "False"
    old = get_condition(conditions, type_)
    since = old.last_transition_time if old is not None and old.status == status else now
    new = Condition(
        type=type_,
        status=status,
        reason=reason,
        message=message,
        last_transition_time=since,
        observed_generation=generation,
    )
    out = [*remove_condition(conditions, type_), new]
    order = {t: i for i, t in enumerate(RM_CONDITION_TYPES)}
    return sorted(out, key=lambda c: (order.get(c.type, len(order)), c.type))
