"""The KServe canary on the real API server (docs/serving.md): start, promotion, withdrawal, demotion, kills.

The InferenceService CRD is the test CRD with KServe's field paths (tests/integration/crds/),
the InferenceServices are built with the KServe SDK's models. KServe's controller is not here:
what is proven is what modelreg writes (storageUri + canaryTrafficPercent, in one write), not
KServe's traffic split itself.

A watch records every state the InferenceService passes through; each test asserts the
invariant "never the Sandbox version's URI without a canary percent" over all of them.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client, watch

from modelreg.cli.main import main as cli
from tests.integration.kit import Cluster, OperatorProcess, condition, wait_for
from tests.integration.kserve_sdk import inference_service
from tests.integration.test_serving_targets import KINDS, MANAGER, OPT_IN, Crds, uri

BAD = {"errorRate": 0.0668, "oodRate": 0.2167}
ISVC = KINDS["InferenceService"]
NAME = "fraud-isvc"
SERVING = {"targetRef": {"apiVersion": ISVC.api_version, "kind": "InferenceService", "name": NAME}}
CANARY = {**SERVING, "canary": {"trafficPercent": 10}}


@pytest.fixture(scope="module")
def isvc_crd(api: client.ApiClient) -> Crds:
    crds = Crds(api)
    crds.install(ISVC)
    return crds


class Recorder:
    """Every (storageUri, canaryTrafficPercent) the InferenceService is seen with, in order."""

    def __init__(self, custom: client.CustomObjectsApi, ns: str) -> None:
        self.states: list[tuple[str | None, int | None]] = []
        self._stop = threading.Event()
        self._w = watch.Watch()
        self._thread = threading.Thread(target=self._run, args=(custom, ns), daemon=True)
        self._thread.start()

    def _run(self, custom: client.CustomObjectsApi, ns: str) -> None:
        while not self._stop.is_set():
            try:
                for ev in self._w.stream(
                    custom.list_namespaced_custom_object,
                    ISVC.group,
                    ISVC.version,
                    ns,
                    ISVC.plural,
                    timeout_seconds=5,
                ):
                    pred = (ev["object"].get("spec") or {}).get("predictor") or {}
                    self.states.append(((pred.get("model") or {}).get("storageUri"), pred.get("canaryTrafficPercent")))
                    if self._stop.is_set():
                        return
            except Exception:  # the namespace went away at the end
                if self._stop.is_set():
                    return

    def stop(self) -> None:
        self._stop.set()
        self._w.stop()

    def never_sandbox_uri_without_percent(self, sandbox_uri: str, until: int | None = None) -> None:
        seen = self.states[:until] if until is not None else self.states
        bad = [s for s in seen if s[0] == sandbox_uri and s[1] is None]
        assert not bad, f"the Sandbox URI served without a canary percent: {self.states}"


def make_isvc(k: Cluster, annotations: dict[str, str] | None = None) -> None:
    body = inference_service(NAME, storage_uri=None, annotations={OPT_IN: "fraud", **(annotations or {})})
    k.custom.create_namespaced_custom_object(ISVC.group, ISVC.version, k.ns, ISVC.plural, body, field_manager=MANAGER)


def predictor(k: Cluster) -> dict[str, Any]:
    obj = k.custom.get_namespaced_custom_object(ISVC.group, ISVC.version, k.ns, ISVC.plural, NAME)
    return obj["spec"]["predictor"]


def state(k: Cluster) -> tuple[str | None, int | None]:
    p = predictor(k)
    return p["model"].get("storageUri"), p.get("canaryTrafficPercent")


def event_reasons(k: Cluster, name: str) -> list[str]:
    return [e.reason for e in k.events(name)]


@pytest.fixture()
def canary_ns(k: Cluster, isvc_crd: Crds) -> Iterator[tuple[Cluster, Recorder]]:
    rec = Recorder(k.custom, k.ns)
    yield k, rec
    rec.stop()


def start_canary(k: Cluster, mode: str = "Automatic") -> None:
    make_isvc(k)
    policy = {"mode": mode, "consecutiveBreaches": 1}
    k.model("fraud-1", version="1.0.0", serving=SERVING, rollbackPolicy=policy)
    wait_for(lambda: state(k) == (uri("1.0.0"), None), what="v1 served")
    k.model("fraud-2", version="2.0.0", serving=CANARY, rollbackPolicy=policy, targetStage="Sandbox")
    wait_for(lambda: state(k) == (uri("2.0.0"), 10), what="canary started: v2 at 10%")


@pytest.mark.usefixtures("operator")
def test_canary_start_then_promotion(canary_ns: tuple[Cluster, Recorder]) -> None:
    k, rec = canary_ns
    start_canary(k)
    obj = wait_for(lambda: (o := k.rm("fraud-2")) and ((o.get("status") or {}).get("canary") or {}).get("active") and o)
    assert obj["status"]["canary"]["trafficPercent"] == 10
    assert obj["status"]["canary"]["target"] == f"InferenceService/{NAME}"
    assert condition(obj, "ServingSynced")["reason"] == "CanaryStarted"
    assert "10% to canary 2.0.0" in condition(obj, "ServingSynced")["message"]
    wait_for(lambda: "CanaryStarted" in event_reasons(k, "fraud-2"), what="CanaryStarted event")
    core = client.CoreV1Api(k.custom.api_client)
    card = wait_for(
        lambda: (
            "10% of InferenceService/fraud-isvc"
            in (c := core.read_namespaced_config_map("fraud-2-model-card", k.ns).data["model-card.md"])
            and c
        ),
        what="card shows the canary",
    )
    assert "Canary" in card
    assert k.stage("fraud-1") == "Production"
    promoted_at = len(rec.states)
    k.patch("registeredmodels", "fraud-2", {"spec": {"targetStage": "Production"}})
    wait_for(lambda: state(k) == (uri("2.0.0"), None), what="promoted: canaryTrafficPercent dropped")
    k.wait_stage("fraud-2", "Production")
    k.wait_stage("fraud-1", "Archived")
    wait_for(lambda: "CanaryPromoted" in event_reasons(k, "fraud-2"), what="CanaryPromoted event")
    obj = wait_for(lambda: (o := k.rm("fraud-2")) and not o["status"].get("canary") and o, what="canary record gone")
    assert condition(obj, "ServingSynced")["reason"] == "CanaryPromoted"
    rec.never_sandbox_uri_without_percent(uri("2.0.0"), until=promoted_at)


@pytest.mark.usefixtures("operator")
def test_critical_canary_snapshot_withdraws_it_and_retry_starts_again(
    canary_ns: tuple[Cluster, Recorder], kube: Any
) -> None:
    k, rec = canary_ns
    start_canary(k)
    wait_for(lambda: ((k.rm("fraud-2").get("status") or {}).get("canary") or {}).get("active"), what="canary recorded")
    k.snapshot("fraud-2-bad", "fraud-2", metrics=BAD)
    wait_for(lambda: state(k) == (uri("1.0.0"), None), what="withdrawn: Production URI, no percent")
    obj = wait_for(
        lambda: (o := k.rm("fraud-2")) and condition(o, "Stalled").get("reason") == "CanaryFailed" and o,
        what="Stalled CanaryFailed",
    )
    assert obj["status"]["stage"] == "Sandbox"
    assert obj["status"]["canary"]["failed"] is True and obj["status"]["canary"]["active"] is False
    wait_for(lambda: "CanaryWithdrawn" in event_reasons(k, "fraud-2"), what="CanaryWithdrawn event")
    wait_for(lambda: condition(k.rm("fraud-2"), "ServingSynced").get("reason") == "CanaryWithdrawn")
    assert k.stage("fraud-1") == "Production"
    assert not k.incidents("fraud-2")  # Automatic: withdrawn, no Incident
    assert cli(["retry", "fraud-2", "--kubeconfig", str(kube.kubeconfig), "-n", k.ns]) == 0
    wait_for(
        lambda: any(h["reason"] == "Retried" for h in (k.rm("fraud-2").get("status") or {}).get("stageHistory", [])),
        what="retried",
    )
    # Back through Development to its target, Sandbox: the canary starts again.
    wait_for(lambda: state(k) == (uri("2.0.0"), 10), what="canary started again after the retry")
    rec.never_sandbox_uri_without_percent(uri("2.0.0"))


@pytest.mark.usefixtures("operator")
def test_incident_only_opens_a_sandbox_incident_and_keeps_the_canary(canary_ns: tuple[Cluster, Recorder]) -> None:
    k, rec = canary_ns
    start_canary(k, mode="IncidentOnly")
    wait_for(lambda: ((k.rm("fraud-2").get("status") or {}).get("canary") or {}).get("active"), what="canary recorded")
    k.snapshot("fraud-2-bad", "fraud-2", metrics=BAD)
    inc = wait_for(lambda: k.incidents("fraud-2"), what="an Incident")[0]
    assert inc["spec"]["stage"] == "Sandbox"
    k.wait_verdict("fraud-2-bad")
    assert state(k) == (uri("2.0.0"), 10)
    assert k.rm("fraud-2")["status"]["canary"]["failed"] is False
    rec.never_sandbox_uri_without_percent(uri("2.0.0"))


@pytest.mark.usefixtures("operator")
def test_demotion_restores_the_production_uri(canary_ns: tuple[Cluster, Recorder]) -> None:
    k, rec = canary_ns
    start_canary(k)
    k.patch("registeredmodels", "fraud-2", {"spec": {"targetStage": "Development"}})
    wait_for(lambda: state(k) == (uri("1.0.0"), None), what="demoted: Production URI, no percent")
    k.wait_stage("fraud-2", "Development")
    wait_for(lambda: "CanaryWithdrawn" in event_reasons(k, "fraud-2"), what="CanaryWithdrawn event")
    rec.never_sandbox_uri_without_percent(uri("2.0.0"))


@pytest.mark.usefixtures("operator")
def test_raw_deployment_inference_service_refuses_the_canary(k: Cluster, isvc_crd: Crds) -> None:
    make_isvc(k, {"serving.kserve.io/deploymentMode": "RawDeployment"})
    k.model("fraud-1", version="1.0.0", serving=SERVING)
    wait_for(lambda: state(k) == (uri("1.0.0"), None), what="v1 served")
    k.model("fraud-2", version="2.0.0", serving=CANARY, targetStage="Sandbox")
    obj = wait_for(
        lambda: (o := k.rm("fraud-2")) and condition(o, "ServingSynced").get("reason") == "NotSupported" and o,
        what="NotSupported",
    )
    assert "RawDeployment" in condition(obj, "ServingSynced")["message"]
    assert state(k) == (uri("1.0.0"), None)


def test_kill_between_the_canary_writes_is_completed_by_the_next_pass(
    api: client.ApiClient, crds: list[str], isvc_crd: Crds, iso_namespace: str, kube: Any, tmp_path: Path
) -> None:
    k = Cluster(client.CustomObjectsApi(api), iso_namespace)
    rec = Recorder(k.custom, iso_namespace)
    control = tmp_path / "control.json"
    # Through the fault launcher: it SIGKILLs itself right after a chosen write.
    op = OperatorProcess(
        kubeconfig=Path(kube.kubeconfig),
        log_path=tmp_path / "operator.log",
        identity="canary-kill",
        extra_args=("--namespace", iso_namespace),
        module="tests.faults.launcher",
    )
    armed = {"MODELREG_FAULT_CONTROL": str(control)}
    op.env_extra = armed
    try:
        op.start()
        make_isvc(k)
        k.model("fraud-1", version="1.0.0", serving=SERVING)
        wait_for(lambda: state(k) == (uri("1.0.0"), None), what="v1 served")
        k.wait_stage("fraud-1", "Production")
        # Die right after the next write to the InferenceService lands: the canary's
        # workload write is done, its status.canary and Event are not.
        control.write_text(json.dumps({"crash_after": 1, "match": f"inferenceservices/{NAME}"}))
        k.model("fraud-2", version="2.0.0", serving=CANARY, targetStage="Sandbox")
        wait_for(lambda: op.proc is not None and op.proc.poll() is not None, timeout=30, what="operator killed")
        assert state(k) == (uri("2.0.0"), 10)  # both fields in one write
        assert not (k.rm("fraud-2").get("status") or {}).get("canary")
        op.env_extra = {}
        op.start()
        obj = wait_for(
            lambda: (o := k.rm("fraud-2")) and ((o.get("status") or {}).get("canary") or {}).get("active") and o,
            what="the next pass records the canary",
        )
        assert condition(obj, "ServingSynced")["reason"] == "CanaryStarted"
        wait_for(lambda: "CanaryStarted" in event_reasons(k, "fraud-2"), what="CanaryStarted event after restart")
        # A kill right after the withdrawal's write: the next pass records it too.
        control.write_text(json.dumps({"crash_after": 1, "match": f"inferenceservices/{NAME}"}))
        op.stop()
        op.env_extra = armed
        op.start()
        k.patch("registeredmodels", "fraud-2", {"spec": {"targetStage": "Development"}})
        wait_for(lambda: op.proc is not None and op.proc.poll() is not None, timeout=30, what="operator killed")
        assert state(k) == (uri("1.0.0"), None)
        op.env_extra = {}
        op.start()
        wait_for(lambda: "CanaryWithdrawn" in event_reasons(k, "fraud-2"), what="CanaryWithdrawn after restart")
        wait_for(lambda: not (k.rm("fraud-2").get("status") or {}).get("canary"), what="canary record cleared")
        rec.never_sandbox_uri_without_percent(uri("2.0.0"))
    finally:
        rec.stop()
        op.stop()


@pytest.mark.usefixtures("operator")
def test_canary_with_kserve_minimal_crd_is_one_tested_json_patch(k: Cluster, isvc_crd: Crds) -> None:
    """KServe's minimal CRD makes spec an atomic map: both canary fields go in one tested patch."""
    minimal = KINDS["InferenceService-minimal"]
    isvc_crd.install(minimal)
    try:
        rec = Recorder(k.custom, k.ns)
        make_isvc(k, {"modelreg.io/serving-force": "true"})  # the creator owns the atomic spec
        k.model("fraud-1", version="1.0.0", serving=SERVING)
        wait_for(lambda: state(k) == (uri("1.0.0"), None), what="v1 served")
        k.model("fraud-2", version="2.0.0", serving=CANARY, targetStage="Sandbox")
        wait_for(lambda: state(k) == (uri("2.0.0"), 10), what="canary started")
        assert predictor(k)["model"]["modelFormat"] == {"name": "xgboost"}  # the rest of spec kept
        wait_for(lambda: "CanaryStarted" in event_reasons(k, "fraud-2"), what="CanaryStarted event")
        k.patch("registeredmodels", "fraud-2", {"spec": {"targetStage": "Production"}})
        wait_for(lambda: state(k) == (uri("2.0.0"), None), what="promoted")
        assert predictor(k)["minReplicas"] == 0
        rec.stop()
        promoted = rec.states.index((uri("2.0.0"), None)) if (uri("2.0.0"), None) in rec.states else None
        rec.never_sandbox_uri_without_percent(uri("2.0.0"), until=promoted)
    finally:
        isvc_crd.install(ISVC)
