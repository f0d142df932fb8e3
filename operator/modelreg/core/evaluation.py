"""Evaluation of a performance snapshot against a rollback policy (docs/evaluation.md).

Pure: the snapshot spec and the effective rollback policy in, an
:class:`Evaluation` out. Never raises for inputs the API models accept.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Literal

from modelreg.api.models import (
    Breach,
    CustomCriterion,
    DriftMetric,
    DriftResult,
    EffectiveRollbackPolicy,
    PerformanceSnapshotSpec,
    Stage,
    Verdict,
)
from modelreg.core.drift import DriftOutcome, compute_drift
from modelreg.core.policy import DRIFT_DEFAULT_MAX

__all__ = [
    "CONCLUSIVE_VERDICTS",
    "Evaluation",
    "evaluate",
    "next_consecutive_breaches",
    "rollback_due",
]

#: Verdicts that say something about the model (Inconclusive and Orphaned do not).
CONCLUSIVE_VERDICTS: frozenset[str] = frozenset({"Healthy", "Degraded", "Critical"})

Bound = Literal["max", "min"]


@dataclass(frozen=True)
class Evaluation:
    """The outcome of evaluating one snapshot.

    ``breaches`` and ``warnings`` are in criterion order (errorRate, oodRate,
    drift, latencyP99Ms, custom in policy order); a warning's ``threshold`` is
    the warning level. ``metrics`` is flat (``errorRate``, ``oodRate``,
    ``latencyP99Ms``, the drift measure by its name, custom metrics by name)
    and is filled even when the verdict is Inconclusive, for display.
    ``reason`` says why for Inconclusive and is empty for conclusive verdicts.
    """

    verdict: Verdict
    reason: str = ""
    breaches: list[Breach] = field(default_factory=list)
    warnings: list[Breach] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    drift: DriftResult | None = None
    metrics: dict[str, float] = field(default_factory=dict)

    @property
    def conclusive(self) -> bool:
        """True for Healthy, Degraded and Critical."""
        return self.verdict in CONCLUSIVE_VERDICTS


@dataclass(frozen=True)
class _Check:
    """One bound of one criterion, with the snapshot's value (None: missing)."""

    criterion: str
    bound: Bound
    threshold: float
    warn: float | None
    value: float | None


def _finite(v: object) -> float | None:
    """``v`` as a float when it is a finite real number, else None."""
    if isinstance(v, bool) or not isinstance(v, int | float):
        return None
    f = float(v)
    return f if math.isfinite(f) else None


def _get(obj: object | None, name: str) -> object:
    """``obj.name``, or None when ``obj`` is None."""
    return None if obj is None else getattr(obj, name, None)


# --------------------------------------------------------------------------- gathering


def _drift_metric(policy: EffectiveRollbackPolicy) -> DriftMetric:
    drift = policy.criteria.drift
    if drift is not None and drift.metric is not None:
        return drift.metric
    return "klDivergence"


def _custom_bounds(c: CustomCriterion) -> list[tuple[Bound, float, float | None]]:
    """The bounds of a custom criterion: (bound, threshold, explicit warn).

    The API allows exactly one of min/max; should both be set, both are
    checked and the explicit ``warn`` goes with ``max``.
    """
    out: list[tuple[Bound, float, float | None]] = []
    if c.max is not None:
        out.append(("max", c.max, c.warn))
    if c.min is not None:
        out.append(("min", c.min, c.warn if c.max is None else None))
    return out


def _snapshot_metrics(spec: PerformanceSnapshotSpec, drift: DriftOutcome) -> dict[str, float]:
    """The flat metrics of a snapshot (finite values only).

    Built-in names (errorRate, oodRate, latencyP99Ms, the drift measure) take
    precedence; a custom metric with one of those names is stored as
    ``custom.<name>``.
    """
    out: dict[str, float] = {}
    m = spec.metrics
    if m is not None:
        for key, raw in (
            ("errorRate", m.error_rate),
            ("oodRate", m.ood_rate),
            ("latencyP99Ms", m.latency_p99_ms),
        ):
            v = _finite(raw)
            if v is not None:
                out[key] = v
    result = drift.result
    if result is not None and result.metric is not None:
        v = _finite(result.value)
        if v is not None:
            out[result.metric] = v
    if m is not None and m.custom:
        for name, raw in m.custom.items():
            v = _finite(raw)
            if v is None:
                continue
            key = name if name not in out else f"custom.{name}"
            out.setdefault(key, v)
    return out


def _checks(spec: PerformanceSnapshotSpec, policy: EffectiveRollbackPolicy, drift: DriftOutcome) -> list[_Check]:
    """Every configured bound with the snapshot's value, in criterion order."""
    crit = policy.criteria
    m = spec.metrics
    custom_values = (m.custom or {}) if m is not None else {}
    checks: list[_Check] = []
    if crit.error_rate is not None:
        checks.append(
            _Check("errorRate", "max", crit.error_rate.max, crit.error_rate.warn, _finite(_get(m, "error_rate")))
        )
    if crit.ood_rate is not None:
        checks.append(_Check("oodRate", "max", crit.ood_rate.max, crit.ood_rate.warn, _finite(_get(m, "ood_rate"))))
    if crit.drift is not None:
        metric = _drift_metric(policy)
        threshold = crit.drift.max if crit.drift.max is not None else DRIFT_DEFAULT_MAX[metric]
        checks.append(_Check(metric, "max", threshold, crit.drift.warn, _finite(drift.value)))
    if crit.latency_p99_ms is not None:
        lat = crit.latency_p99_ms
        checks.append(_Check("latencyP99Ms", "max", lat.max, lat.warn, _finite(_get(m, "latency_p99_ms"))))
    for c in crit.custom or []:
        value = _finite(custom_values.get(c.metric))
        for bound, threshold, warn in _custom_bounds(c):
            checks.append(_Check(c.metric, bound, threshold, warn, value))
    return checks


# --------------------------------------------------------------------------- judging


def _judge(check: _Check, warn_ratio: float) -> tuple[Breach | None, Breach | None]:
    """(breach, warning) of one bound with a value; at most one is set."""
    value = check.value
    assert value is not None
    threshold = check.threshold
    if math.isnan(threshold):
        return None, None
    explicit = _finite(check.warn)
    if check.bound == "max":
        if value > threshold:
            return Breach(criterion=check.criterion, value=value, threshold=threshold), None
        if explicit is not None:
            level = explicit
        else:
            level = warn_ratio * threshold
            # A ratio-derived level of 0 (max 0) would warn on a perfect 0: it does not.
            if level == 0:
                return None, None
        if not math.isnan(level) and value >= level:
            return None, Breach(criterion=check.criterion, value=value, threshold=level)
        return None, None
    if value < threshold:
        return Breach(criterion=check.criterion, value=value, threshold=threshold), None
    if explicit is not None and value < explicit:
        return None, Breach(criterion=check.criterion, value=value, threshold=explicit)
    return None, None


def evaluate(spec: PerformanceSnapshotSpec, policy: EffectiveRollbackPolicy) -> Evaluation:
    """Evaluate a snapshot against a rollback policy (docs/evaluation.md). Never raises.

    - Every configured criterion is checked; all breaches are reported. A
      criterion whose metric the snapshot lacks (or is not finite) goes into
      ``missing``.
    - A pulled snapshot whose ``spec.source.noData`` lists ``sampleCount`` →
      Inconclusive with a reason starting ``NoData`` (whatever ``minSamples`` says).
    - ``sampleCount < minSamples`` → Inconclusive (no breaches or warnings,
      metrics and drift still filled).
    - None of the configured metrics present → Inconclusive.
    - Drift configured but not measurable (all-zero histograms) → Inconclusive
      with the drift reason, unless another criterion breaches (Critical, the
      drift criterion listed in ``missing``).
    - Otherwise any breach → Critical; any warning → Degraded; else Healthy.
    """
    drift = compute_drift(spec.drift, _drift_metric(policy))
    metrics = _snapshot_metrics(spec, drift)
    checks = _checks(spec, policy, drift)

    # A criterion name is missing when none of its bounds has a value (a custom
    # metric named like a built-in criterion shares that name).
    measured = {c.criterion for c in checks if c.value is not None}
    missing = list(dict.fromkeys(c.criterion for c in checks if c.criterion not in measured))

    def inconclusive(reason: str) -> Evaluation:
        return Evaluation(verdict="Inconclusive", reason=reason, missing=missing, drift=drift.result, metrics=metrics)

    source = spec.source
    if source is not None and "sampleCount" in (source.no_data or []):
        # A pulled window with no sample series: nothing was observed, whatever minSamples says.
        return inconclusive(f"NoData: {source.metric_source} returned no series for sampleCount")
    if source is not None and "sampleCount" in (source.invalid or []):
        return inconclusive(f"InvalidData: {source.metric_source} returned NaN, ±Inf or < 0 for sampleCount")
    if spec.sample_count < policy.min_samples:
        return inconclusive(f"sampleCount {spec.sample_count} < minSamples {policy.min_samples}")
    if not checks:
        return inconclusive("no criteria configured")

    drift_configured = policy.criteria.drift is not None
    drift_reason = drift.inconclusive_reason if drift_configured else None
    present = [c for c in checks if c.value is not None]
    if not present:
        names = ", ".join(dict.fromkeys(c.criterion for c in checks))
        reason = f"snapshot carries none of the configured metrics ({names})"
        if drift_reason:
            reason += f"; {drift_reason}"
        return inconclusive(reason)

    breaches: list[Breach] = []
    warnings: list[Breach] = []
    breached: set[str] = set()
    for check in present:
        if check.criterion in breached:
            continue
        breach, warning = _judge(check, policy.warn_ratio)
        if breach is not None:
            breaches.append(breach)
            breached.add(check.criterion)
            warnings = [w for w in warnings if w.criterion != check.criterion]
        elif warning is not None and all(w.criterion != check.criterion for w in warnings):
            warnings.append(warning)

    if drift_reason and not breaches:
        return inconclusive(drift_reason)
    if breaches:
        return Evaluation(
            verdict="Critical",
            breaches=breaches,
            warnings=warnings,
            missing=missing,
            drift=drift.result,
            metrics=metrics,
        )
    verdict: Verdict = "Degraded" if warnings else "Healthy"
    return Evaluation(verdict=verdict, warnings=warnings, missing=missing, drift=drift.result, metrics=metrics)


# --------------------------------------------------------------------------- the streak


def next_consecutive_breaches(current: int, verdict: Verdict, stage: Stage) -> int:
    """The version's breach streak after a snapshot with ``verdict`` taken in ``stage``.

    Only Production snapshots count: Critical adds one, Healthy and Degraded
    reset to 0, Inconclusive and Orphaned leave it. In any other stage the
    streak is unchanged (the lifecycle resets it on retry and promotion).
    """
    current = max(0, current)
    if stage != "Production":
        return current
    if verdict == "Critical":
        return current + 1
    if verdict in ("Healthy", "Degraded"):
        return 0
    return current


def rollback_due(streak: int, policy: EffectiveRollbackPolicy) -> bool:
    """True when the streak reaches ``consecutiveBreaches`` (at least 1) and mode is not Disabled."""
    return policy.mode != "Disabled" and streak >= max(1, policy.consecutive_breaches)
