"""One poll of a MetricSource for one version, planned without I/O (docs/metricsource.md).

The poller in :mod:`modelreg.controller.poller` runs what this module decides:

1. :func:`window_for` — whether the version is polled now, and for which window;
2. :func:`plan_poll` — from the MetricSource, the version, the window and the cache of
   reference histograms: the queries to render (or why the window fails before any);
3. :func:`next_step` — given the answers so far: the next batch of queries to run, or the
   :class:`PollDecision` (the snapshot to create under its one name per window, or the
   failure that keeps it from being written);
4. :func:`condition_write` / :func:`drop_condition` — the ``MetricsAvailable`` write;
   :func:`probe_spec` / :func:`probe_status` — a MetricSource's probe.

Value rules, templates and buckets are :mod:`modelreg.core.metricsource`'s.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from pydantic import ValidationError

from modelreg import API_VERSION
from modelreg.api.models import Condition, EffectiveMonitoring, MetricSourceSpec
from modelreg.core import metricsource as ms
from modelreg.core import timefmt
from modelreg.core.conditions import get_condition, set_condition
from modelreg.core.durations import parse_duration
from modelreg.core.incidents import LABEL_REGISTERED_MODEL

JSON = dict[str, Any]
#: A reference histogram's cache key: (namespace, Prometheus URL, rendered query, end).
ReferenceKey = tuple[str, str, str, int]
#: What one query answered: a value (:func:`ms.parse_result`) or buckets (:func:`ms.parse_buckets`).
Answer = ms.Result | ms.Buckets | ms.Failure

LABEL_SOURCE = "modelreg.io/metric-source"


def iso(ts: float) -> str:
    """Unix seconds as RFC 3339 UTC, to the second."""
    return timefmt.rfc3339(datetime.fromtimestamp(ts, UTC), "seconds")


# --------------------------------------------------------------------------- the window


@dataclass(frozen=True)
class Timing:
    """A version's polling period, window and evaluation delay, in seconds."""

    interval: int
    window: int
    delay: int


def window_for(
    monitoring: EffectiveMonitoring | None, stage: str, stage_since: float | None, now: float
) -> tuple[Timing, ms.WindowPlan] | None:
    """The version's timing and current window; None when it is not polled (no monitoring,
    or its stage is not one of ``monitoring.stages``)."""
    if monitoring is None or stage not in monitoring.stages:
        return None
    timing = Timing(
        interval=int(parse_duration(monitoring.interval).total_seconds()),
        window=int(parse_duration(monitoring.window).total_seconds()),
        delay=int(parse_duration(monitoring.evaluation_delay).total_seconds()),
    )
    plan = ms.plan_window(
        now=now, interval=timing.interval, window=timing.window, delay=timing.delay, stage_since=stage_since
    )
    return timing, plan


# --------------------------------------------------------------------------- the queries


@dataclass(frozen=True)
class Version:
    """The monitored version, as the snapshot and the templates name it."""

    namespace: str
    name: str  # the RegisteredModel object
    model_name: str
    version: str
    uid: str = ""


@dataclass(frozen=True)
class Query:
    field: str  # its key in the snapshot's spec.source.queries
    promql: str
    at: int  # evaluation time, Unix seconds
    buckets: bool = False  # a featureHistogram query (``le`` buckets), else one value
    #: Set on a reference histogram: keep its buckets once they parse (a past window does not move).
    cache_key: ReferenceKey | None = None


@dataclass(frozen=True)
class FeatureQueries:
    feature: str
    current: Query
    reference: Query | None  # None: no driftReference, so the feature has no data
    cached: ms.Buckets | None = None  # the reference's buckets, already known


@dataclass(frozen=True)
class PollPlan:
    """What one poll of ``version`` asks ``source`` for window ``window``."""

    version: Version
    source_name: str
    window: ms.WindowPlan
    source: MetricSourceSpec | None = None
    failure: ms.Failure | None = None  # the window fails before any query
    values: tuple[Query, ...] = ()
    features: tuple[FeatureQueries, ...] = ()
    unqueried: tuple[str, ...] = ()  # monitored features the source has no featureHistogram query for


@dataclass(frozen=True)
class QueryBatch:
    queries: tuple[Query, ...]
    concurrent: bool  # value queries run together; a feature's current then its reference


@dataclass(frozen=True)
class PollDecision:
    """The snapshot to create, or the failure that keeps the window from being written."""

    snapshot: JSON | None = None
    failure: ms.Failure | None = None


def plan_poll(
    version: Version,
    monitoring: EffectiveMonitoring,
    source: JSON | None,
    window: ms.WindowPlan,
    references: Mapping[ReferenceKey, ms.Buckets],
) -> PollPlan:
    """The queries of one window, rendered; or the failure (SourceNotFound, SourceNotReady) before any."""
    ns, source_name = version.namespace, monitoring.source_ref.name
    empty = PollPlan(version, source_name, window)
    if source is None:
        return _failed(empty, "SourceNotFound", f"MetricSource {source_name} not found in {ns}")
    try:
        src = MetricSourceSpec.model_validate(source.get("spec") or {})
    except ValidationError as err:
        return _failed(empty, "SourceNotReady", f"MetricSource {source_name}: {err.errors()[0]['msg']}")
    problems = ms.template_problems(src.queries)
    if problems:
        return _failed(empty, "SourceNotReady", f"MetricSource {source_name}: InvalidTemplate: {problems[0]}")
    values = {
        "namespace": ns,
        "modelName": version.model_name,
        "version": version.version,
        "registeredModel": version.name,
    }
    fields = {k: v for k, v in ms.query_fields(src.queries).items() if k != "featureHistogram"}
    queries = tuple(
        Query(f, ms.render(t, values, window_seconds=window.window, field_name=f), window.t) for f, t in fields.items()
    )
    features: list[FeatureQueries] = []
    unqueried: tuple[str, ...] = ()
    template = src.queries.feature_histogram
    if monitoring.features and template:
        features = [
            _feature(feature, template, values, monitoring, src, window, ns, references)
            for feature in monitoring.features
        ]
    elif monitoring.features:
        unqueried = tuple(monitoring.features)
    return PollPlan(version, source_name, window, src, None, queries, tuple(features), unqueried)


def _failed(plan: PollPlan, reason: str, message: str) -> PollPlan:
    return PollPlan(plan.version, plan.source_name, plan.window, failure=ms.Failure(reason, message))


def _feature(
    feature: str,
    template: str,
    values: Mapping[str, str],
    monitoring: EffectiveMonitoring,
    src: MetricSourceSpec,
    window: ms.WindowPlan,
    ns: str,
    references: Mapping[ReferenceKey, ms.Buckets],
) -> FeatureQueries:
    current = Query(
        f"feature:{feature}",
        ms.render(
            template, {**values, "feature": feature}, window_seconds=window.window, field_name="featureHistogram"
        ),
        window.t,
        buckets=True,
    )
    ref = monitoring.drift_reference
    if ref is None:
        return FeatureQueries(feature, current, None)
    ref_end = int(ref.end.timestamp())
    ref_window = max(1, ref_end - int(ref.start.timestamp()))
    ref_values = {**values, "feature": feature, "version": ref.version or values["version"]}
    ref_q = ms.render(template, ref_values, window_seconds=ref_window, field_name="featureHistogram")
    key: ReferenceKey = (ns, src.prometheus.url, ref_q, ref_end)
    reference = Query(f"reference:{feature}", ref_q, ref_end, buckets=True, cache_key=key)
    return FeatureQueries(feature, current, reference, references.get(key))


# --------------------------------------------------------------------------- the answers


def next_step(plan: PollPlan, answers: Mapping[str, Answer]) -> QueryBatch | PollDecision:
    """The next queries to run, or the decision once the answers suffice.

    Values first, all together; a failure among them ends the window. Then each
    feature in turn, its current histogram before its reference (unless cached); the
    first feature whose answer fails ends the window before the next is asked.
    A query that could not be answered at all (the source unreachable, a timeout, an
    HTTP error) ends the window in the poller, with that failure.
    """
    if plan.failure is not None:
        return PollDecision(failure=plan.failure)
    missing = tuple(q for q in plan.values if q.field not in answers)
    if missing:
        return QueryBatch(missing, concurrent=True)
    outcome = ms.snapshot_values({q.field: _value(answers[q.field]) for q in plan.values})
    if outcome.failure is not None:
        return PollDecision(failure=outcome.failure)
    histograms: list[JSON] = []
    for fq in plan.features:
        wanted = (fq.current, fq.reference if fq.cached is None else None)
        todo = tuple(q for q in wanted if q is not None and q.field not in answers)
        if todo:
            return QueryBatch(todo, concurrent=False)
        current = answers[fq.current.field]
        reference: Answer = ms.NO_DATA
        if fq.cached is not None:
            reference = fq.cached
        elif fq.reference is not None:
            reference = answers[fq.reference.field]
        failure = _feature_failure(fq.feature, current, reference)
        if failure is not None:
            return PollDecision(failure=failure)
        if current is ms.NO_DATA or reference is ms.NO_DATA:
            outcome.no_data.append(fq.current.field)
            continue
        hist = None
        if isinstance(current, ms.Buckets) and isinstance(reference, ms.Buckets):
            hist = ms.feature_histogram(fq.feature, current, reference)
        if hist is None:
            outcome.invalid.append(fq.current.field)
            continue
        histograms.append(hist.wire())
    outcome.invalid.extend(f"feature:{f}" for f in plan.unqueried)
    return PollDecision(snapshot=snapshot_body(plan, outcome, histograms))


def _value(answer: Answer) -> ms.Result | ms.Failure:
    assert not isinstance(answer, ms.Buckets), "a value query is parsed as one value"
    return answer


def _feature_failure(feature: str, current: Answer, reference: Answer) -> ms.Failure | None:
    for part in (current, reference):
        if isinstance(part, ms.Failure):
            return part
        if isinstance(part, ms.Ambiguous):
            return ms.Failure(
                "AmbiguousQuery",
                f"queries.featureHistogram ({feature}) returned {part.series} series "
                "that differ in labels other than le",
            )
    return None


def rendered(plan: PollPlan) -> dict[str, str]:
    """``spec.source.queries``: every query of the plan by field, references included."""
    out = {q.field: q.promql for q in plan.values}
    for fq in plan.features:
        out[fq.current.field] = fq.current.promql
        if fq.reference is not None:
            out[fq.reference.field] = fq.reference.promql
    return out


def snapshot_body(plan: PollPlan, outcome: ms.SnapshotValues, features: list[JSON]) -> JSON:
    """The PerformanceSnapshot of the window, named ``<registered model>-<t>`` (one per window)."""
    v, w = plan.version, plan.window
    source: JSON = {"metricSource": plan.source_name, "queries": rendered(plan)}
    if outcome.no_data:
        source["noData"] = outcome.no_data
    if outcome.invalid:
        source["invalid"] = outcome.invalid
    spec: JSON = {
        "modelRef": {"name": v.name},
        "window": {"start": iso(w.t - w.window), "end": iso(w.t)},
        "sampleCount": outcome.sample_count,
        "source": source,
    }
    if outcome.metrics:
        spec["metrics"] = outcome.metrics
    if features:
        spec["drift"] = {"features": features}
    return {
        "apiVersion": API_VERSION,
        "kind": "PerformanceSnapshot",
        "metadata": {
            "name": ms.snapshot_name(v.name, w.t),
            "namespace": v.namespace,
            "labels": {LABEL_SOURCE: plan.source_name, LABEL_REGISTERED_MODEL: ms.label_value(v.name)},
            "ownerReferences": [{"apiVersion": API_VERSION, "kind": "RegisteredModel", "name": v.name, "uid": v.uid}],
        },
        "spec": spec,
    }


# --------------------------------------------------------------------------- MetricsAvailable


@dataclass(frozen=True)
class ConditionWrite:
    """A server-side apply of ``MetricsAvailable`` alone, and the Event its change calls for."""

    patch: JSON
    change: ms.ConditionChange


def condition_write(ns: str, name: str, body: JSON, failure: ms.Failure | None, now: datetime) -> ConditionWrite | None:
    """The condition after a poll of ``body`` (a RegisteredModel); None when it would not change."""
    raw = (body.get("status") or {}).get("conditions") or []
    conditions = [Condition.model_validate(c) for c in raw if c.get("type") == ms.CONDITION_TYPE]
    change = ms.metrics_condition(conditions, failure, now, body["metadata"].get("generation"))
    if change.conditions is None:
        return None
    cond = get_condition(change.conditions, ms.CONDITION_TYPE)
    assert cond is not None
    patch = {
        "apiVersion": API_VERSION,
        "kind": "RegisteredModel",
        "metadata": {"name": name, "namespace": ns},
        "status": {"conditions": [cond.wire()]},
    }
    return ConditionWrite(patch, change)


def drop_condition(body: JSON | None) -> list[JSON] | None:
    """The JSON patch removing ``MetricsAvailable`` (testing its index first); None if it is absent."""
    conditions = ((body or {}).get("status") or {}).get("conditions") or []
    index = next((i for i, c in enumerate(conditions) if c.get("type") == ms.CONDITION_TYPE), None)
    if index is None:
        return None
    return [
        {"op": "test", "path": f"/status/conditions/{index}/type", "value": ms.CONDITION_TYPE},
        {"op": "remove", "path": f"/status/conditions/{index}"},
    ]


# --------------------------------------------------------------------------- the probe


def probe_spec(body: JSON) -> MetricSourceSpec | ms.Failure:
    """The MetricSource's spec to probe with, or why it cannot be probed (InvalidSpec, InvalidTemplate)."""
    try:
        src = MetricSourceSpec.model_validate(body.get("spec") or {})
    except ValidationError as err:
        e = err.errors()[0]
        return ms.Failure("InvalidSpec", f"spec.{'.'.join(str(p) for p in e['loc'])}: {e['msg']}")
    problems = ms.template_problems(src.queries)
    if problems:
        return ms.Failure("InvalidTemplate", "; ".join(problems))
    return src


def probe_answer(outcome: ms.Result) -> ms.Failure | None:
    """``vector(1)`` must answer 1."""
    return None if outcome == ms.Sample(1.0) else ms.Failure("QueryError", "vector(1) did not answer 1")


def probe_status(body: JSON, failure: ms.Failure | None, now: datetime) -> JSON:
    """The MetricSource's status after a probe: Ready, ``lastProbe`` and observedGeneration."""
    raw = (body.get("status") or {}).get("conditions") or []
    conditions = [Condition.model_validate(c) for c in raw]
    if failure is None:
        conditions = set_condition(conditions, "Ready", True, "Probed", "vector(1) answered", now)
    else:
        conditions = set_condition(conditions, "Ready", False, failure.reason, ms.truncate_utf8(failure.message), now)
    return {
        "observedGeneration": body["metadata"].get("generation"),
        "conditions": [c.wire() for c in conditions],
        "lastProbe": {
            "at": iso(now.timestamp()),
            "ok": failure is None,
            "message": "vector(1) answered" if failure is None else f"{failure.reason}: {failure.message}"[:1024],
        },
    }
