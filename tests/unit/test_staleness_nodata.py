"""docs/evaluation.md: a stream of Inconclusive snapshots goes stale like silence; pulled windows with no data."""

from __future__ import annotations

from datetime import timedelta

from modelreg.api.models import PerformanceSnapshotSpec, RegisteredModelSpec
from modelreg.core.evaluation import evaluate
from modelreg.core.health import classify_health
from modelreg.core.lifecycle.snapshots import apply_snapshot
from modelreg.core.lifecycle.stages import VersionView
from modelreg.core.policy import Defaults, effective_policy
from tests.unit.test_lifecycle import DEFAULTS, promote_to_production, run, spec


def snap(sample_count: int, metrics: dict | None = None, **extra: object) -> PerformanceSnapshotSpec:
    doc: dict = {"modelRef": {"name": "v1"}, "sampleCount": sample_count, **extra}
    if metrics is not None:
        doc["metrics"] = metrics
    return PerformanceSnapshotSpec.model_validate(doc)


def test_inconclusive_stream_goes_stale_in_production() -> None:
    views, now = promote_to_production()
    v = views[0]
    policy = effective_policy(spec(), DEFAULTS)
    healthy = evaluate(snap(1000, {"errorRate": 0.0, "oodRate": 0.0}), policy.rollback_policy)
    few = evaluate(snap(5, {"errorRate": 0.0, "oodRate": 0.0}), policy.rollback_policy)
    assert healthy.verdict == "Healthy" and few.verdict == "Inconclusive"
    e = apply_snapshot(v, v.status, policy, healthy, "s0", now, now)
    assert e.status.health == "Healthy"
    status = e.status
    # One Inconclusive snapshot a minute for 20 minutes: the last conclusive one is 20 minutes old.
    for minute in range(1, 21):
        at = now + timedelta(minutes=minute)
        status = apply_snapshot(v, status, policy, few, f"s{minute}", at, at).status
    assert status.last_snapshot is not None and status.last_snapshot.name == "s20"
    assert status.health == "Degraded"
    c = next(c for c in status.conditions if c.type == "Degraded")
    assert c.status == "True" and "no conclusive snapshot since" in c.message


def test_inconclusive_stream_does_not_move_the_stale_recheck() -> None:
    views, now = promote_to_production()
    v = views[0]
    policy = effective_policy(spec(), DEFAULTS)
    few = evaluate(snap(5, {"errorRate": 0.0}), policy.rollback_policy)
    later = now + timedelta(minutes=10)
    status = apply_snapshot(v, v.status, policy, few, "s1", later, later).status
    assert status.health == "Unknown"
    # Staleness still counts from productionSince, not from the Inconclusive snapshot.
    views, plan = run([VersionView(**{**v.__dict__, "status": status})], later)
    assert plan.requeue_at == now + timedelta(minutes=15)
    views, _ = run(views, now + timedelta(minutes=15))
    assert views[0].status.health == "Degraded"


def test_health_counts_staleness_from_the_conclusive_time_only() -> None:
    now = promote_to_production()[1]
    r = classify_health(
        stage="Production",
        last_conclusive_verdict="Healthy",
        last_snapshot_at=now,
        production_since=now - timedelta(hours=1),
        stale_after=timedelta(minutes=15),
        now=now + timedelta(minutes=15),
    )
    assert r.health == "Degraded" and r.stale


def test_nodata_sample_count_is_inconclusive_whatever_min_samples() -> None:
    rb = effective_policy(
        RegisteredModelSpec.model_validate(
            {"modelName": "m", "version": "1", "artifact": {"uri": "s3://m"}, "rollbackPolicy": {"minSamples": 0}}
        ),
        Defaults(),
    ).rollback_policy
    spec_ = snap(0, {"errorRate": 0.9}, source={"metricSource": "prom", "noData": ["sampleCount", "errorCount"]})
    e = evaluate(spec_, rb)
    assert e.verdict == "Inconclusive"
    assert e.reason.startswith("NoData") and "prom" in e.reason
    assert not e.breaches


def test_nodata_of_another_field_is_only_missing() -> None:
    spec_ = snap(
        1000,
        {"errorRate": 0.0},
        source={"metricSource": "prom", "noData": ["oodCount"], "queries": {"sampleCount": "sum(x)"}},
    )
    e = evaluate(spec_, effective_policy(spec(), DEFAULTS).rollback_policy)
    assert e.verdict == "Healthy"
    assert "oodRate" in e.missing
