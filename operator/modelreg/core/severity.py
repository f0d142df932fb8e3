"""Incident severity and summary text (docs/incidents.md).

Severity: **high** when two or more criteria breach or any breached value is
at least 2× its ``max`` (or at most half its ``min``); **medium** for one
breached criterion short of that; **low** for warnings only.
"""

from __future__ import annotations

import math

from modelreg.api.models import Breach, EffectiveRollbackPolicy, Severity

__all__ = ["breach_text", "is_min_breach", "severity", "summary"]


def is_min_breach(breach: Breach) -> bool:
    """Whether a breach is of a ``min`` bound.

    A ``max`` breach always has value > threshold and a ``min`` breach value <
    threshold, so the side of the value decides it exactly.
    """
    return breach.value < breach.threshold


def _extreme(breach: Breach) -> bool:
    """At least 2× its max, or at most half its min."""
    value, threshold = breach.value, breach.threshold
    if math.isnan(value) or math.isnan(threshold):
        return False
    if is_min_breach(breach):
        return value <= threshold / 2
    return value >= 2 * threshold


def severity(
    breaches: list[Breach], warnings: list[Breach], policy: EffectiveRollbackPolicy | None = None
) -> Severity | None:
    """The severity of an evaluation's breaches and warnings (None when there are neither).

    ``policy`` is accepted for the controller's convenience; the min/max side
    of a breach follows from its value and threshold alone. Whether a
    low-severity Incident is opened (``incidentOnWarning``) is the caller's
    decision.
    """
    if breaches:
        criteria = {b.criterion for b in breaches}
        if len(criteria) >= 2 or any(_extreme(b) for b in breaches):
            return "high"
        return "medium"
    if warnings:
        return "low"
    return None


def breach_text(breach: Breach, *, warning: bool = False) -> str:
    """``errorRate 0.0668 > 0.05`` (``<`` for a min bound; ``≥`` for a max warning)."""
    if warning:
        op = "<" if breach.value < breach.threshold else "≥"
    else:
        op = "<" if is_min_breach(breach) else ">"
    return f"{breach.criterion} {breach.value:.4g} {op} {breach.threshold:.4g}"


def summary(model_name: str, version: str, breaches: list[Breach], warnings: list[Breach]) -> str:
    """One line for an Incident, e.g.
    ``fraud-detector 3.1.0: errorRate 0.0668 > 0.05, oodRate 0.2167 > 0.2``.

    With breaches only they are listed; with warnings only:
    ``fraud-detector 3.1.0: warning: errorRate 0.045 ≥ 0.04``.
    """
    head = f"{model_name} {version}"
    if breaches:
        return f"{head}: " + ", ".join(breach_text(b) for b in breaches)
    if warnings:
        return f"{head}: warning: " + ", ".join(breach_text(w, warning=True) for w in warnings)
    return f"{head}: no breaches or warnings"
