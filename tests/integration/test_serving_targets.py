"""Serving targets on the real API server with the real (or upstream-shaped) CRDs (docs/serving.md).

Per kind: promotion and automatic rollback after a breach move the owned field; a workload
not opted in is left alone; a kind whose CRD is missing is TargetKindNotFound; a field another
field manager owns is FieldConflict (named) until the workload says serving-force.

Argo Rollouts' Rollout and Knative's Service CRDs are the published ones, fetched from their Go
modules (hack/fetch-serving-crds.sh, pinned in hack/versions.env). KServe's and Seldon's are the
test CRDs in tests/integration/crds/ (their modules are not served by the Go module proxy).
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client
from kubernetes.client.rest import ApiException

from modelreg.core.serving import KindInfo
from tests.integration.kit import Cluster, condition, wait_for
from tests.integration.kserve_sdk import inference_service

pytestmark = pytest.mark.usefixtures("operator")

REPO = Path(__file__).resolve().parents[2]
TEST_CRDS = Path(__file__).parent / "crds"
BAD = {"errorRate": 0.0668, "oodRate": 0.2167}
OPT_IN = "modelreg.io/serving-model"
FORCE = "modelreg.io/serving-force"
MANAGER = "gitops-test"  # the field manager that "Git" (the test) creates workloads with


def fetched_crds() -> dict[str, Path]:
    out = subprocess.run(
        ["bash", str(REPO / "hack" / "fetch-serving-crds.sh")], check=True, capture_output=True, text=True
    ).stdout.split()
    paths = [Path(p) for p in out]
    return {
        "Rollout": next(p for p in paths if p.name == "rollout-crd.yaml"),
        "Service": next(p for p in paths if p.name == "service.yaml"),
    }


@dataclass(frozen=True)
class Kind(KindInfo):
    """A serving kind as these tests drive it. The values are the tests' own (not the operator's
    table); ``group``, ``version`` and ``crd_name`` come from :class:`KindInfo`."""

    crd: str | None = None  # CRD file key (None: built in)
    env: bool = True  # env kinds get container/env; the others a storageUri
    force_needed: bool = False  # the creator necessarily owns the field (atomic list/spec, required field)


def _kind(kind: str, api_version: str, plural: str, crd: str | None, env: bool, force_needed: bool) -> Kind:
    return Kind(kind, api_version, plural, crd is None, crd, env, force_needed)


KINDS = {
    "Deployment": _kind("Deployment", "apps/v1", "deployments", None, True, False),
    "StatefulSet": _kind("StatefulSet", "apps/v1", "statefulsets", None, True, False),
    "Rollout": _kind("Rollout", "argoproj.io/v1alpha1", "rollouts", "Rollout", True, False),
    # Knative's containers list has no list type: the creator owns it whole (atomic).
    "Service": _kind("Service", "serving.knative.dev/v1", "services", "Service", True, True),
    "InferenceService": _kind(
        "InferenceService", "serving.kserve.io/v1beta1", "inferenceservices", "kserve-full", False, False
    ),
    # KServe's minimal CRD: spec is an atomic map, owned whole by its creator.
    "InferenceService-minimal": _kind(
        "InferenceService", "serving.kserve.io/v1beta1", "inferenceservices", "kserve-minimal", False, True
    ),
    # Seldon's storageUri is required: whoever creates the Model owns it.
    "Model": _kind("Model", "mlops.seldon.io/v1alpha1", "models", "seldon", False, True),
}


class Crds:
    """Install and remove CRDs, waiting until they are served (or gone)."""

    def __init__(self, api: client.ApiClient) -> None:
        self.ext = client.ApiextensionsV1Api(api)
        self.custom = client.CustomObjectsApi(api)
        self.files: dict[str, Path] = {
            **fetched_crds(),
            "kserve-full": TEST_CRDS / "kserve-inferenceservice-full.yaml",
            "kserve-minimal": TEST_CRDS / "kserve-inferenceservice-minimal.yaml",
            "seldon": TEST_CRDS / "seldon-model.yaml",
        }
        self.installed: dict[str, str] = {}  # crd name -> file key

    def doc(self, key: str) -> dict[str, Any]:
        return next(d for d in yaml.safe_load_all(self.files[key].read_text(encoding="utf-8")) if d)

    def install(self, kind: Kind) -> None:
        assert kind.crd is not None
        if self.installed.get(kind.crd_name) == kind.crd:
            return
        if kind.crd_name in self.installed or self._exists(kind.crd_name):
            self.remove(kind)
        self.ext.create_custom_resource_definition(self.doc(kind.crd))
        wait_for(lambda: self._served(kind), timeout=60, what=f"{kind.crd_name} served")
        self.installed[kind.crd_name] = kind.crd

    def remove(self, kind: Kind) -> None:
        try:
            self.ext.delete_custom_resource_definition(kind.crd_name)
        except ApiException as err:
            if err.status != 404:
                raise
        wait_for(lambda: not self._exists(kind.crd_name), timeout=60, what=f"{kind.crd_name} gone")
        self.installed.pop(kind.crd_name, None)

    def _exists(self, name: str) -> bool:
        try:
            self.ext.read_custom_resource_definition(name)
            return True
        except ApiException as err:
            if err.status == 404:
                return False
            raise

    def _served(self, kind: Kind) -> bool:
        try:
            self.custom.list_cluster_custom_object(kind.group, kind.version, kind.plural, limit=1)
            return True
        except ApiException as err:
            if err.status == 404:
                return False
            raise


@pytest.fixture(scope="module")
def ext_crds(api: client.ApiClient) -> Iterator[Crds]:
    yield Crds(api)


def workload_body(kind: Kind, name: str, annotations: dict[str, str], uri: str | None = None) -> dict[str, Any]:
    if kind.kind == "InferenceService":
        return inference_service(name, storage_uri=uri, annotations=annotations)
    meta = {"name": name, "annotations": annotations, "labels": {"app": name}}
    if kind.kind == "Model":
        return {
            "apiVersion": kind.api_version,
            "kind": "Model",
            "metadata": meta,
            "spec": {"storageUri": uri or "s3://models/placeholder", "requirements": ["xgboost"]},
        }
    env: list[dict[str, str]] = [{"name": "OTHER", "value": "kept"}]
    # Git declares the env entry without a value: modelreg owns the value (see the README).
    env.insert(0, {"name": "MODEL_URI", "value": uri} if uri else {"name": "MODEL_URI"})
    pod = {"containers": [{"name": "server", "image": "example/fraud:1", "env": env}]}
    if kind.kind == "Service":
        return {
            "apiVersion": kind.api_version,
            "kind": "Service",
            "metadata": meta,
            "spec": {"template": {"spec": pod}},
        }
    spec: dict[str, Any] = {
        "replicas": 0,
        "selector": {"matchLabels": {"app": name}},
        "template": {"metadata": {"labels": {"app": name}}, "spec": pod},
    }
    if kind.kind == "StatefulSet":
        spec["serviceName"] = name
    return {"apiVersion": kind.api_version, "kind": kind.kind, "metadata": meta, "spec": spec}


@dataclass
class Target:
    k: Cluster
    kind: Kind
    name: str = "fraud-api"

    def create(self, *, opted_in: bool = True, force: bool | None = None, uri: str | None = None) -> dict:
        annotations = {OPT_IN: "fraud"} if opted_in else {}
        if force if force is not None else self.kind.force_needed:
            annotations[FORCE] = "true"
        body = workload_body(self.kind, self.name, annotations, uri)
        return self.k.custom.create_namespaced_custom_object(
            self.kind.group or "apps", self.kind.version, self.k.ns, self.kind.plural, body, field_manager=MANAGER
        )

    def get(self) -> dict[str, Any]:
        return self.k.custom.get_namespaced_custom_object(
            self.kind.group, self.kind.version, self.k.ns, self.kind.plural, self.name
        )

    def annotate(self, key: str, value: str) -> None:
        self.k.custom.patch_namespaced_custom_object(
            self.kind.group,
            self.kind.version,
            self.k.ns,
            self.kind.plural,
            self.name,
            {"metadata": {"annotations": {key: value}}},
        )

    def value(self) -> str | None:
        spec = self.get()["spec"]
        if self.kind.kind == "InferenceService":
            return spec["predictor"]["model"].get("storageUri")
        if self.kind.kind == "Model":
            return spec.get("storageUri")
        container = next(c for c in spec["template"]["spec"]["containers"] if c["name"] == "server")
        return next((e.get("value") for e in container["env"] if e["name"] == "MODEL_URI"), None)

    def other_env_kept(self) -> bool:
        """Everything but the owned field is as Git wrote it."""
        spec = self.get()["spec"]
        if self.kind.kind == "InferenceService":
            return (
                spec["predictor"]["model"].get("modelFormat") == {"name": "xgboost"}
                and spec["predictor"].get("minReplicas") == 0
            )
        if self.kind.kind == "Model":
            return spec.get("requirements") == ["xgboost"]
        container = self.get()["spec"]["template"]["spec"]["containers"][0]
        return {"name": "OTHER", "value": "kept"} in container["env"]

    def serving(self) -> dict[str, Any]:
        ref: dict[str, Any] = {"kind": self.kind.kind, "name": self.name}
        if self.kind.api_version != "apps/v1":
            ref["apiVersion"] = self.kind.api_version
        return {"targetRef": ref, "container": "server", "env": "MODEL_URI"} if self.kind.env else {"targetRef": ref}


def uri(version: str) -> str:
    return f"s3://models/fraud/{version}/model.bst"


def reason_of(k: Cluster, name: str) -> str | None:
    return condition(k.rm(name), "ServingSynced").get("reason")


@pytest.fixture(params=sorted(KINDS))
def target(request: pytest.FixtureRequest, k: Cluster, ext_crds: Crds) -> Target:
    kind = KINDS[request.param]
    if kind.crd is not None:
        ext_crds.install(kind)
    return Target(k, kind)


def test_promotion_and_automatic_rollback_move_the_owned_field(target: Target) -> None:
    k = target.k
    target.create()
    auto = {"mode": "Automatic"}
    k.model("fraud-1", version="1.0.0", serving=target.serving(), rollbackPolicy=auto)
    wait_for(lambda: target.value() == uri("1.0.0"), what="serving follows v1")
    wait_for(lambda: condition(k.rm("fraud-1"), "ServingSynced").get("status") == "True", what="ServingSynced")
    k.model("fraud-2", version="2.0.0", serving=target.serving(), rollbackPolicy=auto)
    wait_for(lambda: target.value() == uri("2.0.0"), what="serving follows v2")
    k.wait_stage("fraud-1", "Archived")
    k.snapshot("fraud-2-bad", "fraud-2", metrics=BAD)
    k.wait_stage("fraud-2", "RolledBack")
    wait_for(lambda: target.value() == uri("1.0.0"), what="serving back on v1 after the rollback")
    assert target.other_env_kept()  # only the one owned field changed
    managers = {m["manager"] for m in target.get()["metadata"]["managedFields"]}
    assert "modelreg" in managers


def test_workload_not_opted_in_is_left_alone(target: Target) -> None:
    k = target.k
    target.create(opted_in=False, uri="s3://untouched")
    k.model("fraud-1", version="1.0.0", serving=target.serving())
    wait_for(lambda: reason_of(k, "fraud-1") == "NotOptedIn", what="NotOptedIn")
    assert condition(k.rm("fraud-1"), "ServingSynced")["status"] == "False"
    assert target.value() == "s3://untouched"
    assert all(m["manager"] != "modelreg" for m in target.get()["metadata"]["managedFields"])


def test_field_owned_by_another_manager_is_not_taken_until_forced(target: Target) -> None:
    k = target.k
    target.create(force=False, uri="s3://from-git")
    k.model("fraud-1", version="1.0.0", serving=target.serving())
    obj = wait_for(
        lambda: (o := k.rm("fraud-1")) and condition(o, "ServingSynced").get("reason") == "FieldConflict" and o,
        what="FieldConflict",
    )
    assert MANAGER in condition(obj, "ServingSynced")["message"]
    assert target.value() == "s3://from-git"
    target.annotate(FORCE, "true")
    k.annotate("fraud-1", "example.com/nudge", "1")  # any change of the model makes it look again
    wait_for(lambda: target.value() == uri("1.0.0"), what="forced take-over")
    assert target.other_env_kept()


CRD_KINDS = sorted(n for n, kd in KINDS.items() if kd.crd is not None and n != "InferenceService-minimal")


@pytest.mark.parametrize("kind_name", CRD_KINDS)
def test_kind_whose_crd_is_missing_then_installed(kind_name: str, k: Cluster, ext_crds: Crds) -> None:
    kind = KINDS[kind_name]
    ext_crds.remove(kind)
    target = Target(k, kind)
    k.model("fraud-1", version="1.0.0", serving=target.serving())
    obj = wait_for(
        lambda: (o := k.rm("fraud-1")) and condition(o, "ServingSynced").get("reason") == "TargetKindNotFound" and o,
        what="TargetKindNotFound",
    )
    assert kind.crd_name in condition(obj, "ServingSynced")["message"]
    ext_crds.install(kind)
    target.create()
    k.annotate("fraud-1", "example.com/nudge", "1")
    wait_for(lambda: target.value() == uri("1.0.0"), what="synced once the CRD exists")


def test_missing_env_entry_is_named_and_nothing_written(k: Cluster, ext_crds: Crds) -> None:
    kind = KINDS["Rollout"]
    ext_crds.install(kind)
    target = Target(k, kind)
    body = workload_body(kind, target.name, {OPT_IN: "fraud"})
    body["spec"]["template"]["spec"]["containers"][0]["env"] = [{"name": "OTHER", "value": "kept"}]
    k.custom.create_namespaced_custom_object(kind.group, kind.version, k.ns, kind.plural, body, field_manager=MANAGER)
    k.model("fraud-1", version="1.0.0", serving=target.serving())
    obj = wait_for(
        lambda: (o := k.rm("fraud-1")) and condition(o, "ServingSynced").get("reason") == "EnvNotFound" and o,
        what="EnvNotFound",
    )
    assert "env MODEL_URI in container server" in condition(obj, "ServingSynced")["message"]
    assert all(m["manager"] != "modelreg" for m in target.get()["metadata"]["managedFields"])


def test_rollout_with_workload_ref_is_not_supported(k: Cluster, ext_crds: Crds) -> None:
    kind = KINDS["Rollout"]
    ext_crds.install(kind)
    target = Target(k, kind)
    body = workload_body(kind, target.name, {OPT_IN: "fraud"})
    body["spec"] = {"workloadRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "fraud-api"}}
    k.custom.create_namespaced_custom_object(kind.group, kind.version, k.ns, kind.plural, body, field_manager=MANAGER)
    k.model("fraud-1", version="1.0.0", serving=target.serving())
    obj = wait_for(
        lambda: (o := k.rm("fraud-1")) and condition(o, "ServingSynced").get("reason") == "NotSupported" and o,
        what="NotSupported",
    )
    assert "workloadRef" in condition(obj, "ServingSynced")["message"]


EXAMPLES = REPO / "examples" / "serving"
EXAMPLE_KIND = {
    "deployment.yaml": "Deployment",
    "statefulset.yaml": "StatefulSet",
    "argo-rollout.yaml": "Rollout",
    "knative-service.yaml": "Service",
    "kserve-inferenceservice-canary.yaml": "InferenceService",
    "seldon-model.yaml": "Model",
}


def test_every_kind_has_an_example() -> None:
    assert sorted(p.name for p in EXAMPLES.glob("*.yaml")) == sorted(EXAMPLE_KIND)


@pytest.mark.parametrize("file_name", sorted(EXAMPLE_KIND))
def test_example_is_accepted_and_served(file_name: str, k: Cluster, ext_crds: Crds) -> None:
    kind = KINDS[EXAMPLE_KIND[file_name]]
    if kind.crd is not None:
        ext_crds.install(kind)
    docs = [d for d in yaml.safe_load_all((EXAMPLES / file_name).read_text(encoding="utf-8")) if d]
    workload = next(d for d in docs if d["kind"] == kind.kind)
    models = [d for d in docs if d["kind"] == "RegisteredModel"]
    k.custom.create_namespaced_custom_object(
        kind.group, kind.version, k.ns, kind.plural, workload, field_manager=MANAGER
    )
    for doc in models:
        if doc["spec"]["targetStage"] == "Production":  # no soak, snapshots or approval in a test
            doc["spec"]["promotionPolicy"] = {"minSandboxDuration": "0s", "minHealthySnapshots": 0}
            doc["spec"]["promotionPolicy"]["requireApproval"] = False
        k.create(doc)
    target = Target(k, kind, name=workload["metadata"]["name"])
    prod = next(d for d in models if d["spec"]["targetStage"] == "Production")
    canary = next((d for d in models if d["spec"]["serving"].get("canary")), None)
    want = canary["spec"]["artifact"]["uri"] if canary else prod["spec"]["artifact"]["uri"]
    wait_for(lambda: target.value() == want, timeout=30, what=f"{file_name}: served")
    if canary is not None:
        pct = canary["spec"]["serving"]["canary"]["trafficPercent"]
        wait_for(lambda: target.get()["spec"]["predictor"].get("canaryTrafficPercent") == pct, what="canary share")
