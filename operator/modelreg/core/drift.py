"""Drift of a snapshot from its histograms or precomputed values (docs/evaluation.md).

Histograms: counts are normalised to shares, empty bins set to 1e-4 and the
shares renormalised; ``klDivergence`` = KL(reference ‖ current) with the
natural log; ``psi`` = Σ (ref − cur)·ln(ref/cur); ``jsDivergence`` is the
Jensen-Shannon divergence with the natural log. The model's value of a measure
is its maximum over the features. Without features the precomputed value of
the snapshot is used. Nothing is rounded here.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from modelreg.api.models import (
    MAX_TEXT,
    DriftFeatureResult,
    DriftMetric,
    DriftResult,
    FeatureHistogram,
    SnapshotDrift,
)

__all__ = ["EMPTY_BIN_SHARE", "DriftOutcome", "compute_drift", "js", "kl", "psi", "shares"]

#: The share given to an empty bin before renormalising.
EMPTY_BIN_SHARE = 1e-4

_METHOD_HISTOGRAMS = "shares with empty bins set to 1e-4 and renormalised, natural log; value = max over features"


@dataclass(frozen=True)
class DriftOutcome:
    """The drift of one snapshot.

    ``result`` is None when the snapshot carries no drift for the metric at
    all (the metric is simply missing). ``inconclusive_reason`` is set when
    histograms were given but none could be measured (``result.value`` is
    then None).
    """

    result: DriftResult | None
    inconclusive_reason: str | None = None

    @property
    def value(self) -> float | None:
        """The value of the policy's measure, when there is one."""
        return self.result.value if self.result is not None else None


# --------------------------------------------------------------------------- pure helpers


def shares(counts: Sequence[float]) -> list[float]:
    """Counts as shares summing to 1, empty bins set to 1e-4 and renormalised.

    Raises :class:`ValueError` when the counts are empty, negative, not finite
    or all zero (such a histogram has no distribution).
    """
    if len(counts) == 0:
        raise ValueError("no bins")
    values = [float(c) for c in counts]
    if not all(math.isfinite(v) for v in values):
        raise ValueError("non-finite counts")
    if any(v < 0 for v in values):
        raise ValueError("negative counts")
    top = max(values)
    if top <= 0:
        raise ValueError("all-zero histogram")
    # scale by the largest count first so that the sum cannot overflow
    scaled = [v / top for v in values]
    total = sum(scaled)
    raw = [v / total for v in scaled]
    filled = [v if v > 0 else EMPTY_BIN_SHARE for v in raw]
    norm = sum(filled)
    return [v / norm for v in filled]


def _check_pair(p: Sequence[float], q: Sequence[float]) -> None:
    if len(p) != len(q):
        raise ValueError(f"distributions differ in length ({len(p)} and {len(q)})")


def _xlogy_ratio(a: float, b: float) -> float:
    """a·ln(a/b) with 0·ln(0/b) = 0, computed as a difference of logs (no overflow)."""
    if a == 0:
        return 0.0
    if b == 0:
        return math.inf
    return a * (math.log(a) - math.log(b))


def kl(p: Sequence[float], q: Sequence[float]) -> float:
    """Kullback-Leibler divergence KL(p ‖ q) = Σ p·ln(p/q) (natural log), clamped at 0."""
    _check_pair(p, q)
    return max(0.0, math.fsum(_xlogy_ratio(a, b) for a, b in zip(p, q, strict=True)))


def psi(p: Sequence[float], q: Sequence[float]) -> float:
    """Population stability index Σ (p − q)·ln(p/q) (natural log); p is the reference."""
    _check_pair(p, q)
    terms: list[float] = []
    for a, b in zip(p, q, strict=True):
        if a == b:
            continue
        if a == 0 or b == 0:
            return math.inf
        terms.append((a - b) * (math.log(a) - math.log(b)))
    return max(0.0, math.fsum(terms))


def js(p: Sequence[float], q: Sequence[float]) -> float:
    """Jensen-Shannon divergence ½·KL(p ‖ m) + ½·KL(q ‖ m), m = ½(p + q), natural log."""
    _check_pair(p, q)
    m = [(a + b) / 2 for a, b in zip(p, q, strict=True)]
    return max(0.0, 0.5 * kl(p, m) + 0.5 * kl(q, m))


# --------------------------------------------------------------------------- the snapshot's drift


def _unmeasurable(feature: FeatureHistogram) -> str | None:
    """Why a feature's histograms cannot be measured (None when they can)."""
    ref, cur = feature.reference, feature.current
    if len(ref) != len(cur):
        return f"reference has {len(ref)} bins, current {len(cur)}"
    problems = []
    for label, counts in (("reference", ref), ("current", cur)):
        if len(counts) == 0:
            problems.append(f"empty {label} histogram")
        elif not all(isinstance(c, int | float) and math.isfinite(c) for c in counts):
            problems.append(f"non-finite {label} counts")
        elif any(c < 0 for c in counts):
            problems.append(f"negative {label} counts")
        elif all(c == 0 for c in counts):
            problems.append(f"all-zero {label} histogram")
    return ", ".join(problems) or None


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


def _clip(text: str, limit: int = MAX_TEXT) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _skipped_text(skipped: list[tuple[str, str]]) -> str:
    return "; ".join(f"{name}: {why}" for name, why in skipped)


def _finite_or_none(v: float | None) -> float | None:
    return v if v is not None and math.isfinite(v) else None


def _histogram_drift(features: list[FeatureHistogram], metric: DriftMetric) -> DriftOutcome:
    measured: list[DriftFeatureResult] = []
    skipped: list[tuple[str, str]] = []
    for feature in features:
        why = _unmeasurable(feature)
        if why is not None:
            skipped.append((feature.name, why))
            continue
        p = shares(feature.reference)
        q = shares(feature.current)
        measured.append(
            DriftFeatureResult(name=feature.name, kl_divergence=kl(p, q), psi=psi(p, q), js_divergence=js(p, q))
        )
    if not measured:
        reason = _clip(f"drift cannot be measured: no feature has usable histograms ({_skipped_text(skipped)})")
        method = _clip(f"histograms: {_plural(len(features), 'feature')}, none measurable ({_skipped_text(skipped)})")
        return DriftOutcome(result=DriftResult(metric=metric, features=[], method=method), inconclusive_reason=reason)

    kl_max = max(f.kl_divergence for f in measured if f.kl_divergence is not None)
    psi_max = max(f.psi for f in measured if f.psi is not None)
    js_max = max(f.js_divergence for f in measured if f.js_divergence is not None)
    by_metric = {"klDivergence": kl_max, "psi": psi_max, "jsDivergence": js_max}
    method = f"histograms: {_plural(len(measured), 'feature')}, {_METHOD_HISTOGRAMS}"
    if skipped:
        method += f"; skipped {_plural(len(skipped), 'feature')} ({_skipped_text(skipped)})"
    return DriftOutcome(
        result=DriftResult(
            metric=metric,
            value=by_metric[metric],
            kl_divergence=kl_max,
            psi=psi_max,
            js_divergence=js_max,
            features=measured,
            method=_clip(method),
        )
    )


def compute_drift(drift: SnapshotDrift | None, metric: DriftMetric) -> DriftOutcome:
    """The drift of a snapshot for the policy's measure ``metric``. Never raises.

    With features, every measurable feature is measured and the value of each
    measure is its maximum over features; features whose histograms are all
    zero (or unusable) are skipped and named in the method; when none can be
    measured the outcome is inconclusive. Without features the precomputed
    value the metric names is used; when that is absent ``result`` is None
    (the metric is missing). A non-finite precomputed value counts as absent.
    """
    if drift is None:
        return DriftOutcome(result=None)
    features = list(drift.features or [])
    if features:
        return _histogram_drift(features, metric)

    precomputed = {
        "klDivergence": _finite_or_none(drift.kl_divergence),
        "psi": _finite_or_none(drift.psi),
        "jsDivergence": _finite_or_none(drift.js_divergence),
    }
    value = precomputed.get(metric)
    if value is None:
        return DriftOutcome(result=None)
    return DriftOutcome(
        result=DriftResult(
            metric=metric,
            value=value,
            kl_divergence=precomputed["klDivergence"],
            psi=precomputed["psi"],
            js_divergence=precomputed["jsDivergence"],
            method=f"precomputed {metric}",
        )
    )
