"""Incident decisions (docs/incidents.md): one per episode, deterministic names, counting once."""

from __future__ import annotations

from datetime import UTC, datetime

from modelreg.api.models import IncidentStatus, PerformanceSnapshotSpec, RegisteredModelSpec
from modelreg.controller.applier import merge_diff
from modelreg.core import incidents as inc
from modelreg.core.evaluation import evaluate
from modelreg.core.policy import Defaults, effective_policy

NOW = datetime(2026, 11, 20, 10, 5, tzinfo=UTC)
SPEC = RegisteredModelSpec.model_validate(
    {"modelName": "fraud-detector", "version": "3.1.0", "artifact": {"uri": "s3://x"}}
)
POLICY = effective_policy(SPEC, Defaults())


def ev(**metrics: float):
    return evaluate(
        PerformanceSnapshotSpec.model_validate({"modelRef": {"name": "m"}, "sampleCount": 12000, "metrics": metrics}),
        POLICY.rollback_policy,
    )


def decide(evaluation, *, stage="Production", due=True, episode=None, restore="3.0.2", policy=POLICY):
    return inc.decide(
        namespace="risk",
        registered_model="fraud-detector-3-1-0",
        spec=SPEC,
        policy=policy,
        stage=stage,
        evaluation=evaluation,
        rollback_due=due,
        snapshot_name="snap-1",
        snapshot_uid="uid-1",
        episode=episode,
        restore_version=restore,
    )


def test_create_names_labels_and_spec() -> None:
    d = decide(ev(errorRate=0.0668, oodRate=0.2167))
    assert isinstance(d, inc.CreateIncident)
    assert d.name == inc.incident_name("fraud-detector-3-1-0", "uid-1")
    assert d.name.startswith("fraud-detector-3-1-0-") and len(d.name) == len("fraud-detector-3-1-0-") + 8
    assert d.labels == {
        "modelreg.io/model-name": "fraud-detector",
        "modelreg.io/version": "3.1.0",
        "modelreg.io/registered-model": "fraud-detector-3-1-0",
    }
    assert d.spec.severity == "high"
    assert d.spec.summary == "fraud-detector 3.1.0: errorRate 0.0668 > 0.05, oodRate 0.2167 > 0.2"
    assert d.spec.restore_version == "3.0.2"
    assert d.spec.dedup_key == "risk/fraud-detector/3.1.0/performance"
    assert d.spec.playbook == "model_rollback"
    assert d.spec.trigger.snapshot == "snap-1"


def test_same_snapshot_uid_same_name() -> None:
    assert inc.incident_name("a", "u") == inc.incident_name("a", "u") != inc.incident_name("a", "v")


def test_open_episode_counts_instead_of_creating() -> None:
    episode = inc.EpisodeIncident(name="x", phase="Open", snapshots=("snap-0",))
    assert decide(ev(errorRate=0.07), episode=episode) == inc.CountIncident("x")
    counted = inc.EpisodeIncident(name="x", phase="Open", snapshots=("snap-1",))
    assert decide(ev(errorRate=0.07), episode=counted) is None


def test_no_incident_when_not_due_or_not_production_or_disabled() -> None:
    assert decide(ev(errorRate=0.07), due=False) is None
    assert decide(ev(errorRate=0.07), stage="Sandbox") is None
    disabled = effective_policy(SPEC.model_copy(update={"rollback_policy": None}), Defaults(mode="Disabled"))
    assert decide(ev(errorRate=0.07), policy=disabled) is None
    assert decide(ev(errorRate=0.01)) is None


def test_warning_incident_only_when_enabled() -> None:
    warn = ev(errorRate=0.045)
    assert warn.verdict == "Degraded"
    assert decide(warn, due=False) is None
    on = effective_policy(SPEC, Defaults(incident_on_warning=True))
    d = decide(warn, due=False, policy=on)
    assert isinstance(d, inc.CreateIncident) and d.spec.severity == "low"


def test_counted_status_is_idempotent_and_bounded() -> None:
    st = inc.opened_status("s0", NOW)
    for i in range(1, 30):
        st = inc.counted_status(st, f"s{i}", NOW) or st
    assert st.occurrences == 30
    assert len(st.snapshots) == 20 and st.snapshots[-1] == "s29"
    assert inc.counted_status(st, "s29", NOW) is None


def test_phase_defaults_to_open() -> None:
    assert inc.phase_of(None) == "Open" and inc.is_open({})
    assert not inc.is_open({"phase": "Remediated"})


def test_merge_diff_nulls_removed_keys_and_replaces_lists() -> None:
    old = {"a": 1, "b": {"c": 1, "d": 2}, "e": [1, 2], "f": 1}
    new = {"a": 1, "b": {"c": 1}, "e": [2]}
    assert merge_diff(old, new) == {"b": {"d": None}, "e": [2], "f": None}
    assert merge_diff(new, new) == {}


def test_counting_into_an_incident_keeps_what_others_wrote() -> None:
    """The CI failure of 2026-11-30: an Incident whose status held only a user's condition.

    Counting the second snapshot rebuilt the status from scratch and the merge patch
    replaced ``conditions`` with an empty list, dropping the user's Acknowledged.
    """
    user_condition = {"type": "Acknowledged", "status": "True", "reason": "OnCall", "message": "n=3"}
    body = {
        "metadata": {"creationTimestamp": "2026-11-30T04:00:00Z", "resourceVersion": "7"},
        "spec": {"trigger": {"snapshot": "s0"}},
        "status": {"conditions": [user_condition]},
    }
    counted = inc.count_into(body, ["s1"], NOW)
    assert counted is not None
    assert counted.occurrences == 2 and counted.snapshots == ["s0", "s1"] and counted.phase == "Open"
    assert counted.first_seen == datetime(2026, 11, 30, 4, 0, tzinfo=UTC)
    old = IncidentStatus.model_validate(body["status"]).wire()
    patch = merge_diff(old, counted.wire())
    assert "conditions" not in patch, "counting must not write another writer's conditions back"
    assert set(patch) == {"phase", "occurrences", "snapshots", "firstSeen", "lastSeen"}
    # The trigger is counted once already; counting it again changes nothing.
    assert inc.count_into(body, ["s0"], NOW) is None


def test_counting_several_snapshots_at_once_counts_each_new_one_in_order() -> None:
    body = {"metadata": {"creationTimestamp": "2026-11-30T04:00:00Z"}, "spec": {"trigger": {"snapshot": "s0"}}}
    counted = inc.count_into(body, ["s1", "s0", "s2", "s1"], NOW)
    assert counted is not None and counted.occurrences == 3 and counted.snapshots == ["s0", "s1", "s2"]
