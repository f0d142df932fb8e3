"""Serving decisions (docs/serving.md), pure: desired state per workload, the write, canary transitions."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from modelreg.api.models import CanaryStatus, RegisteredModelSpec, RegisteredModelStatus, Serving
from modelreg.core import canary as canary_rules
from modelreg.core import serving as core
from modelreg.core.policy import Defaults, effective_policy

NOW = datetime(2026, 11, 20, 10, 0, tzinfo=UTC)
ISVC = {"targetRef": {"apiVersion": "serving.kserve.io/v1beta1", "kind": "InferenceService", "name": "fraud"}}
DEP = {"targetRef": {"kind": "Deployment", "name": "api"}, "container": "server", "env": "MODEL_URI"}
KNATIVE = {
    "targetRef": {"apiVersion": "serving.knative.dev/v1", "kind": "Service", "name": "api"},
    "container": "server",
    "env": "MODEL_URI",
}


def t(name: str, stage: str, serving: dict, *, pct: int | None = None, since: int = 0, **kw: Any) -> core.Targeting:
    doc = {**serving, **({"canary": {"trafficPercent": pct}} if pct else {})}
    return core.Targeting(
        name=name,
        version=name.split("-")[-1],
        uri=f"s3://m/{name}",
        stage=stage,
        serving=Serving.model_validate(doc),
        sandbox_since=NOW + timedelta(seconds=since),
        **kw,
    )


def test_one_desired_state_per_workload_with_the_canary_folded_in() -> None:
    got = core.desired_workloads(
        [t("m-1", "Archived", ISVC), t("m-2", "Production", ISVC), t("m-3", "Sandbox", ISVC, pct=10)]
    )
    assert list(got) == [("InferenceService", "fraud")]
    d = got[("InferenceService", "fraud")]
    assert (d.production, d.canary, d.uri, d.percent) == ("m-2", "m-3", "s3://m/m-3", 10)
    assert d.fields() == [(core.STORAGE_URI, "s3://m/m-3"), (core.CANARY_PERCENT, 10)]


def test_no_production_means_nothing_desired_and_no_canary() -> None:
    assert core.desired_workloads([t("m-3", "Sandbox", ISVC, pct=10)]) == {}


def test_failed_canary_and_later_candidates_do_not_run() -> None:
    failed = CanaryStatus(target="InferenceService/fraud", traffic_percent=10, active=False, failed=True)
    got = core.desired_workloads(
        [
            t("m-1", "Production", ISVC),
            t("m-2", "Sandbox", ISVC, pct=10),
        ]
    )
    assert got[("InferenceService", "fraud")].canary == "m-2"
    got = core.desired_workloads(
        [
            t("m-1", "Production", ISVC),
            t("m-2", "Sandbox", ISVC, pct=10, canary=failed),
            t("m-3", "Sandbox", ISVC, pct=20, since=5),
            t("m-4", "Sandbox", ISVC, pct=30, since=9),
        ]
    )
    d = got[("InferenceService", "fraud")]
    assert (d.canary, d.percent) == ("m-3", 20)  # the earliest healthy candidate only


def test_canary_only_on_the_production_versions_workload() -> None:
    other = {"targetRef": {**ISVC["targetRef"], "name": "other"}}
    got = core.desired_workloads([t("m-1", "Production", ISVC), t("m-2", "Sandbox", other, pct=10)])
    assert got[("InferenceService", "fraud")].canary is None


ENV_PATH = core.env_path("server", "MODEL_URI")


def schema_with_containers(**containers_markers: Any) -> dict:
    env = {"type": "array", "x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["name"], "items": {}}
    env["items"] = {"type": "object", "properties": {"name": {"type": "string"}, "value": {"type": "string"}}}
    item = {"type": "object", "properties": {"name": {"type": "string"}, "env": env}}
    containers = {"type": "array", "items": item, **containers_markers}
    pod = {"type": "object", "properties": {"containers": containers}}
    return {
        "type": "object",
        "properties": {
            "spec": {
                "type": "object",
                "properties": {"template": {"type": "object", "properties": {"spec": pod}}},
            }
        },
    }


def test_json_patch_where_the_path_crosses_an_atomic_list_or_unschemed_part() -> None:
    keyed = schema_with_containers(**{"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["name"]})
    assert not core.needs_json_patch(keyed, ENV_PATH)  # Rollout: map lists keyed by name
    assert core.needs_json_patch(schema_with_containers(), ENV_PATH)  # Knative: containers atomic
    assert core.needs_json_patch(schema_with_containers(**{"x-kubernetes-list-type": "atomic"}), ENV_PATH)
    minimal = {
        "type": "object",
        "properties": {
            "spec": {"type": "object", "x-kubernetes-map-type": "atomic", "x-kubernetes-preserve-unknown-fields": True}
        },
    }
    assert core.needs_json_patch(minimal, core.STORAGE_URI)  # KServe's minimal CRD
    preserved = {
        "type": "object",
        "properties": {"spec": {"type": "object", "x-kubernetes-preserve-unknown-fields": True}},
    }
    assert core.needs_json_patch(preserved, core.STORAGE_URI)  # unschemed
    full = {
        "type": "object",
        "properties": {
            "spec": {
                "type": "object",
                "properties": {
                    "predictor": {
                        "type": "object",
                        "properties": {
                            "canaryTrafficPercent": {"type": "integer"},
                            "model": {"type": "object", "properties": {"storageUri": {"type": "string"}}},
                        },
                    }
                },
            }
        },
    }
    assert not core.needs_json_patch(full, core.STORAGE_URI)
    assert not core.needs_json_patch(full, core.CANARY_PERCENT)
    assert core.needs_json_patch(None, core.STORAGE_URI)  # schema unreadable: the careful write


def workload(kind: str = "Deployment", env: list | None = None, annotations: dict | None = None, **spec: Any) -> dict:
    body: dict[str, Any] = {
        "metadata": {
            "name": "api",
            "annotations": {core.OPT_IN_ANNOTATION: "m", **(annotations or {})},
            "managedFields": [],
        },
        "spec": spec
        or {
            "template": {
                "spec": {
                    "containers": [
                        {"name": "side", "env": []},
                        {"name": "server", "env": env if env is not None else [{"name": "MODEL_URI"}]},
                    ]
                }
            }
        },
    }
    return body


def desired(serving: dict, canary: bool = False) -> core.Desired:
    versions = [t("m-1", "Production", serving)] + ([t("m-2", "Sandbox", serving, pct=10)] if canary else [])
    return next(iter(core.desired_workloads(versions).values()))


def test_apply_of_exactly_the_env_entry() -> None:
    w = core.plan_write(desired(DEP), workload(), "m", None, "ns")
    assert w.method == "apply" and not w.force
    assert w.body == {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "api", "namespace": "ns"},
        "spec": {
            "template": {
                "spec": {"containers": [{"name": "server", "env": [{"name": "MODEL_URI", "value": "s3://m/m-1"}]}]}
            }
        },
    }


def test_missing_container_or_env_is_named_and_nothing_written() -> None:
    w = core.plan_write(desired(DEP), workload(env=[{"name": "OTHER"}]), "m", None, "ns")
    assert (w.method, w.reason) == ("refuse", "EnvNotFound")
    assert "env MODEL_URI in container server" in w.message
    body = workload()
    body["spec"]["template"]["spec"]["containers"] = [{"name": "side"}]
    w = core.plan_write(desired(DEP), body, "m", None, "ns")
    assert (w.method, w.reason) == ("refuse", "ContainerNotFound") and "container server" in w.message
    isvc = workload("InferenceService", predictor={"sklearn": {"storageUri": "s3://x"}})
    w = core.plan_write(desired(ISVC), isvc, "m", None, "ns")
    assert (w.method, w.reason) == ("refuse", "FieldNotFound") and "spec.predictor.model" in w.message


def test_not_opted_in_and_rollout_workload_ref_refused() -> None:
    body = workload()
    body["metadata"]["annotations"] = {}
    assert core.plan_write(desired(DEP), body, "m", None, "ns").reason == "NotOptedIn"
    rollout = {**KNATIVE, "targetRef": {"apiVersion": "argoproj.io/v1alpha1", "kind": "Rollout", "name": "api"}}
    w = core.plan_write(desired(rollout), workload(workloadRef={"kind": "Deployment", "name": "x"}), "m", None, "ns")
    assert (w.method, w.reason) == ("refuse", "NotSupported") and "workloadRef" in w.message


def owned_by(body: dict, manager: str, fields: dict) -> dict:
    body["metadata"]["managedFields"].append(
        {"manager": manager, "operation": "Update", "fieldsType": "FieldsV1", "fieldsV1": fields}
    )
    return body


ENV_FIELDS = {
    "f:spec": {
        "f:template": {
            "f:spec": {
                "f:containers": {
                    'k:{"name":"server"}': {".": {}, "f:env": {'k:{"name":"MODEL_URI"}': {".": {}, "f:value": {}}}}
                }
            }
        }
    }
}


def test_field_owned_by_another_manager_is_a_conflict_unless_forced() -> None:
    body = owned_by(workload(env=[{"name": "MODEL_URI", "value": "s3://old"}]), "argocd-controller", ENV_FIELDS)
    w = core.plan_write(desired(DEP), body, "m", None, "ns")
    assert (w.method, w.reason) == ("refuse", "FieldConflict") and "argocd-controller" in w.message
    body["metadata"]["annotations"][core.FORCE_ANNOTATION] = "true"
    w = core.plan_write(desired(DEP), body, "m", None, "ns")
    assert w.method == "apply" and w.force


def test_atomic_list_owned_whole_by_another_manager_is_a_conflict() -> None:
    atomic = {"f:spec": {"f:template": {"f:spec": {"f:containers": {}}}}}
    body = owned_by(workload("Service"), "kubectl-client-side-apply", atomic)
    w = core.plan_write(desired(KNATIVE), body, "m", schema_with_containers(), "ns")
    assert w.reason == "FieldConflict" and "kubectl-client-side-apply" in w.message


def test_json_patch_tests_first_then_writes() -> None:
    body = workload("Service", env=[{"name": "A", "value": "1"}, {"name": "MODEL_URI", "value": "s3://old"}])
    w = core.plan_write(desired(KNATIVE), body, "m", schema_with_containers(), "ns")
    assert w.method == "json-patch"
    assert w.ops == [
        {"op": "test", "path": "/spec/template/spec/containers/1/name", "value": "server"},
        {"op": "test", "path": "/spec/template/spec/containers/1/env/1/name", "value": "MODEL_URI"},
        {"op": "test", "path": "/spec/template/spec/containers/1/env/1/value", "value": "s3://old"},
        {"op": "replace", "path": "/spec/template/spec/containers/1/env/1/value", "value": "s3://m/m-1"},
    ]
    assert w.ops[0]["op"] == "test"


def test_canary_json_patch_writes_both_fields_in_one_request_and_drops_the_percent() -> None:
    isvc = workload("InferenceService", predictor={"model": {"storageUri": "s3://m/m-1"}})
    w = core.plan_write(desired(ISVC, canary=True), isvc, "m", None, "ns")
    assert w.method == "json-patch"
    assert w.ops == [
        {"op": "test", "path": "/spec/predictor/model/storageUri", "value": "s3://m/m-1"},
        {"op": "replace", "path": "/spec/predictor/model/storageUri", "value": "s3://m/m-2"},
        {"op": "add", "path": "/spec/predictor/canaryTrafficPercent", "value": 10},
    ]
    running = workload(
        "InferenceService", predictor={"canaryTrafficPercent": 10, "model": {"storageUri": "s3://m/m-2"}}
    )
    w = core.plan_write(desired(ISVC), running, "m", None, "ns")  # withdrawn: back to m-1, 100 %
    assert w.ops == [
        {"op": "test", "path": "/spec/predictor/model/storageUri", "value": "s3://m/m-2"},
        {"op": "test", "path": "/spec/predictor/canaryTrafficPercent", "value": 10},
        {"op": "replace", "path": "/spec/predictor/model/storageUri", "value": "s3://m/m-1"},
        {"op": "remove", "path": "/spec/predictor/canaryTrafficPercent"},
    ]


def test_raw_deployment_refuses_the_canary_only() -> None:
    isvc = workload(
        "InferenceService",
        annotations={core.KSERVE_MODE_ANNOTATION: "RawDeployment"},
        predictor={"model": {"storageUri": "s3://m/m-1"}},
    )
    w = core.plan_write(desired(ISVC, canary=True), isvc, "m", None, "ns")
    assert w.method == "none" and w.refused["m-2"][0] == "NotSupported"


def test_canary_transitions() -> None:
    d = desired(ISVC, canary=True)
    started, why = core.canary_transition("m-2", "Sandbox", None, d, True, NOW)
    assert why == "CanaryStarted" and started is not None and started.active and started.traffic_percent == 10
    assert core.canary_transition("m-2", "Sandbox", started, d, True, NOW) == (started, None)
    assert core.canary_transition("m-2", "Sandbox", None, d, False, NOW) == (None, None)  # write failed
    promoted = core.desired_workloads([t("m-2", "Production", ISVC)])[("InferenceService", "fraud")]
    assert core.canary_transition("m-2", "Production", started, promoted, True, NOW) == (None, "CanaryPromoted")
    back = desired(ISVC)
    assert core.canary_transition("m-2", "Development", started, back, True, NOW) == (None, "CanaryWithdrawn")
    failing = started.model_copy(update={"failed": True})
    new, why = core.canary_transition("m-2", "Sandbox", failing, back, True, NOW)
    assert why == "CanaryWithdrawn" and new is not None and new.failed and not new.active


def policy(mode: str, breaches: int = 2) -> Any:
    spec = RegisteredModelSpec.model_validate(
        {
            "modelName": "m",
            "version": "2",
            "artifact": {"uri": "s3://x"},
            "rollbackPolicy": {"mode": mode, "consecutiveBreaches": breaches},
        }
    )
    return effective_policy(spec, Defaults())


def test_canary_breach_streak_by_mode() -> None:
    running = RegisteredModelStatus(
        stage="Sandbox", canary=CanaryStatus(target="InferenceService/fraud", traffic_percent=10, active=True)
    )
    eff = canary_rules.count_snapshot(running, "Critical", policy("Automatic"))
    assert (
        eff.status.canary is not None and eff.status.canary.consecutive_breaches == 1 and not eff.status.canary.failed
    )
    healthy = canary_rules.count_snapshot(eff.status, "Healthy", policy("Automatic"))
    assert healthy.status.canary is not None and healthy.status.canary.consecutive_breaches == 0
    skip = canary_rules.count_snapshot(eff.status, "Inconclusive", policy("Automatic"))
    assert skip.status.canary is not None and skip.status.canary.consecutive_breaches == 1
    auto = canary_rules.count_snapshot(eff.status, "Critical", policy("Automatic"))
    assert auto.status.canary is not None and auto.status.canary.failed and not auto.incident_due
    only = canary_rules.count_snapshot(eff.status, "Critical", policy("IncidentOnly"))
    assert only.incident_due and only.status.canary is not None and not only.status.canary.failed
    off = canary_rules.count_snapshot(eff.status, "Critical", policy("Disabled"))
    assert not off.incident_due and off.status.canary is not None and not off.status.canary.failed
    idle = RegisteredModelStatus(stage="Sandbox")
    assert canary_rules.count_snapshot(idle, "Critical", policy("Automatic")).status is idle


def test_card_and_status_show_the_canary_and_its_share() -> None:
    from modelreg.cli import view
    from modelreg.core import modelcard

    running = CanaryStatus(target="InferenceService/fraud", traffic_percent=10, started_at=NOW, active=True)
    text = modelcard.canary_text(running)
    assert text == "10% of InferenceService/fraud's traffic since 2026-11-20T10:00:00Z"
    spec = RegisteredModelSpec.model_validate({"modelName": "m", "version": "2", "artifact": {"uri": "s3://x"}})
    card = modelcard.render_model_card(modelcard.CardInputs(name="m-2", namespace="ns", spec=spec, canary=text))
    assert "10% of InferenceService/fraud's traffic" in card
    assert modelcard.canary_text(running.model_copy(update={"active": False})) is None
    assert "failed on InferenceService/fraud" in (
        modelcard.canary_text(running.model_copy(update={"failed": True})) or ""
    )
    model = {
        "metadata": {"name": "m-2", "namespace": "ns"},
        "spec": {"modelName": "m", "version": "2"},
        "status": {"stage": "Sandbox", "canary": running.wire()},
    }
    out = view.format_status(model, NOW + timedelta(minutes=3))
    assert "Canary:" in out and "10% of InferenceService/fraud's traffic for 3m" in out


def test_withdrawal_of_a_canary_whose_start_was_never_recorded() -> None:
    """The start's status write was lost (a conflict, a kill); the workload says it ran."""
    back = desired(ISVC)
    assert core.canary_transition("m-2", "Development", None, back, True, NOW) == (None, None)
    got = core.canary_transition("m-2", "Development", None, back, True, NOW, on_workload=True)
    assert got == (None, "CanaryWithdrawn")


def test_a_failing_canary_opens_a_sandbox_incident_only_when_flagged() -> None:
    from modelreg.api.models import Breach
    from modelreg.core import incidents as inc
    from modelreg.core.evaluation import Evaluation

    spec = RegisteredModelSpec.model_validate({"modelName": "m", "version": "2", "artifact": {"uri": "s3://x"}})
    bad = Evaluation(
        verdict="Critical",
        reason="",
        breaches=[Breach(criterion="errorRate", value=0.2, threshold=0.05)],
        warnings=[],
        missing=[],
        drift=None,
        metrics={"errorRate": 0.2},
    )
    args: dict[str, Any] = dict(
        namespace="ns",
        registered_model="m-2",
        spec=spec,
        policy=policy("IncidentOnly"),
        stage="Sandbox",
        evaluation=bad,
        rollback_due=False,
        snapshot_name="s1",
        snapshot_uid="u1",
        episode=None,
        restore_version="1",
    )
    assert inc.decide(**args) is None  # a Sandbox snapshot never opens one by itself
    got = inc.decide(**args, canary=True)
    assert isinstance(got, inc.CreateIncident) and got.spec.stage == "Sandbox"
    assert inc.decide(**{**args, "policy": policy("Disabled")}, canary=True) is None
