"""What the per-version value gauges show (docs/observability.md), pure: values and thresholds by metric.

``values`` are the last conclusive snapshot's metrics, keyed ``errorRate``, ``oodRate``,
``drift``, ``latencyP99Ms`` and custom metrics by name. ``thresholds`` are the bounds of
the effective rollback policy, with the warn line each bound is judged against
(:mod:`modelreg.core.evaluation`): an explicit ``warn``, else ``warnRatio × max`` for a
``max`` bound (none for a ``min`` bound without an explicit one). The dashboard draws
the same lines.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from modelreg.api.models import EffectivePolicy, RegisteredModelStatus
from modelreg.core.evaluation import _custom_bounds, _drift_metric
from modelreg.core.policy import DRIFT_DEFAULT_MAX

DRIFT_MEASURES = frozenset(DRIFT_DEFAULT_MAX)


@dataclass(frozen=True)
class Threshold:
    metric: str  # errorRate, oodRate, drift, latencyP99Ms or a custom metric's name
    bound: str  # "max", "min" or "warn"
    value: float


def values(status: RegisteredModelStatus) -> dict[str, float]:
    """The last conclusive snapshot's values ({} before the first one)."""
    last = status.last_conclusive
    if last is None:
        return {}
    out: dict[str, float] = {}
    drift = last.drift
    for key, value in last.metrics.items():
        if not isinstance(value, int | float) or not math.isfinite(value):
            continue
        if key in DRIFT_MEASURES:
            drift = value if drift is None else drift
            continue
        out[key] = float(value)  # a custom metric named like a built-in one is "custom.<name>"
    if drift is not None and math.isfinite(drift):
        out["drift"] = float(drift)
    return out


def thresholds(policy: EffectivePolicy | None) -> list[Threshold]:
    """Every bound of the policy and its warn line, in criterion order."""
    if policy is None:
        return []
    rp = policy.rollback_policy
    crit = rp.criteria
    out: list[Threshold] = []

    def add(metric: str, bound: str, threshold: float, warn: float | None) -> None:
        if not math.isfinite(threshold):
            return
        out.append(Threshold(metric, bound, threshold))
        if warn is not None and math.isfinite(warn):
            out.append(Threshold(metric, "warn", warn))
        elif bound == "max" and threshold * rp.warn_ratio > 0:
            out.append(Threshold(metric, "warn", threshold * rp.warn_ratio))

    if crit.error_rate is not None:
        add("errorRate", "max", crit.error_rate.max, crit.error_rate.warn)
    if crit.ood_rate is not None:
        add("oodRate", "max", crit.ood_rate.max, crit.ood_rate.warn)
    if crit.drift is not None:
        limit = crit.drift.max if crit.drift.max is not None else DRIFT_DEFAULT_MAX[_drift_metric(rp)]
        add("drift", "max", limit, crit.drift.warn)
    if crit.latency_p99_ms is not None:
        add("latencyP99Ms", "max", crit.latency_p99_ms.max, crit.latency_p99_ms.warn)
    for c in crit.custom or []:
        for bound, threshold, warn in _custom_bounds(c):
            add(c.metric, bound, threshold, warn)
    # A custom metric with both bounds would give two warn lines; keep the first.
    unique: dict[tuple[str, str], Threshold] = {}
    for t in out:
        unique.setdefault((t.metric, t.bound), t)
    return list(unique.values())
