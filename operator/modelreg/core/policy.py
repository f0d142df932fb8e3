"""Operator-wide defaults and the effective policy of a version (docs/defaults.md).

A version's ``status.effectivePolicy`` is the operator defaults with its
``spec`` policy merged over them field by field; a list in ``spec`` replaces
the default list. Everything here is pure: no Kubernetes I/O, no clock.
"""

from __future__ import annotations

import dataclasses
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, get_args

from modelreg.api.models import (
    DURATION_PATTERN,
    CustomCriterion,
    DriftCriterion,
    DriftMetric,
    EffectiveCriteria,
    EffectiveMonitoring,
    EffectivePolicy,
    EffectivePromotionPolicy,
    EffectiveRollbackPolicy,
    EvaluationRequirement,
    MaxCriterion,
    MonitoredStage,
    RateCriterion,
    RegisteredModelSpec,
    RollbackMode,
    TargetStage,
)
from modelreg.core.durations import parse_duration

__all__ = ["DRIFT_DEFAULT_MAX", "ENV_PREFIX", "Defaults", "drift_max_for", "effective_monitoring", "effective_policy"]

#: The default ``max`` of each drift measure when a policy chooses it without a max.
DRIFT_DEFAULT_MAX: dict[str, float] = {"klDivergence": 0.3, "psi": 0.25, "jsDivergence": 0.1}

#: Environment variables ``MODELREG_DEFAULT_<FIELD_UPPER>`` override the defaults.
ENV_PREFIX = "MODELREG_DEFAULT_"

_DURATION_RE = re.compile(DURATION_PATTERN)
_PLAYBOOK_RE = re.compile(r"^[a-z0-9]([a-z0-9_.-]*[a-z0-9])?$")
_TRUE = frozenset({"true", "1", "yes", "on"})
_FALSE = frozenset({"false", "0", "no", "off"})


@dataclass(frozen=True)
class Defaults:
    """The operator-wide defaults of docs/defaults.md (from flags, environment or Helm values).

    Construction validates every field and raises :class:`ValueError` naming
    the field on a bad value.
    """

    target_stage: TargetStage = "Development"
    min_sandbox_duration: str = "10m"
    min_healthy_snapshots: int = 3
    require_approval: bool = True
    mode: RollbackMode = "Automatic"
    playbook: str = "model_rollback"
    error_rate_max: float = 0.05
    ood_rate_max: float = 0.20
    drift_metric: DriftMetric = "klDivergence"
    #: None: the per-metric default of :data:`DRIFT_DEFAULT_MAX`.
    drift_max: float | None = None
    min_samples: int = 100
    consecutive_breaches: int = 1
    warn_ratio: float = 0.8
    stale_after: str = "15m"
    incident_on_warning: bool = False
    snapshot_history_limit: int = 20
    incident_ttl: str = "720h"
    orphan_ttl: str = "24h"
    #: spec.monitoring defaults (docs/metricsource.md); an empty window means "the interval".
    monitoring_interval: str = "1m"
    monitoring_window: str = ""
    monitoring_evaluation_delay: str = "30s"
    #: comma-separated
    monitoring_stages: str = "Sandbox,Production"

    def __post_init__(self) -> None:
        for f in dataclasses.fields(self):
            problem = _check_field(f.name, getattr(self, f.name))
            if problem:
                raise ValueError(f"invalid default {f.name}={getattr(self, f.name)!r}: {problem}")

    @property
    def effective_drift_max(self) -> float:
        """The drift max that goes with :attr:`drift_metric`."""
        return self.drift_max if self.drift_max is not None else DRIFT_DEFAULT_MAX[self.drift_metric]

    @property
    def monitoring_stage_list(self) -> list[MonitoredStage]:
        """:attr:`monitoring_stages` as a list."""
        return [p.strip() for p in self.monitoring_stages.split(",")]  # type: ignore[misc]

    @staticmethod
    def env_var(field_name: str) -> str:
        """The environment variable of a field, e.g. ``MODELREG_DEFAULT_STALE_AFTER``."""
        return ENV_PREFIX + field_name.upper()

    @classmethod
    def from_env(cls, env: Mapping[str, str], base: Defaults | None = None) -> Defaults:
        """Defaults with ``MODELREG_DEFAULT_<FIELD_UPPER>`` variables of ``env`` applied over ``base``.

        Unset variables keep the ``base`` value (the built-in defaults when
        ``base`` is None). ``MODELREG_DEFAULT_DRIFT_MAX`` may be empty (or
        ``none``) for the per-metric default. Raises :class:`ValueError`
        naming the variable on a bad value. Other variables are ignored.
        """
        base = base if base is not None else cls()
        changes: dict[str, Any] = {}
        for f in dataclasses.fields(cls):
            var = cls.env_var(f.name)
            if var not in env:
                continue
            raw = env[var]
            try:
                value = _convert(f.name, raw)
                problem = _check_field(f.name, value)
            except ValueError as exc:
                problem = str(exc)
            if problem:
                raise ValueError(f"invalid {var}={raw!r}: {problem}")
            changes[f.name] = value
        return dataclasses.replace(base, **changes)


# --------------------------------------------------------------------------- validation of defaults

_INT_BOUNDS: dict[str, tuple[int, int | None]] = {
    "min_healthy_snapshots": (0, 1_000_000),
    "min_samples": (0, None),
    "consecutive_breaches": (1, 1000),
    "snapshot_history_limit": (1, 10_000),
}
_ENUMS: dict[str, tuple[str, ...]] = {
    "target_stage": get_args(TargetStage),
    "mode": get_args(RollbackMode),
    "drift_metric": get_args(DriftMetric),
}
_DURATIONS = ("min_sandbox_duration", "stale_after", "incident_ttl", "orphan_ttl", "monitoring_evaluation_delay")
_MONITOR_INTERVALS = ("monitoring_interval", "monitoring_window")
_BOOLS = ("require_approval", "incident_on_warning")
_RATES = ("error_rate_max", "ood_rate_max")


def _check_field(name: str, value: object) -> str | None:
    """Why ``value`` is not acceptable for the Defaults field ``name`` (None when it is)."""
    if name in _ENUMS:
        if value not in _ENUMS[name]:
            return f"must be one of {', '.join(_ENUMS[name])}"
    elif name in _DURATIONS:
        if not isinstance(value, str) or not _DURATION_RE.match(value) or len(value) > 64:
            return "must be a non-negative Go duration such as 10m, 1h30m or 0"
        try:
            parse_duration(value)
        except ValueError as exc:
            return str(exc)
    elif name in _MONITOR_INTERVALS:
        return _check_interval(name, value)
    elif name == "monitoring_stages":
        allowed = get_args(MonitoredStage)
        parts = [p.strip() for p in value.split(",")] if isinstance(value, str) else []
        if not parts or any(p not in allowed for p in parts):
            return f"must be a non-empty comma-separated list of {', '.join(allowed)}"
    elif name in _BOOLS:
        if not isinstance(value, bool):
            return "must be true or false"
    elif name in _INT_BOUNDS:
        low, high = _INT_BOUNDS[name]
        if isinstance(value, bool) or not isinstance(value, int):
            return "must be an integer"
        if value < low or (high is not None and value > high):
            return f"must be ≥ {low}" + (f" and ≤ {high}" if high is not None else "")
    elif name in _RATES:
        num = _as_number(value)
        if num is None or not 0.0 <= num <= 1.0:
            return "must be a number in [0, 1]"
    elif name == "drift_max":
        num = _as_number(value)
        if value is not None and (num is None or num < 0.0):
            return "must be a finite number ≥ 0 (or unset for the per-metric default)"
    elif name == "warn_ratio":
        num = _as_number(value)
        if num is None or not 0.0 < num <= 1.0:
            return "must be a number in (0, 1]"
    elif name == "playbook":
        if not isinstance(value, str) or len(value) > 63 or not _PLAYBOOK_RE.match(value):
            return "must match ^[a-z0-9]([a-z0-9_.-]*[a-z0-9])?$ (at most 63 characters)"
    return None


def _check_interval(name: str, value: object) -> str | None:
    """Why ``value`` is not a monitoring interval (whole seconds, at least 5s); "" is "unset" for the window."""
    if name == "monitoring_window" and value == "":
        return None
    problem = "must be a Go duration in whole seconds, at least 5s (such as 30s or 1m)"
    if not isinstance(value, str) or not _DURATION_RE.match(value) or len(value) > 64:
        return problem
    try:
        td = parse_duration(value)
    except ValueError as exc:
        return str(exc)
    if td.microseconds or td.total_seconds() < 5:
        return problem
    return None


def _as_number(value: object) -> float | None:
    """``value`` as a finite float, or None when it is not a finite number."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    num = float(value)
    return num if math.isfinite(num) else None


def _convert(name: str, raw: str) -> Any:
    """Convert the text of an environment variable to the type of field ``name``."""
    text = raw.strip()
    if name in _BOOLS:
        low = text.lower()
        if low in _TRUE:
            return True
        if low in _FALSE:
            return False
        raise ValueError("must be true or false")
    if name in _INT_BOUNDS:
        try:
            return int(text)
        except ValueError:
            raise ValueError("must be an integer") from None
    if name == "drift_max" and text.lower() in ("", "none", "null"):
        return None
    if name in _RATES or name in ("drift_max", "warn_ratio"):
        try:
            return float(text)
        except ValueError:
            raise ValueError("must be a number") from None
    return text


# --------------------------------------------------------------------------- merge


def drift_max_for(metric: DriftMetric, defaults: Defaults) -> float:
    """The default max for a drift measure.

    The operator's ``drift_max`` goes with its ``drift_metric``; a policy that
    picks another measure without a max gets that measure's own default
    (:data:`DRIFT_DEFAULT_MAX`: psi 0.25, jsDivergence 0.1, klDivergence 0.3).
    """
    if metric == defaults.drift_metric:
        return defaults.effective_drift_max
    return DRIFT_DEFAULT_MAX[metric]


def effective_policy(spec: RegisteredModelSpec, defaults: Defaults) -> EffectivePolicy:
    """The defaults with ``spec``'s policy merged over them field by field (docs/defaults.md).

    Lists in ``spec`` (``requiredEvaluation``, ``custom``) replace the default
    lists. A drift criterion is merged per field: ``{metric: psi}`` gets max
    0.25; ``{max: 0.5}`` keeps the default metric. ``latencyP99Ms`` is unset
    and ``custom`` empty unless ``spec`` sets them. Never raises for a spec
    the API model accepts.
    """
    promo = spec.promotion_policy
    rb = spec.rollback_policy
    crit = rb.criteria if rb is not None else None

    required: list[EvaluationRequirement] = []
    if promo is not None and promo.required_evaluation is not None:
        required = [r.model_copy(deep=True) for r in promo.required_evaluation]
    promotion = EffectivePromotionPolicy(
        min_sandbox_duration=_pick(_get(promo, "min_sandbox_duration"), defaults.min_sandbox_duration),
        min_healthy_snapshots=_pick(_get(promo, "min_healthy_snapshots"), defaults.min_healthy_snapshots),
        require_approval=_pick(_get(promo, "require_approval"), defaults.require_approval),
        required_evaluation=required,
    )

    error_rate = RateCriterion(max=defaults.error_rate_max)
    if crit is not None and crit.error_rate is not None:
        error_rate = crit.error_rate.model_copy(deep=True)
    ood_rate = RateCriterion(max=defaults.ood_rate_max)
    if crit is not None and crit.ood_rate is not None:
        ood_rate = crit.ood_rate.model_copy(deep=True)

    spec_drift = crit.drift if crit is not None else None
    drift_metric: DriftMetric = _pick(_get(spec_drift, "metric"), defaults.drift_metric)
    drift_max = _pick(_get(spec_drift, "max"), drift_max_for(drift_metric, defaults))
    drift = DriftCriterion(metric=drift_metric, max=drift_max, warn=_get(spec_drift, "warn"))

    latency: MaxCriterion | None = None
    if crit is not None and crit.latency_p99_ms is not None:
        latency = crit.latency_p99_ms.model_copy(deep=True)
    custom: list[CustomCriterion] = []
    if crit is not None and crit.custom is not None:
        custom = [c.model_copy(deep=True) for c in crit.custom]

    rollback = EffectiveRollbackPolicy(
        mode=_pick(_get(rb, "mode"), defaults.mode),
        playbook=_pick(_get(rb, "playbook"), defaults.playbook),
        criteria=EffectiveCriteria(
            error_rate=error_rate, ood_rate=ood_rate, drift=drift, latency_p99_ms=latency, custom=custom
        ),
        min_samples=_pick(_get(rb, "min_samples"), defaults.min_samples),
        consecutive_breaches=_pick(_get(rb, "consecutive_breaches"), defaults.consecutive_breaches),
        warn_ratio=_pick(_get(rb, "warn_ratio"), defaults.warn_ratio),
        stale_after=_pick(_get(rb, "stale_after"), defaults.stale_after),
        incident_on_warning=_pick(_get(rb, "incident_on_warning"), defaults.incident_on_warning),
    )
    return EffectivePolicy(
        target_stage=_pick(spec.target_stage, defaults.target_stage),
        promotion_policy=promotion,
        rollback_policy=rollback,
        snapshot_history_limit=_pick(spec.snapshot_history_limit, defaults.snapshot_history_limit),
        monitoring=effective_monitoring(spec, defaults),
    )


def effective_monitoring(spec: RegisteredModelSpec, defaults: Defaults) -> EffectiveMonitoring | None:
    """``spec.monitoring`` with the operator's monitoring defaults filled in; None when unmonitored.

    The window defaults to the version's own interval (not the operator's
    interval) unless the operator sets a default window.
    """
    mon = spec.monitoring
    if mon is None:
        return None
    interval = _pick(mon.interval, defaults.monitoring_interval)
    window = mon.window or defaults.monitoring_window or interval
    stages = list(mon.stages) if mon.stages is not None else defaults.monitoring_stage_list
    return EffectiveMonitoring(
        source_ref=mon.source_ref.model_copy(),
        interval=interval,
        window=window,
        evaluation_delay=_pick(mon.evaluation_delay, defaults.monitoring_evaluation_delay),
        stages=stages,
        features=list(mon.features or []),
        drift_reference=mon.drift_reference.model_copy() if mon.drift_reference is not None else None,
    )


def _get(obj: object | None, name: str) -> Any:
    """``obj.name``, or None when ``obj`` is None."""
    return None if obj is None else getattr(obj, name, None)


def _pick(value: Any, default: Any) -> Any:
    """``value`` unless it is unset (None); False and 0 are values."""
    return default if value is None else value
