"""The lifecycle state machine (docs/registeredmodel.md), pure and clock-free."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from modelreg.api.models import (
    Approval,
    PerformanceSnapshotSpec,
    RegisteredModelSpec,
    RegisteredModelStatus,
)
from modelreg.core.conditions import get_condition
from modelreg.core.evaluation import evaluate
from modelreg.core.lifecycle.annotations import RETRY_ANNOTATION, ROLLBACK_ANNOTATION
from modelreg.core.lifecycle.reconcile import reconcile
from modelreg.core.lifecycle.rollback import rollback
from modelreg.core.lifecycle.snapshots import apply_snapshot
from modelreg.core.lifecycle.stages import ModelPlan, VersionView
from modelreg.core.policy import Defaults, effective_policy

T0 = datetime(2026, 11, 20, 10, 0, tzinfo=UTC)
DIGEST = "sha256:" + "ab" * 32
DEFAULTS = Defaults()


def spec(version: str = "1.0.0", **kw: object) -> RegisteredModelSpec:
    base: dict = {
        "modelName": "fraud",
        "version": version,
        "artifact": {"uri": f"s3://m/{version}", "digest": DIGEST},
        "targetStage": "Production",
        "approvals": [{"by": "alice"}],
        "promotionPolicy": {"minSandboxDuration": "10m", "minHealthySnapshots": 0},
    }
    base.update(kw)
    return RegisteredModelSpec.model_validate(base)


def view(
    name: str,
    s: RegisteredModelSpec,
    status: RegisteredModelStatus | None = None,
    *,
    created: datetime = T0,
    annotations: dict | None = None,
) -> VersionView:
    return VersionView(
        name=name,
        created=created,
        generation=1,
        spec=s,
        status=status or RegisteredModelStatus(),
        annotations=annotations or {},
    )


def run(views: list[VersionView], now: datetime) -> tuple[list[VersionView], ModelPlan]:
    plan = reconcile(views, DEFAULTS, now)
    return [VersionView(**{**v.__dict__, "status": plan.statuses[v.name]}) for v in views], plan


def cond(status: RegisteredModelStatus, type_: str) -> tuple[str, str]:
    c = get_condition(status.conditions, type_)
    assert c is not None, type_
    return c.status, c.reason


def promote_to_production(name: str = "v1", version: str = "1.0.0") -> tuple[list[VersionView], datetime]:
    views, _ = run([view(name, spec(version))], T0)
    views, _ = run(views, T0 + timedelta(minutes=11))
    assert views[0].status.stage == "Production"
    return views, T0 + timedelta(minutes=11)


def test_new_version_starts_in_development_and_waits_for_digest() -> None:
    s = spec(artifact={"uri": "s3://m/1"})
    views, plan = run([view("v1", s)], T0)
    st_ = views[0].status
    assert st_.stage == "Development"
    assert st_.gates is not None and st_.gates.pending == ["artifact.digest"]
    assert cond(st_, "GatesPassed") == ("False", "GatesPending")
    assert cond(st_, "Reconciling") == ("True", "Progressing")
    assert [e.reason for e in plan.events] == ["Registered"]


def test_full_promotion_path_with_time_gate_and_no_new_event() -> None:
    views, plan = run([view("v1", spec())], T0)
    st_ = views[0].status
    assert st_.stage == "Sandbox"  # Development → Sandbox at once (digest present)
    assert st_.gates.pending == ["minSandboxDuration"]
    assert plan.requeue_at == T0 + timedelta(minutes=10)  # the operator wakes itself up
    views, _ = run(views, T0 + timedelta(minutes=9))
    assert views[0].status.stage == "Sandbox"
    views, plan = run(views, T0 + timedelta(minutes=10))
    st_ = views[0].status
    assert st_.stage == "Production"
    assert st_.production_since == T0 + timedelta(minutes=10)
    assert [h.stage for h in st_.stage_history] == ["Development", "Sandbox", "Production"]
    assert cond(st_, "Ready") == ("True", "AtTarget")
    assert plan.production == "v1"


def test_approval_required_and_stalled_until_given() -> None:
    s = spec(approvals=None, promotionPolicy={"minSandboxDuration": "0s", "minHealthySnapshots": 0})
    views, _ = run([view("v1", s)], T0)
    st_ = views[0].status
    assert st_.stage == "Sandbox"
    assert st_.gates.pending == ["approval"]
    assert cond(st_, "Stalled") == ("True", "AwaitingApproval")
    approved = view("v1", spec(approvals=[{"by": "bob"}], promotionPolicy={"minSandboxDuration": "0s"}), st_)
    views, _ = run([approved], T0 + timedelta(seconds=1))
    assert views[0].status.stage == "Sandbox"  # minHealthySnapshots default 3 now applies
    assert views[0].status.gates.pending == ["minHealthySnapshots"]


def test_healthy_snapshots_gate_and_critical_restarts_soak() -> None:
    s = spec(promotionPolicy={"minSandboxDuration": "5m", "minHealthySnapshots": 2})
    views, _ = run([view("v1", s)], T0)
    policy = effective_policy(s, DEFAULTS)
    healthy = evaluate(
        PerformanceSnapshotSpec.model_validate(
            {
                "modelRef": {"name": "v1"},
                "sampleCount": 1000,
                "metrics": {"errorRate": 0.001, "oodRate": 0.01},
            }
        ),
        policy.rollback_policy,
    )
    critical = evaluate(
        PerformanceSnapshotSpec.model_validate(
            {"modelRef": {"name": "v1"}, "sampleCount": 1000, "metrics": {"errorRate": 0.5, "oodRate": 0.01}}
        ),
        policy.rollback_policy,
    )
    v = views[0]
    eff = apply_snapshot(v, v.status, policy, healthy, "s1", T0 + timedelta(minutes=1), T0 + timedelta(minutes=1))
    assert eff.status.gates.healthy_snapshots == 1
    t_crit = T0 + timedelta(minutes=4)
    eff = apply_snapshot(v, eff.status, policy, critical, "s2", t_crit, t_crit)
    assert eff.status.gates.healthy_snapshots == 0 and eff.status.gates.sandbox_since == t_crit
    assert not eff.rollback_due  # Sandbox snapshots never roll back
    for i, minute in enumerate((5, 6)):
        t = T0 + timedelta(minutes=minute)
        eff = apply_snapshot(v, eff.status, policy, healthy, f"s{3 + i}", t, t)
    views, _ = run([VersionView(**{**v.__dict__, "status": eff.status})], T0 + timedelta(minutes=8))
    assert views[0].status.stage == "Sandbox"  # soak restarted at minute 4: due at minute 9
    views, _ = run(views, T0 + timedelta(minutes=9))
    assert views[0].status.stage == "Production"


def test_promoting_second_version_archives_first() -> None:
    views, now = promote_to_production()
    v2 = view("v2", spec("2.0.0"), created=now)
    views, plan = run([*views, v2], now)
    views, plan = run(views, now + timedelta(minutes=10))
    by = {v.name: v.status for v in views}
    assert by["v2"].stage == "Production"
    assert by["v1"].stage == "Archived" and by["v1"].archived_at == now + timedelta(minutes=10)
    assert cond(by["v1"], "Ready") == ("True", "Superseded")
    assert {e.reason for e in plan.events} >= {"Archived", "Promoted"}
    # Archived stays put although Git still says targetStage: Production.
    views, plan = run(views, now + timedelta(hours=1))
    assert {v.name: v.status.stage for v in views} == {"v1": "Archived", "v2": "Production"}
    assert plan.events == []


def test_rollback_restores_most_recent_archived_and_stalls() -> None:
    views, now = promote_to_production()
    views, _ = run([*views, view("v2", spec("2.0.0"), created=now)], now)
    views, _ = run(views, now + timedelta(minutes=10))
    statuses = {v.name: v.status.model_copy(deep=True) for v in views}
    out = rollback(statuses, {"v1": "1.0.0", "v2": "2.0.0"}, "v2", now + timedelta(minutes=20), "incident x")
    assert out.reason == "RolledBack" and out.restored == "v1" and out.restored_version == "1.0.0"
    assert statuses["v2"].stage == "RolledBack" and statuses["v2"].rolled_back_to == "1.0.0"
    assert statuses["v1"].stage == "Production"
    views = [VersionView(**{**v.__dict__, "status": statuses[v.name]}) for v in views]
    views, _ = run(views, now + timedelta(minutes=21))
    by = {v.name: v.status for v in views}
    assert by["v2"].stage == "RolledBack"  # never advanced automatically
    assert cond(by["v2"], "Stalled") == ("True", "RolledBack")


def test_rollback_without_archived_sibling_is_no_restore_target() -> None:
    views, now = promote_to_production()
    statuses = {v.name: v.status for v in views}
    out = rollback(statuses, {"v1": "1.0.0"}, "v1", now, "incident")
    assert out.reason == "NoRestoreTarget" and out.restored is None
    assert statuses["v1"].stage == "Production"


def test_manual_rollback_annotation_and_retry_resets_approvals() -> None:
    views, now = promote_to_production()
    views, _ = run([*views, view("v2", spec("2.0.0"), created=now)], now)
    views, _ = run(views, now + timedelta(minutes=10))
    v2 = next(v for v in views if v.name == "v2")
    others = [v for v in views if v.name != "v2"]
    v2 = VersionView(**{**v2.__dict__, "annotations": {ROLLBACK_ANNOTATION: "1"}})
    views, plan = run([*others, v2], now + timedelta(minutes=11))
    by = {v.name: v for v in views}
    assert by["v2"].status.stage == "RolledBack" and by["v1"].status.stage == "Production"
    assert [r.reason for r in plan.rollbacks] == ["RolledBack"]
    # The same annotation value again does nothing.
    views, plan = run(views, now + timedelta(minutes=12))
    assert plan.rollbacks == []
    # Retry: back to Development; the old approval no longer counts.
    v2 = by["v2"]
    v2 = VersionView(**{**v2.__dict__, "annotations": {**v2.annotations, RETRY_ANNOTATION: "a"}})
    views, _ = run([by["v1"], v2], now + timedelta(minutes=13))
    st2 = next(v for v in views if v.name == "v2").status
    assert st2.stage == "Sandbox"  # Development, then Sandbox at once (digest present)
    assert st2.consecutive_breaches == 0 and st2.retry is not None
    assert st2.retry.approvals_before == [Approval(by="alice")]
    views, _ = run(views, now + timedelta(minutes=30))
    st2 = next(v for v in views if v.name == "v2").status
    assert st2.stage == "Sandbox" and "approval" in st2.gates.pending
    assert cond(st2, "Stalled") == ("True", "AwaitingApproval")


def test_demotion_is_immediate_and_leaves_serving_event() -> None:
    views, now = promote_to_production()
    s = spec(
        targetStage="Sandbox",
        serving={"targetRef": {"kind": "Deployment", "name": "api"}, "container": "c", "env": "MODEL_URI"},
    )
    views, plan = run([view("v1", s, views[0].status)], now + timedelta(seconds=1))
    assert views[0].status.stage == "Sandbox"
    assert plan.production is None
    assert {e.reason for e in plan.events} == {"Demoted", "ServingLeftAsIs"}


def test_duplicate_version_newer_is_stalled() -> None:
    a = view("a", spec("1.0.0"), created=T0)
    b = view("b", spec("1.0.0"), created=T0 + timedelta(seconds=5))
    views, _ = run([a, b], T0 + timedelta(seconds=6))
    by = {v.name: v.status for v in views}
    assert by["a"].stage == "Sandbox"
    assert by["b"].stage == "Development"
    assert cond(by["b"], "Stalled") == ("True", "DuplicateVersion")
    assert cond(by["b"], "Ready")[0] == "False"


def test_production_breach_streak_and_trigger() -> None:
    views, now = promote_to_production()
    s = spec(rollbackPolicy={"consecutiveBreaches": 2})
    v = VersionView(**{**views[0].__dict__, "spec": s})
    policy = effective_policy(s, DEFAULTS)
    bad = evaluate(
        PerformanceSnapshotSpec.model_validate(
            {"modelRef": {"name": "v1"}, "sampleCount": 1000, "metrics": {"errorRate": 0.2, "oodRate": 0.01}}
        ),
        policy.rollback_policy,
    )
    good = evaluate(
        PerformanceSnapshotSpec.model_validate(
            {"modelRef": {"name": "v1"}, "sampleCount": 1000, "metrics": {"errorRate": 0.0, "oodRate": 0.0}}
        ),
        policy.rollback_policy,
    )
    few = evaluate(
        PerformanceSnapshotSpec.model_validate(
            {"modelRef": {"name": "v1"}, "sampleCount": 5, "metrics": {"errorRate": 0.9, "oodRate": 0.9}}
        ),
        policy.rollback_policy,
    )
    t = [now + timedelta(seconds=i) for i in range(10)]
    e = apply_snapshot(v, v.status, policy, bad, "s1", t[1], t[1])
    assert e.status.consecutive_breaches == 1 and not e.rollback_due
    e = apply_snapshot(v, e.status, policy, good, "s2", t[2], t[2])
    assert e.status.consecutive_breaches == 0
    e = apply_snapshot(v, e.status, policy, bad, "s3", t[3], t[3])
    e = apply_snapshot(v, e.status, policy, few, "s4", t[4], t[4])  # Inconclusive: skipped
    assert e.status.consecutive_breaches == 1
    e = apply_snapshot(v, e.status, policy, bad, "s5", t[5], t[5])
    assert e.status.consecutive_breaches == 2 and e.rollback_due
    assert cond(e.status, "RollbackTriggered") == ("True", "ConsecutiveBreaches")
    assert e.status.health == "Critical"
    # A redelivered snapshot is never counted twice.
    again = apply_snapshot(v, e.status, policy, bad, "s5", t[5], t[6])
    assert not again.counted and again.status.consecutive_breaches == 2


def test_staleness_makes_production_degraded_and_schedules_recheck() -> None:
    views, now = promote_to_production()
    views, plan = run(views, now + timedelta(minutes=1))
    assert views[0].status.health == "Unknown"
    assert plan.requeue_at == now + timedelta(minutes=15)
    views, _ = run(views, now + timedelta(minutes=16))
    assert views[0].status.health == "Degraded"


def test_invalid_spec_is_stalled_with_field_message() -> None:
    v = VersionView(
        name="bad",
        created=T0,
        generation=2,
        spec=None,
        status=RegisteredModelStatus(),
        spec_error="spec.version: String should match pattern",
    )
    views, _ = run([v], T0)
    st_ = views[0].status
    assert cond(st_, "Stalled") == ("True", "InvalidSpec")
    assert "spec.version" in get_condition(st_.conditions, "Stalled").message


@settings(max_examples=60, deadline=None)
@given(
    targets=st.lists(st.sampled_from(["Development", "Sandbox", "Production"]), min_size=1, max_size=4),
    steps=st.lists(st.integers(min_value=0, max_value=3600), min_size=1, max_size=6),
    digests=st.lists(st.booleans(), min_size=4, max_size=4),
)
def test_at_most_one_production_and_history_bounded(targets: list[str], steps: list[int], digests: list[bool]) -> None:
    views = []
    for i, target in enumerate(targets):
        art = {"uri": f"s3://m/{i}", **({"digest": DIGEST} if digests[i] else {})}
        views.append(
            view(
                f"v{i}",
                spec(
                    f"{i}.0.0",
                    targetStage=target,
                    artifact=art,
                    promotionPolicy={"minSandboxDuration": "0s", "minHealthySnapshots": 0},
                ),
                created=T0 + timedelta(seconds=i),
            )
        )
    now = T0
    for step in steps:
        now = now + timedelta(seconds=step)
        views, plan = run(views, now)
        production = [v.name for v in views if v.status.stage == "Production"]
        assert len(production) <= 1
        assert plan.production == (production[0] if production else None)
        for v in views:
            assert len(v.status.stage_history) <= 50
            assert v.status.stage in ("Development", "Sandbox", "Production", "Archived")
            # Idempotent: a second pass at the same instant changes nothing.
        again = reconcile(views, DEFAULTS, now)
        assert again.changed(views) == {}
        assert again.events == []


def test_half_written_rollback_is_completed() -> None:
    """Killed after writing the RolledBack version but before the restore: finished on the next look."""
    views, now = promote_to_production()
    views, _ = run([*views, view("v2", spec("2.0.0"), created=now)], now)
    views, _ = run(views, now + timedelta(minutes=10))
    statuses = {v.name: v.status.model_copy(deep=True) for v in views}
    rollback(statuses, {"v1": "1.0.0", "v2": "2.0.0"}, "v2", now + timedelta(minutes=20), "incident")
    # Only v2's status reached the API server; v1 still reads Archived.
    half = [VersionView(**{**v.__dict__, "status": statuses["v2"] if v.name == "v2" else v.status}) for v in views]
    assert {v.name: v.status.stage for v in half} == {"v1": "Archived", "v2": "RolledBack"}
    views, plan = run(half, now + timedelta(minutes=21))
    assert {v.name: v.status.stage for v in views} == {"v1": "Production", "v2": "RolledBack"}
    assert [r.restored for r in plan.rollbacks] == ["v1"]
    # ... and not again.
    _, plan = run(views, now + timedelta(minutes=22))
    assert plan.rollbacks == []


def test_demoted_restore_is_not_re_promoted() -> None:
    views, now = promote_to_production()
    views, _ = run([*views, view("v2", spec("2.0.0"), created=now)], now)
    views, _ = run(views, now + timedelta(minutes=10))
    statuses = {v.name: v.status.model_copy(deep=True) for v in views}
    rollback(statuses, {"v1": "1.0.0", "v2": "2.0.0"}, "v2", now + timedelta(minutes=20), "incident")
    views = [VersionView(**{**v.__dict__, "status": statuses[v.name]}) for v in views]
    v1 = next(v for v in views if v.name == "v1")
    demoted = VersionView(**{**v1.__dict__, "spec": spec("1.0.0", targetStage="Sandbox")})
    views, _ = run([demoted, *[v for v in views if v.name != "v1"]], now + timedelta(minutes=21))
    assert {v.name: v.status.stage for v in views} == {"v1": "Sandbox", "v2": "RolledBack"}
    views, plan = run(views, now + timedelta(minutes=22))
    assert {v.name: v.status.stage for v in views} == {"v1": "Sandbox", "v2": "RolledBack"}
    assert plan.rollbacks == []


def test_a_rollback_triggered_and_done_in_one_pass_is_one_event_per_version() -> None:
    from modelreg.core.lifecycle.rollback import fold_rollback_events
    from modelreg.core.lifecycle.stages import Event

    events = [
        Event("v2", "Warning", "RollbackTriggered", "incident i-1 (high): errorRate 0.1 > 0.05"),
        Event("v3", "Warning", "RollbackTriggered", "incident i-2 (medium): latency"),
        Event("v2", "Warning", "RolledBack", "rolled back to v1"),
        Event("v1", "Normal", "Restored", "returned to Production: rolled back to v1"),
    ]
    out = fold_rollback_events(events)
    assert [(e.object_name, e.reason) for e in out] == [
        ("v3", "RollbackTriggered"),  # not rolled back in this pass: kept
        ("v2", "RolledBack"),
        ("v1", "Restored"),
    ]
    assert "incident i-1" in out[1].message and "rolled back to v1" in out[1].message
    assert fold_rollback_events(out) == out


def test_two_versions_found_in_production_keep_the_one_promoted_last() -> None:
    """A killed operator's in-flight write can land after its successor promoted another
    version: the next reconcile archives the one that entered Production earlier."""
    old = RegisteredModelStatus(stage="Production", production_since=T0)
    new = RegisteredModelStatus(stage="Production", production_since=T0 + timedelta(minutes=1))
    dup = RegisteredModelStatus()  # a duplicate of v1's version, never promoted
    views = [
        view("v1", spec("1.0.0"), old),
        view("v1-dup", spec("1.0.0"), dup, created=T0 + timedelta(seconds=1)),
        view("v2", spec("2.0.0"), new, created=T0 + timedelta(seconds=2)),
    ]
    views, plan = run(views, T0 + timedelta(minutes=2))
    stages = {v.name: v.status.stage for v in views}
    assert [n for n, s in stages.items() if s == "Production"] == ["v2"]
    assert stages["v1"] == "Archived" and views[0].status.stage_history[-1].reason == "Superseded"
    assert ("v1", "Archived") in {(e.object_name, e.reason) for e in plan.events}
    # Without production_since, the newer object wins (the hypothesis case that found it).
    views = [
        view("m-1", spec("1.0.0"), RegisteredModelStatus(stage="Production")),
        view("m-2", spec("2.0.0"), RegisteredModelStatus(stage="Production"), created=T0 + timedelta(seconds=1)),
    ]
    views, _ = run(views, T0)
    assert [v.name for v in views if v.status.stage == "Production"] == ["m-2"]
