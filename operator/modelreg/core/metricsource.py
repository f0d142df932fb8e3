"""Pulling snapshots from Prometheus, decided without I/O (docs/metricsource.md).

The poller is "decide, then do": this module holds the rules, :mod:`modelreg.core.metricpoll`
plans each poll with them, and the thin shell in :mod:`modelreg.controller.poller` only does
HTTP and Kubernetes writes.

- Templates: :func:`template_problems` finds unknown ``{{placeholders}}``;
  :func:`render` fills the known ones, escaping values for PromQL string
  literals.
- Timing: :func:`plan_window` gives the evaluation time ``t`` and the window
  ``w`` of a version (or why no snapshot is written yet).
- Values: :func:`parse_result` turns one Prometheus answer into a
  :class:`Sample` / :data:`NO_DATA` / :data:`INVALID` / :class:`Ambiguous`;
  :func:`snapshot_values` applies the value rules (rates on unrounded counts,
  clamped; ``sampleCount`` rounded down; noData and invalid lists).
- Drift: :func:`parse_buckets` and :func:`feature_histogram` turn cumulative
  ``le`` buckets into per-bin counts.
- Errors and conditions: :func:`classify_http` and :func:`metrics_condition`
  (written only on change, one Event per reason change).
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

from modelreg.api.models import Condition, FeatureHistogram, MetricQueries
from modelreg.core.conditions import get_condition, set_condition
from modelreg.core.names import label_value

__all__ = [
    "CONDITION_TYPE",
    "INVALID",
    "NO_DATA",
    "Ambiguous",
    "Failure",
    "InvalidTemplate",
    "Sample",
    "SnapshotValues",
    "WindowPlan",
    "classify_http",
    "escape_promql",
    "feature_histogram",
    "label_value",
    "metrics_condition",
    "parse_buckets",
    "parse_result",
    "plan_window",
    "query_fields",
    "render",
    "snapshot_name",
    "snapshot_values",
    "template_problems",
    "truncate_utf8",
]

#: The condition a monitored RegisteredModel carries.
CONDITION_TYPE = "MetricsAvailable"
#: Placeholders every query may use; ``feature`` only in ``featureHistogram``.
PLACEHOLDERS = frozenset({"namespace", "modelName", "version", "registeredModel", "window"})
FEATURE_PLACEHOLDER = "feature"
#: Bytes of Prometheus's JSON ``error`` field kept in a condition message.
MAX_ERROR_BYTES = 256
#: The probe a MetricSource's Ready condition comes from.
PROBE_QUERY = "vector(1)"

_PLACEHOLDER_RE = re.compile(r"\{\{\s*([^{}]*?)\s*\}\}")


# --------------------------------------------------------------------------- templates


class InvalidTemplate(ValueError):
    """A query uses a placeholder that does not exist (the message names the field)."""


def query_fields(queries: MetricQueries) -> dict[str, str]:
    """Field name → template of every query set (custom ones as ``custom.<name>``)."""
    out: dict[str, str] = {"sampleCount": queries.sample_count}
    for name, template in (
        ("errorCount", queries.error_count),
        ("oodCount", queries.ood_count),
        ("latencyP99Ms", queries.latency_p99_ms),
        ("featureHistogram", queries.feature_histogram),
    ):
        if template is not None:
            out[name] = template
    for name, template in (queries.custom or {}).items():
        out[f"custom.{name}"] = template
    return out


def template_problems(queries: MetricQueries) -> list[str]:
    """One message per query with an unknown placeholder: ``queries.<field>: unknown placeholder {{x}}``."""
    problems = []
    for name, template in query_fields(queries).items():
        allowed = PLACEHOLDERS | ({FEATURE_PLACEHOLDER} if name == "featureHistogram" else set())
        unknown = sorted({m.group(1) for m in _PLACEHOLDER_RE.finditer(template)} - allowed)
        if unknown:
            names = ", ".join("{{" + u + "}}" for u in unknown)
            problems.append(f"queries.{name}: unknown placeholder {names}")
    return problems


def escape_promql(value: str) -> str:
    """``value`` escaped for the inside of a double-quoted PromQL string literal."""
    out = []
    for ch in value:
        if ch == "\\":
            out.append("\\\\")
        elif ch == '"':
            out.append('\\"')
        elif ch == "\n":
            out.append("\\n")
        elif ch == "\r":
            out.append("\\r")
        elif ch == "\t":
            out.append("\\t")
        elif ord(ch) < 0x20 or ord(ch) == 0x7F:
            out.append(f"\\x{ord(ch):02x}")
        else:
            out.append(ch)
    return "".join(out)


def render(template: str, values: Mapping[str, str], *, window_seconds: int, field_name: str = "query") -> str:
    """Fill ``template``: ``{{window}}`` becomes ``<w>s``, other values are PromQL-escaped.

    Raises :class:`InvalidTemplate` naming ``field_name`` for a placeholder not in ``values``.
    """

    def fill(match: re.Match[str]) -> str:
        name = match.group(1)
        if name == "window":
            return f"{int(window_seconds)}s"
        if name not in values:
            raise InvalidTemplate(f"queries.{field_name}: unknown placeholder {{{{{name}}}}}")
        return escape_promql(values[name])

    return _PLACEHOLDER_RE.sub(fill, template)


# --------------------------------------------------------------------------- timing


@dataclass(frozen=True)
class WindowPlan:
    """What to do for a version at ``now``.

    ``t`` is the evaluation time (Unix seconds) and ``window`` the window ``w``
    in seconds; ``write`` is False when no snapshot is written for ``t``
    (``reason`` says why). ``next_at`` is the Unix time of the next poll.
    """

    t: int
    window: int
    write: bool
    next_at: float
    reason: str = ""


def plan_window(*, now: float, interval: int, window: int, delay: int, stage_since: float | None) -> WindowPlan:
    """``t`` = ``now − delay`` rounded down to a multiple of ``interval``; ``w`` = min(window, t − s).

    ``stage_since`` (``s``) is the ``at`` of the version's last stageHistory
    entry. When ``w`` is shorter than ``interval`` no snapshot is written yet.
    The next poll is when ``t`` next moves: ``t + interval + delay``.
    """
    interval = max(1, int(interval))
    t = int(math.floor((now - delay) / interval)) * interval
    next_at = float(t + interval + delay)
    w = int(window)
    if stage_since is not None:
        w = min(w, int(math.floor(t - stage_since)))
    if w < interval:
        return WindowPlan(t, max(w, 0), False, next_at, f"window {max(w, 0)}s since the stage change < interval")
    return WindowPlan(t, w, True, next_at)


def still_current(t: int, interval: int, delay: int, now: float) -> bool:
    """A poll for ``t`` that would start after ``t + interval`` (evaluation time) is skipped, never queued."""
    return now - delay < t + interval


def snapshot_name(registered_model: str, t: int) -> str:
    """``<registered model>-<t>``: one name per window, so a second writer gets AlreadyExists."""
    return f"{registered_model}-{int(t)}"


# --------------------------------------------------------------------------- results


@dataclass(frozen=True)
class Sample:
    value: float


@dataclass(frozen=True)
class _NoData:
    def __repr__(self) -> str:
        return "NO_DATA"


@dataclass(frozen=True)
class _Invalid:
    def __repr__(self) -> str:
        return "INVALID"


NO_DATA = _NoData()
INVALID = _Invalid()


@dataclass(frozen=True)
class Ambiguous:
    """More than one series where one was expected."""

    series: int


@dataclass(frozen=True)
class Failure:
    """A query that could not be answered: no snapshot is written for the window."""

    reason: str  # Unreachable, Timeout, HTTPError, Forbidden, SecretForbidden, QueryError, AmbiguousQuery, ...
    message: str = ""


Result = Sample | _NoData | _Invalid | Ambiguous


def _number(raw: object) -> float | None:
    """A Prometheus sample value (a string such as "1.5", "NaN", "+Inf") as a float; None if unreadable."""
    try:
        return float(str(raw))
    except ValueError:
        return None


def parse_result(data: Mapping[str, Any]) -> Result | Failure:
    """One instant-query ``data`` object → a value rule outcome.

    A scalar or a one-series vector is a sample; no series is NO_DATA; NaN or
    ±Inf is INVALID; more than one series is :class:`Ambiguous` with the count.
    """
    kind = data.get("resultType")
    result = data.get("result")
    if kind == "scalar" and isinstance(result, list) and len(result) == 2:
        value = _number(result[1])
    elif kind == "vector" and isinstance(result, list):
        if not result:
            return NO_DATA
        if len(result) > 1:
            return Ambiguous(len(result))
        sample = result[0].get("value") if isinstance(result[0], Mapping) else None
        value = _number(sample[1]) if isinstance(sample, list) and len(sample) == 2 else None
    else:
        return Failure("QueryError", f"the query must return a scalar or one series, not a {kind or 'unknown'} result")
    if value is None or not math.isfinite(value):
        return INVALID
    return Sample(value)


@dataclass
class SnapshotValues:
    """The spec fields of a pulled snapshot (``spec.sampleCount``, ``spec.metrics``, ``spec.source`` lists)."""

    sample_count: int = 0
    metrics: dict[str, Any] = field(default_factory=dict)
    no_data: list[str] = field(default_factory=list)
    invalid: list[str] = field(default_factory=list)
    failure: Failure | None = None


def _clamp_rate(x: float) -> float:
    return min(1.0, max(0.0, x))


def snapshot_values(results: Mapping[str, Result | Failure]) -> SnapshotValues:
    """Apply docs/metricsource.md's value rules to the outcome of each query field.

    Any :class:`Failure` or :class:`Ambiguous` fails the window (no snapshot):
    the first one in field order is reported (AmbiguousQuery with the series
    count). Otherwise ``sampleCount`` is its value rounded down (no series: 0,
    listed in ``noData``); ``errorRate`` and ``oodRate`` are their counts over
    the unrounded ``sampleCount`` when it is > 0, clamped to [0, 1]; a field
    with no series is left out and listed in ``noData``, NaN/±Inf in
    ``invalid`` (a negative latency too). Never a guess, never 0 for "no data".
    """
    out = SnapshotValues()
    for name, outcome in results.items():
        if isinstance(outcome, Failure):
            out.failure = outcome
            return out
        if isinstance(outcome, Ambiguous):
            out.failure = Failure(
                "AmbiguousQuery", f"queries.{name} returned {outcome.series} series; it must return one"
            )
            return out

    def value(name: str) -> float | None:
        outcome = results.get(name)
        if outcome is None:
            return None
        if outcome is NO_DATA:
            out.no_data.append(name)
            return None
        if outcome is INVALID:
            out.invalid.append(name)
            return None
        assert isinstance(outcome, Sample)
        return outcome.value

    samples = value("sampleCount")
    if samples is not None and samples < 0:
        out.invalid.append("sampleCount")
        samples = None
    out.sample_count = int(math.floor(samples)) if samples is not None else 0
    for count_field, rate_field in (("errorCount", "errorRate"), ("oodCount", "oodRate")):
        count = value(count_field)
        if count is not None and samples is not None and samples > 0:
            out.metrics[rate_field] = _clamp_rate(count / samples)
    latency = value("latencyP99Ms")
    if latency is not None:
        if latency < 0:
            out.invalid.append("latencyP99Ms")
        else:
            out.metrics["latencyP99Ms"] = latency
    custom: dict[str, float] = {}
    for name in results:
        if name.startswith("custom."):
            v = value(name)
            if v is not None:
                custom[name.removeprefix("custom.")] = v
    if custom:
        out.metrics["custom"] = custom
    return out


# --------------------------------------------------------------------------- drift histograms


@dataclass(frozen=True)
class Buckets:
    """Cumulative counts by numeric upper bound (``+Inf`` last)."""

    bounds: tuple[float, ...]
    cumulative: tuple[float, ...]


def _le(raw: object) -> float | None:
    text = str(raw).strip()
    try:
        return float(text)  # "1", "1.0", "+Inf", "Inf" and "1e3" alike
    except ValueError:
        return None


def parse_buckets(data: Mapping[str, Any]) -> Buckets | _NoData | _Invalid | Ambiguous | Failure:
    """A ``featureHistogram`` answer → cumulative buckets.

    Series must differ only in ``le`` (else :class:`Ambiguous` with the count);
    ``le`` values are compared as numbers (``1`` and ``1.0`` are one bucket,
    their counts added) and sorted with ``+Inf`` last. No series → NO_DATA; a
    series without a numeric ``le``, or a NaN/±Inf count → INVALID.
    """
    if data.get("resultType") != "vector" or not isinstance(data.get("result"), list):
        return Failure("QueryError", "featureHistogram must return an instant vector with one series per `le`")
    series = data["result"]
    if not series:
        return NO_DATA
    groups = set()
    counts: dict[float, float] = {}
    for item in series:
        metric = dict(item.get("metric") or {})
        raw_le = metric.pop("le", None)
        groups.add(tuple(sorted(metric.items())))
        bound = _le(raw_le) if raw_le is not None else None
        sample = item.get("value")
        value = _number(sample[1]) if isinstance(sample, list) and len(sample) == 2 else None
        if bound is None or math.isnan(bound) or value is None or not math.isfinite(value):
            return INVALID
        counts[bound] = counts.get(bound, 0.0) + value
    if len(groups) > 1:
        return Ambiguous(len(series))
    bounds = tuple(sorted(counts))
    return Buckets(bounds, tuple(counts[b] for b in bounds))


def _per_bin(b: Buckets) -> list[float] | None:
    """Differenced cumulative counts; None when they decrease."""
    out = []
    previous = 0.0
    for c in b.cumulative:
        if c < previous:
            return None
        out.append(c - previous)
        previous = c
    return out


def feature_histogram(name: str, current: Buckets, reference: Buckets) -> FeatureHistogram | None:
    """The per-bin histogram of one feature; None (the feature is invalid) when the
    bucket sets differ or cumulative counts decrease."""
    if current.bounds != reference.bounds:
        return None
    cur, ref = _per_bin(current), _per_bin(reference)
    if cur is None or ref is None or not cur or len(cur) > 500:
        return None
    return FeatureHistogram(name=name, reference=ref, current=cur)


# --------------------------------------------------------------------------- errors and conditions


def truncate_utf8(text: str, limit: int = MAX_ERROR_BYTES) -> str:
    """At most ``limit`` bytes of ``text`` in UTF-8, never cutting a character."""
    raw = text.encode("utf-8")
    if len(raw) <= limit:
        return text
    return raw[:limit].decode("utf-8", errors="ignore")


def classify_http(status: int, body: object) -> Failure:
    """A non-success answer of Prometheus → a failure reason and a message.

    The message holds at most 256 bytes of Prometheus's JSON ``error`` field
    and never the response body (the URL is the user's; the condition is read
    by others). 401/403 → Forbidden; 400/422 with an ``error`` → QueryError;
    503 with ``errorType: timeout`` → Timeout; anything else → HTTPError.
    """
    error = ""
    error_type = ""
    if isinstance(body, Mapping):
        error = str(body.get("error") or "")
        error_type = str(body.get("errorType") or "")
    message = truncate_utf8(error) if error else f"HTTP {status}"
    if status in (401, 403):
        return Failure("Forbidden", message)
    if error_type == "timeout":
        return Failure("Timeout", message)
    if status in (400, 422) and error:
        return Failure("QueryError", message)
    return Failure("HTTPError", message if error else f"HTTP {status}")


@dataclass(frozen=True)
class ConditionChange:
    """The MetricsAvailable change to write (None fields: nothing to write/post)."""

    conditions: list[Condition] | None
    event_reason: str | None = None
    event_message: str = ""
    event_type: Literal["Normal", "Warning"] = "Normal"


def metrics_condition(
    conditions: list[Condition], failure: Failure | None, now: datetime, generation: int | None = None
) -> ConditionChange:
    """The MetricsAvailable condition after a poll: True (reason Pulled) or False with the failure's reason.

    Written only when status, reason or message change; an Event only when the
    reason changes (a first True is no event).
    """
    old = get_condition(conditions, CONDITION_TYPE)
    if failure is None:
        status, reason, message = True, "Pulled", ""
    else:
        status, reason, message = False, failure.reason, truncate_utf8(failure.message)
    wire = "True" if status else "False"
    if old is not None and (old.status, old.reason, old.message) == (wire, reason, message):
        return ConditionChange(None)
    new = set_condition(conditions, CONDITION_TYPE, status, reason, message, now, generation)
    if old is None and status:
        return ConditionChange(new)
    if old is not None and old.reason == reason:
        return ConditionChange(new)
    text = f"metrics available again ({reason})" if status else f"metrics unavailable: {reason}"
    if message:
        text += f": {message}"
    return ConditionChange(new, reason, text, "Normal" if status else "Warning")


def unix(dt: datetime) -> float:
    return (dt if dt.tzinfo else dt.replace(tzinfo=UTC)).timestamp()
