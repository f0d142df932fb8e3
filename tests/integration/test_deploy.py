"""The deployment artefacts against the real API server (docs/deploy.md).

* the chart: `helm lint`, values schema, rendered objects; server-side dry-run of
  `helm template` (default values) and of each kustomize overlay;
* manifests/ equal a fresh render of the chart, and each overlay equals `helm template`;
* the CRD upgrade path (`kubectl apply --server-side --force-conflicts`, twice);
* the approval ValidatingAdmissionPolicy, applied for real and exercised by impersonation;
* the operator's ServiceAccount and RBAC: a TokenRequest token proves what it may and may
  not do (`sa_kubeconfig` is reusable for running the operator under that identity);
* HA: two operators electing a leader through a Lease, under the chart's RBAC;
* the Argo CD Lua health checks on objects written by the running operator.

helm is the pinned build of hack/build-helm.sh (built on first use; a few minutes) or
$MODELREG_HELM; kubectl is the pinned one of the local control plane, else `kubectl`.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import json
import os
import secrets
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client, config
from kubernetes.client.rest import ApiException

from modelreg.controller.flags import add_arguments, check_flags
from modelreg.deploy import render
from modelreg.devcluster.binaries import binaries
from tests.integration.kit import DIGEST, Cluster, OperatorProcess, condition, wait_for

REPO = Path(__file__).resolve().parents[2]
CHART = render.CHART_DIR
GROUP, VERSION = "modelreg.io", "v1alpha1"
APPROVERS, GITOPS = "modelreg-approvers", "gitops-appliers"


# --------------------------------------------------------------------------- tools


@dataclass
class Tools:
    """helm and kubectl pointed at the cluster under test."""

    helm: Path
    kubectl: Path
    kubeconfig: Path
    context: str
    cleanup: list[tuple[str, str]] = field(default_factory=list)  # cluster-scoped (resource, name)

    def kubectl_run(
        self,
        *args: str,
        stdin: str | None = None,
        kubeconfig: Path | None = None,
        check: bool = True,
    ) -> subprocess.CompletedProcess[str]:
        target = ["--kubeconfig", str(kubeconfig)] if kubeconfig else ["--kubeconfig", str(self.kubeconfig)]
        if kubeconfig is None:
            target += ["--context", self.context]
        proc = subprocess.run(
            [str(self.kubectl), *target, *args], input=stdin, capture_output=True, text=True, timeout=120
        )
        if check and proc.returncode != 0:
            raise AssertionError(f"kubectl {' '.join(args)} failed ({proc.returncode}):\n{proc.stderr}{proc.stdout}")
        return proc

    def helm_run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        proc = subprocess.run([str(self.helm), *args], capture_output=True, text=True, timeout=120)
        if check and proc.returncode != 0:
            raise AssertionError(f"helm {' '.join(args)} failed ({proc.returncode}):\n{proc.stderr}{proc.stdout}")
        return proc

    def template(self, namespace: str, *args: str, release: str = "modelreg") -> str:
        return self.helm_run("template", release, str(CHART), "--namespace", namespace, *args).stdout

    def apply(self, text: str, *, dry_run: bool = False) -> subprocess.CompletedProcess[str]:
        """Server-side apply (also records cluster-scoped objects for clean-up unless dry-run)."""
        args = ["apply", "--server-side", "--force-conflicts", "--field-manager=modelreg-deploy-test", "-f", "-"]
        if dry_run:
            args.append("--dry-run=server")
        else:
            self.cleanup.extend(_cluster_scoped(text))
        return self.kubectl_run(*args, stdin=text)


def _cluster_scoped(text: str) -> list[tuple[str, str]]:
    """(resource.group, name) of the cluster-scoped objects in ``text`` (CRDs and Namespaces excepted)."""
    refs: list[tuple[str, str]] = []
    for doc in render.parse_documents(text):
        if (doc.get("metadata") or {}).get("namespace") or doc["kind"] in ("CustomResourceDefinition", "Namespace"):
            continue
        group = doc["apiVersion"].rpartition("/")[0]
        refs.append((f"{doc['kind'].lower()}.{group}".rstrip("."), doc["metadata"]["name"]))
    return refs


@pytest.fixture(scope="session")
def helm_bin(request: pytest.FixtureRequest) -> Path:
    """The pinned helm, built from the Go module proxy on first use (progress goes to the terminal)."""
    capman = request.config.pluginmanager.getplugin("capturemanager")
    passthrough = capman.global_and_fixture_disabled() if capman else contextlib.nullcontext()
    started = time.monotonic()
    with passthrough:
        path = render.ensure_helm(build=True, progress=sys.stderr)
        if time.monotonic() - started > 5:
            print(f"[helm] ready after {time.monotonic() - started:.0f}s: {path}", file=sys.stderr)
    return path


@pytest.fixture(scope="session")
def kubectl_bin() -> Path:
    pinned = binaries().kubectl
    if pinned.is_file() and os.access(pinned, os.X_OK):
        return pinned
    found = shutil.which("kubectl")
    if not found:
        pytest.fail("no kubectl: build the control plane (make control-plane) or put kubectl on PATH", pytrace=False)
    return Path(found)


@pytest.fixture(scope="module")
def tools(kube: Any, helm_bin: Path, kubectl_bin: Path) -> Iterator[Tools]:
    t = Tools(helm=helm_bin, kubectl=kubectl_bin, kubeconfig=Path(kube.kubeconfig), context=kube.context)
    yield t
    for resource, name in reversed(t.cleanup):
        t.kubectl_run("delete", resource, name, "--ignore-not-found", "--wait=false", check=False)


@pytest.fixture(scope="module")
def chart_crds(tools: Tools) -> list[subprocess.CompletedProcess[str]]:
    """The chart's CRDs applied the documented upgrade way, twice; Established."""
    files = [*sorted((REPO / "crds").glob("*.yaml")), *sorted((CHART / "crds").glob("*.yaml"))]
    args = [a for path in files for a in ("-f", str(path))]
    runs = [tools.kubectl_run("apply", "--server-side", "--force-conflicts", *args) for _ in range(2)]
    names = [render.parse_documents(p.read_text())[0]["metadata"]["name"] for p in files]
    tools.kubectl_run("wait", "--for=condition=Established", "--timeout=60s", *[f"crd/{n}" for n in names])
    return runs


def _fullname(namespace: str) -> str:
    """A release-unique name, so that cluster-scoped objects of parallel tests never collide."""
    return f"mr-{namespace}"


def _docs(text: str) -> list[dict[str, Any]]:
    return render.parse_documents(text)


def _by_kind(docs: Sequence[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [d for d in docs if d["kind"] == kind]


def _one(docs: Sequence[dict[str, Any]], kind: str) -> dict[str, Any]:
    (doc,) = _by_kind(docs, kind)
    return doc


def _container(docs: Sequence[dict[str, Any]]) -> dict[str, Any]:
    (container,) = _one(docs, "Deployment")["spec"]["template"]["spec"]["containers"]
    return container


def _new_namespace(api: client.ApiClient, labels: dict[str, str] | None = None) -> str:
    name = f"t-{secrets.token_hex(4)}"
    client.CoreV1Api(api).create_namespace(
        client.V1Namespace(
            metadata=client.V1ObjectMeta(name=name, labels={"modelreg.io/test": "true", **(labels or {})})
        )
    )
    return name


def _delete_namespace(api: client.ApiClient, name: str) -> None:
    with contextlib.suppress(ApiException):
        client.CoreV1Api(api).delete_namespace(name, propagation_policy="Background")


# --------------------------------------------------------------------------- chart: lint, schema, render

SHARDS = (
    'shards=[{"name": "a", "namespaceSelector": "modelreg.io/shard=a"},'
    ' {"name": "b", "namespaceSelector": "modelreg.io/shard in (b, c)"}]'
)
FEATURES = [
    "--set",
    "serviceMonitor.enabled=true",
    "--set",
    "prometheusRule.enabled=true",
    "--set",
    "grafana.dashboard.enabled=true",
    "--set",
    f"approval.gitopsGroup={GITOPS}",
]


@pytest.mark.parametrize(
    "values",
    [
        pytest.param([], id="default"),
        pytest.param(["--values", str(CHART / "ci" / "namespaced-values.yaml")], id="namespaced"),
        pytest.param(["--values", str(CHART / "ci" / "ha-values.yaml")], id="ha"),
        pytest.param(FEATURES + ["--set", "ha.enabled=true", "--set", "watchNamespaces={a,b}"], id="everything"),
        pytest.param(["--set", "ha.enabled=true", "--set-json", SHARDS], id="shards"),
    ],
)
def test_helm_lint(tools: Tools, values: list[str]) -> None:
    out = tools.helm_run("lint", "--strict", str(CHART), *values).stdout
    assert "1 chart(s) linted, 0 chart(s) failed" in out, out


@pytest.mark.parametrize(
    ("override", "field_name"),
    [
        (["--set", "defaults.mode=Sometimes"], "mode"),
        (["--set", "defaults.warnRatio=0"], "warnRatio"),
        (["--set-json", "defaults.errorRateMax=1.5"], "errorRateMax"),
        (["--set", "defaults.errorRateMax=lots"], "errorRateMax"),
        (["--set", "defaults.staleAfter=15 minutes"], "staleAfter"),
        (["--set", "defaults.consecutiveBreaches=0"], "consecutiveBreaches"),
        (["--set", "defaults.surprise=1"], "surprise"),
        (["--set", "watchNamespaces={Not_A_Namespace}"], "watchNamespaces"),
        (["--set", 'approval.approverGroup=x" || true || "'], "approverGroup"),
        (["--set", "ha.replicas=1"], "replicas"),
        (["--set", "ha.peeringName=modelreg"], "peeringName"),
        (["--set-json", 'shards=[{"name": "Shard_A", "namespaceSelector": "x=y"}]'], "name"),
        (["--set-json", 'shards=[{"name": "a"}]'], "namespaceSelector"),
    ],
)
def test_values_schema_rejects_bad_values(tools: Tools, override: list[str], field_name: str) -> None:
    proc = tools.helm_run("template", "x", str(CHART), *override, check=False)
    assert proc.returncode != 0, f"{override} was accepted"
    assert "values don't meet the specifications of the schema" in proc.stderr, proc.stderr
    assert field_name in proc.stderr, proc.stderr


def test_default_render_is_least_privilege_and_restricted(tools: Tools) -> None:
    docs = _docs(tools.template("modelreg", "--include-crds"))
    kinds = sorted({d["kind"] for d in docs})
    assert kinds == [
        "ClusterRole",
        "ClusterRoleBinding",
        "CustomResourceDefinition",
        "Deployment",
        "Role",
        "RoleBinding",
        "Service",
        "ServiceAccount",
        "ValidatingAdmissionPolicy",
        "ValidatingAdmissionPolicyBinding",
    ]
    operator_role = next(d for d in _by_kind(docs, "ClusterRole") if d["metadata"]["name"] == "modelreg-operator")
    grants = {
        (group, resource, verb)
        for rule in operator_role["rules"]
        for group in rule["apiGroups"]
        for resource in rule["resources"]
        for verb in rule["verbs"]
    }
    kinds3 = ("registeredmodels", "performancesnapshots", "incidents")
    expected = {("modelreg.io", r, v) for r in kinds3 for v in ("get", "list", "watch")}
    expected |= {("modelreg.io", "incidents", "create"), ("modelreg.io", "incidents", "delete")}
    expected |= {("modelreg.io", "performancesnapshots", "delete")}
    expected |= {("modelreg.io", f"{r}/status", v) for r in kinds3 for v in ("get", "patch", "update")}
    # MetricSource polling (docs/metricsource.md): read sources, write their status, create pulled snapshots.
    expected |= {("modelreg.io", "metricsources", v) for v in ("get", "list", "watch")}
    expected |= {("modelreg.io", "metricsources/status", v) for v in ("get", "patch", "update")}
    expected |= {("modelreg.io", "performancesnapshots", "create")}
    expected |= {("", "events", "create")} | {("", "configmaps", v) for v in ("get", "create", "patch")}
    expected |= {("apps", r, v) for r in ("deployments", "statefulsets") for v in ("get", "patch")}
    expected |= {("modelreg.io", "incidentnotifiers", v) for v in ("get", "list", "watch")}
    expected |= {("modelreg.io", "incidentnotifiers/status", v) for v in ("get", "patch")}
    serving_kinds = [
        ("argoproj.io", "rollouts"),
        ("serving.knative.dev", "services"),
        ("serving.kserve.io", "inferenceservices"),
        ("mlops.seldon.io", "models"),
    ]
    expected |= {(g, r, v) for g, r in serving_kinds for v in ("get", "patch")}
    expected |= {("apiextensions.k8s.io", "customresourcedefinitions", v) for v in ("get", "list", "watch")}
    assert grants == expected
    for role in _by_kind(docs, "ClusterRole"):
        for rule in role["rules"]:
            assert "*" not in rule["verbs"] + rule["resources"] + rule["apiGroups"], role["metadata"]["name"]
            assert "secrets" not in rule["resources"]
    view = next(d for d in _by_kind(docs, "ClusterRole") if d["metadata"]["name"] == "modelreg-view")
    edit = next(d for d in _by_kind(docs, "ClusterRole") if d["metadata"]["name"] == "modelreg-edit")
    assert view["metadata"]["labels"]["rbac.authorization.k8s.io/aggregate-to-view"] == "true"
    assert edit["metadata"]["labels"]["rbac.authorization.k8s.io/aggregate-to-edit"] == "true"
    assert [r["verbs"] for r in view["rules"]] == [["get", "list", "watch"]]
    assert {v for r in edit["rules"] for v in r["verbs"]} == {
        "get",
        "list",
        "watch",
        "create",
        "update",
        "patch",
        "delete",  # fmt: skip
    }
    assert not any("/" in res for r in edit["rules"] + view["rules"] for res in r["resources"]), "no /status"

    deployment = _one(docs, "Deployment")
    spec = deployment["spec"]
    # The Lease keeps a new pod standing by until the old one releases it: rolling updates are safe.
    assert spec["replicas"] == 1 and spec["strategy"]["type"] == "RollingUpdate"
    assert _lease_rules(docs, "modelreg") == [
        {"apiGroups": ["coordination.k8s.io"], "resources": ["leases"], "verbs": ["get", "create", "update"]}
    ]
    pod = spec["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    container = _container(docs)
    sc = container["securityContext"]
    assert sc["allowPrivilegeEscalation"] is False and sc["readOnlyRootFilesystem"] is True
    assert sc["capabilities"] == {"drop": ["ALL"]} and sc["runAsNonRoot"] is True
    assert container["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "liveness"}
    assert {p["name"]: p["containerPort"] for p in container["ports"]} == {"liveness": 8080, "metrics": 8081}
    assert set(container["resources"]) == {"requests", "limits"}
    assert "--liveness-port=8080" in container["args"] and "--metrics-port=8081" in container["args"]
    assert not any(a.startswith(("--namespace", "--peering", "--priority")) for a in container["args"])
    assert {"--leader-elect", "--leader-election-namespace=modelreg", "--leader-election-id=modelreg",
            "--identity=modelreg"} <= set(container["args"])  # fmt: skip
    env = {e["name"]: e.get("valueFrom") for e in container["env"]}
    assert env["POD_NAME"] == {"fieldRef": {"fieldPath": "metadata.name"}}
    assert "MODELREG_IDENTITY" not in env, "replicas must share one --identity"
    service = _one(docs, "Service")
    assert service["spec"]["ports"] == [{"name": "metrics", "port": 8081, "targetPort": "metrics", "protocol": "TCP"}]


def test_operator_defaults_reach_the_container_as_the_operator_reads_them(tools: Tools) -> None:
    from modelreg.core.policy import Defaults

    docs = _docs(
        tools.template(
            "modelreg",
            "--set",
            "defaults.minSamples=1000000",
            "--set",
            "defaults.mode=IncidentOnly",
            "--set",
            "defaults.driftMax=0.42",  # --set keeps non-integers as strings; the schema allows it
            "--set-json",
            "defaults.errorRateMax=0.1",
            "--set",
            "defaults.requireApproval=false",
        )
    )
    env = {e["name"]: e["value"] for e in _container(docs)["env"] if "value" in e}
    defaults = Defaults.from_env(env)
    assert defaults.min_samples == 1_000_000 and env["MODELREG_DEFAULT_MIN_SAMPLES"] == "1000000"
    assert defaults.mode == "IncidentOnly" and defaults.drift_max == 0.42 and defaults.require_approval is False
    assert defaults.error_rate_max == 0.1
    assert defaults.stale_after == "15m" and defaults.warn_ratio == 0.8
    # driftMax null (the default) leaves the per-metric default to the operator
    env = {e["name"] for e in _container(_docs(tools.template("modelreg")))["env"]}
    assert "MODELREG_DEFAULT_DRIFT_MAX" not in env and "MODELREG_DEFAULT_STALE_AFTER" in env


def test_watch_namespaces_render_roles_and_flags(tools: Tools) -> None:
    docs = _docs(tools.template("ops", "--set", "watchNamespaces={team-a,team-b}"))
    roles = [r for r in _by_kind(docs, "Role") if r["metadata"]["name"] == "modelreg-operator"]
    bindings = [b for b in _by_kind(docs, "RoleBinding") if b["metadata"]["name"] == "modelreg-operator"]
    assert sorted(r["metadata"]["namespace"] for r in roles) == ["team-a", "team-b"]
    assert sorted(b["metadata"]["namespace"] for b in bindings) == ["team-a", "team-b"]
    for binding in bindings:
        assert binding["subjects"] == [{"kind": "ServiceAccount", "name": "modelreg", "namespace": "ops"}]
    args = _container(docs)["args"]
    assert [a for a in args if a.startswith("--namespace")] == ["--namespace=team-a", "--namespace=team-b"]
    # the only cluster-wide grant left is read-only discovery (CRDs, namespaces)
    (discovery,) = [r for r in _by_kind(docs, "ClusterRole") if r["metadata"]["name"] == "modelreg-discovery"]
    assert {(res, tuple(r["verbs"])) for r in discovery["rules"] for res in r["resources"]} == {
        ("customresourcedefinitions", ("get", "list", "watch")),
        ("namespaces", ("get", "list", "watch")),
    }
    assert "modelreg-operator" not in {r["metadata"]["name"] for r in _by_kind(docs, "ClusterRole")}
    docs = _docs(tools.template("ops", "--set", "watchNamespaces={team-a}", "--set", "rbac.clusterDiscovery=false"))
    assert {d["metadata"]["name"] for d in _by_kind(docs, "ClusterRole")} == {"modelreg-view", "modelreg-edit"}


def test_notifier_secrets_are_granted_by_name_only(tools: Tools) -> None:
    values = [
        "--set",
        "notifiers.secrets[0].namespace=risk",
        "--set",
        "notifiers.secrets[0].names={risk-slack,risk-token}",
    ]
    docs = _docs(tools.template("ops", *values))
    (role,) = [r for r in _by_kind(docs, "Role") if r["metadata"]["name"] == "modelreg-notifier-secrets"]
    assert role["metadata"]["namespace"] == "risk"
    assert role["rules"] == [
        {"apiGroups": [""], "resources": ["secrets"], "resourceNames": ["risk-slack", "risk-token"], "verbs": ["get"]}
    ]
    (binding,) = [b for b in _by_kind(docs, "RoleBinding") if b["metadata"]["name"] == "modelreg-notifier-secrets"]
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": "modelreg", "namespace": "ops"}]
    assert not any("secrets" in str(r.get("rules")) for r in _by_kind(_docs(tools.template("ops")), "Role"))


def _lease_rules(docs: Sequence[dict[str, Any]], namespace: str) -> list[dict[str, Any]]:
    (role,) = [r for r in _by_kind(docs, "Role") if r["metadata"]["name"].endswith("-leader-election")]
    assert role["metadata"]["namespace"] == namespace
    return role["rules"]


def test_ha_renders_leader_election(tools: Tools) -> None:
    docs = _docs(tools.template("modelreg", "--include-crds", "--values", str(CHART / "ci" / "ha-values.yaml")))
    spec = _one(docs, "Deployment")["spec"]
    assert spec["replicas"] == 2 and spec["strategy"]["type"] == "RollingUpdate"
    container = _container(docs)
    assert {"--leader-elect", "--leader-election-id=modelreg", "--identity=modelreg"} <= set(container["args"])
    assert not any(a.startswith(("--peering", "--priority")) for a in container["args"])
    assert _one(docs, "PodDisruptionBudget")["spec"]["minAvailable"] == 1
    assert _lease_rules(docs, "modelreg") == [
        {"apiGroups": ["coordination.k8s.io"], "resources": ["leases"], "verbs": ["get", "create", "update"]}
    ]
    # Kopf peering is gone: no peering objects, CRDs or rules.
    assert not any("kopf" in json.dumps(d).lower() for d in docs)
    docs = _docs(tools.template("ops", "--set", "ha.enabled=true", "--set", "watchNamespaces={a,b}"))
    assert _lease_rules(docs, "ops")  # the Lease lives in the release namespace, not the watched ones


def test_shards_render_one_deployment_and_lease_each(tools: Tools) -> None:
    docs = _docs(tools.template("ops", "--set", "ha.enabled=true", "--set-json", SHARDS))
    deployments = {d["metadata"]["name"]: d for d in _by_kind(docs, "Deployment")}
    assert set(deployments) == {"modelreg-a", "modelreg-b"}
    selectors = {"a": "modelreg.io/shard=a", "b": "modelreg.io/shard in (b, c)"}
    for shard, selector in selectors.items():
        dep = deployments[f"modelreg-{shard}"]
        labels = dep["spec"]["selector"]["matchLabels"]
        assert labels["modelreg.io/shard"] == shard
        assert dep["spec"]["template"]["metadata"]["labels"]["modelreg.io/shard"] == shard
        (container,) = dep["spec"]["template"]["spec"]["containers"]
        assert f"--namespace-selector={selector}" in container["args"]
        assert f"--leader-election-id=modelreg-{shard}" in container["args"]  # one Lease per shard
        assert f"--identity=modelreg-{shard}" in container["args"]
        # and `modelreg run` accepts the arguments the chart renders
        parser = argparse.ArgumentParser()
        add_arguments(parser)
        check_flags(parser.parse_args(container["args"]))
    assert {p["metadata"]["name"] for p in _by_kind(docs, "PodDisruptionBudget")} == {"modelreg-a", "modelreg-b"}
    # Shards own namespaces found at run time: cluster-wide rules, and namespaces are watched.
    role = next(d for d in _by_kind(docs, "ClusterRole") if d["metadata"]["name"] == "modelreg-operator")
    assert {"apiGroups": [""], "resources": ["namespaces"], "verbs": ["get", "list", "watch"]} in role["rules"]
    proc = tools.helm_run("template", "x", str(CHART), "--set-json", SHARDS, "--set", "watchNamespaces={a}",
                          check=False)  # fmt: skip
    assert proc.returncode != 0 and "shards and watchNamespaces are mutually exclusive" in proc.stderr


def test_monitoring_objects(tools: Tools) -> None:
    docs = _docs(tools.template("mon", *FEATURES))
    monitor = _one(docs, "ServiceMonitor")
    service = _one(docs, "Service")
    selector = monitor["spec"]["selector"]["matchLabels"]
    assert all(service["metadata"]["labels"].get(k) == v for k, v in selector.items())
    assert monitor["spec"]["endpoints"][0]["port"] == "metrics"
    rules = {r["alert"]: r for g in _one(docs, "PrometheusRule")["spec"]["groups"] for r in g["rules"]}
    assert set(rules) == {"ModelregProductionModelCritical", "ModelregRollbackHappened", "ModelregOperatorDown"}
    critical = rules["ModelregProductionModelCritical"]["expr"]
    assert 'modelreg_model_health{health="Critical"} == 1' in critical
    assert (
        'modelreg_model_stage{stage="Production"} == 1' in critical and "and on (namespace, model, version)" in critical
    )
    assert "increase(modelreg_rollbacks_total[10m])" in rules["ModelregRollbackHappened"]["expr"]
    assert rules["ModelregOperatorDown"]["expr"].strip() == 'absent(up{job=~".*modelreg.*"} == 1)'
    # the Prometheus job of the ServiceMonitor is the Service name, which the down-alert matches
    assert "modelreg" in service["metadata"]["name"]
    # templated {{ $labels.x }} survive Helm for Prometheus to expand
    assert "{{ $labels.model }}" in rules["ModelregProductionModelCritical"]["annotations"]["summary"]
    dashboard = _one(docs, "ConfigMap")
    assert dashboard["metadata"]["labels"]["grafana_dashboard"] == "1"
    board = json.loads(dashboard["data"]["modelreg.json"])
    exprs = " ".join(t["expr"] for p in board["panels"] for t in p.get("targets", []))
    from modelreg import metrics

    for series in ("modelreg_model_stage", "modelreg_model_health", "modelreg_rollbacks_total"):
        assert series in exprs
    for name in ("breach_to_incident", "breach_to_remediated", "snapshots_evaluated", "incidents_opened"):
        assert getattr(metrics, name)._name in exprs


# --------------------------------------------------------------------------- manifests/ and kustomize


def test_committed_manifests_equal_a_fresh_render(helm_bin: Path) -> None:
    files = render.render_manifests(helm_bin)
    problems = render.diff_manifests(files)
    assert not problems, "run hack/render-manifests.sh:\n" + "\n".join(problems)


def _kustomize(tools: Tools, path: Path) -> list[dict[str, Any]]:
    return _docs(tools.kubectl_run("kustomize", str(path)).stdout)


@pytest.mark.parametrize("overlay", ["base", *render.OVERLAYS])
def test_kustomize_build_equals_helm_template(tools: Tools, overlay: str) -> None:
    path = render.MANIFESTS_DIR / ("base" if overlay == "base" else f"overlays/{overlay}")
    built = {render.object_id(d): d for d in _kustomize(tools, path)}
    values = [] if overlay == "base" else ["--values", str(CHART / render.OVERLAYS[overlay])]
    helm = {render.object_id(d): d for d in _docs(tools.template(render.NAMESPACE, "--include-crds", *values))}
    namespace = built.pop(("", "Namespace", "", render.NAMESPACE))
    assert namespace["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"
    assert sorted(built) == sorted(helm)
    for oid, doc in helm.items():
        assert built[oid] == doc, f"{overlay}: {oid} differs from helm template"


def _kustomize_into(tools: Tools, overlay: Path, namespace: str, tmp_path: Path) -> str:
    """The overlay re-targeted at ``namespace`` (what a user's own kustomization would do)."""
    tmp_path.mkdir(parents=True, exist_ok=True)
    (tmp_path / "kustomization.yaml").write_text(
        yaml.safe_dump({"namespace": namespace, "resources": [os.path.relpath(overlay, tmp_path)]})
    )
    return tools.kubectl_run("kustomize", str(tmp_path)).stdout


def _assert_all_dry_run_applied(text: str, proc: subprocess.CompletedProcess[str]) -> None:
    applied = [line for line in proc.stdout.splitlines() if line.endswith("(server dry run)")]
    assert len(applied) == len(_docs(text)), proc.stdout + proc.stderr
    assert "would violate PodSecurity" not in proc.stderr, proc.stderr


def test_server_side_dry_run_of_helm_template(tools: Tools, chart_crds: Any, namespace: str) -> None:
    tools.kubectl_run("label", "namespace", namespace, "pod-security.kubernetes.io/warn=restricted", "--overwrite")
    text = tools.template(namespace, "--include-crds")
    _assert_all_dry_run_applied(text, tools.apply(text, dry_run=True))


@pytest.mark.parametrize("overlay", list(render.OVERLAYS))
def test_server_side_dry_run_of_overlay(
    tools: Tools, chart_crds: Any, namespace: str, overlay: str, tmp_path: Path
) -> None:
    text = _kustomize_into(tools, render.MANIFESTS_DIR / "overlays" / overlay, namespace, tmp_path / "k")
    docs = _docs(text)
    ns_doc = _one(docs, "Namespace")
    assert ns_doc["metadata"]["name"] == namespace  # kustomize renames it with the namespace
    _assert_all_dry_run_applied(text, tools.apply(text, dry_run=True))


def test_pod_security_check_is_live(tools: Tools, namespace: str) -> None:
    """Control for the dry-runs above: a non-compliant template does draw the warning."""
    tools.kubectl_run("label", "namespace", namespace, "pod-security.kubernetes.io/warn=restricted", "--overwrite")
    docs = _docs(tools.template(namespace))
    deployment = _one(docs, "Deployment")
    deployment["spec"]["template"]["spec"]["containers"][0]["securityContext"]["allowPrivilegeEscalation"] = True
    proc = tools.apply(yaml.safe_dump(deployment), dry_run=True)
    assert "would violate PodSecurity" in proc.stderr and "allowPrivilegeEscalation" in proc.stderr


# --------------------------------------------------------------------------- CRD upgrades


def test_crd_upgrade_path_applies_twice(tools: Tools, chart_crds: list[subprocess.CompletedProcess[str]]) -> None:
    for proc in chart_crds:
        lines = [line for line in proc.stdout.splitlines() if line.strip()]
        assert len(lines) == len([*(REPO / "crds").glob("*.yaml"), *(CHART / "crds").glob("*.yaml")]), proc.stdout
        assert all(line.endswith("serverside-applied") for line in lines), proc.stdout


def test_crd_upgrade_after_helm_install_needs_force_conflicts(tools: Tools) -> None:
    """Helm creates crds/ with field manager "helm": the documented command takes them over.

    A scratch copy of the RegisteredModel CRD (own group) stands in for the installed one.
    """
    group = f"upgrade-{secrets.token_hex(3)}.modelreg.io"
    doc = yaml.safe_load((REPO / "crds" / "modelreg.io_registeredmodels.yaml").read_text())
    doc["metadata"]["name"] = f"{doc['spec']['names']['plural']}.{group}"
    doc["spec"]["group"] = group
    old = json.loads(json.dumps(doc))
    old["spec"]["versions"][0]["additionalPrinterColumns"].pop()  # the "previous chart version"
    try:
        tools.kubectl_run("create", "--field-manager=helm", "-f", "-", stdin=yaml.safe_dump(old))
        new = yaml.safe_dump(doc)
        plain = tools.kubectl_run("apply", "--server-side", "-f", "-", stdin=new, check=False)
        assert plain.returncode != 0 and 'conflict with "helm"' in plain.stderr, plain.stderr
        for _ in range(2):
            out = tools.kubectl_run("apply", "--server-side", "--force-conflicts", "-f", "-", stdin=new).stdout
            assert "serverside-applied" in out
        live = json.loads(tools.kubectl_run("get", "crd", doc["metadata"]["name"], "-o", "json").stdout)
        assert len(live["spec"]["versions"][0]["additionalPrinterColumns"]) == len(
            doc["spec"]["versions"][0]["additionalPrinterColumns"]
        )
    finally:
        tools.kubectl_run("delete", "crd", doc["metadata"]["name"], "--ignore-not-found", "--wait=false", check=False)


# --------------------------------------------------------------------------- approval policy


def _model_doc(name: str, approvals: list[dict[str, str]] | None = None, **spec: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "modelName": "fraud",
        "version": name.rpartition("-")[2] + ".0.0",
        "artifact": {"uri": f"s3://models/fraud/{name}", "digest": DIGEST},
        **spec,
    }
    if approvals is not None:
        body["approvals"] = approvals
    return {"apiVersion": f"{GROUP}/{VERSION}", "kind": "RegisteredModel", "metadata": {"name": name}, "spec": body}


@dataclass
class Actor:
    tools: Tools
    namespace: str
    user: str
    groups: tuple[str, ...]

    def _as(self) -> list[str]:
        return [f"--as={self.user}", *[f"--as-group={g}" for g in self.groups], "-n", self.namespace]

    def create(self, doc: dict[str, Any]) -> subprocess.CompletedProcess[str]:
        return self.tools.kubectl_run("create", *self._as(), "-f", "-", stdin=json.dumps(doc), check=False)

    def set_approvals(self, name: str, approvals: list[dict[str, str]]) -> subprocess.CompletedProcess[str]:
        patch = json.dumps({"spec": {"approvals": approvals}})
        return self.tools.kubectl_run(
            "patch", *self._as(), "registeredmodels.modelreg.io", name, "--type=merge", "-p", patch, check=False
        )

    def patch_spec(self, name: str, spec: dict[str, Any]) -> subprocess.CompletedProcess[str]:
        patch = json.dumps({"spec": spec})
        return self.tools.kubectl_run(
            "patch", *self._as(), "registeredmodels.modelreg.io", name, "--type=merge", "-p", patch, check=False
        )


def _install_policy(tools: Tools, namespace: str, *values: str) -> str:
    """The chart's approval policy (+ user roles), bound to ``namespace`` only; returns the policy name."""
    fullname = _fullname(namespace)
    selector = json.dumps({"matchLabels": {"kubernetes.io/metadata.name": namespace}})
    text = tools.template(
        namespace,
        "--set",
        f"fullnameOverride={fullname}",
        "--set-json",
        f"approval.namespaceSelector={selector}",
        *values,
        "--show-only",
        "templates/admission-policy.yaml",
        "--show-only",
        "templates/rbac-aggregated.yaml",
    )
    tools.apply(text)
    # Users write RegisteredModels through the chart's <fullname>-edit role.
    tools.kubectl_run(
        "create", "rolebinding", "modelreg-writers", "-n", namespace, f"--clusterrole={fullname}-edit",
        f"--group={APPROVERS}", "--group=devs", f"--group={GITOPS}",
    )  # fmt: skip
    return f"{fullname}-approvals"


def _wait_policy_active(actor: Actor) -> None:
    """Policies take effect asynchronously: wait until a forbidden create is denied (server dry-run)."""
    probe = _model_doc("probe-9", approvals=[{"by": "someone-else"}])

    def denied() -> bool:
        proc = actor.tools.kubectl_run(
            "create", *actor._as(), "--dry-run=server", "-f", "-", stdin=json.dumps(probe), check=False
        )
        return proc.returncode != 0 and "ValidatingAdmissionPolicy" in proc.stderr

    wait_for(denied, timeout=30, interval=0.5, what="the approval policy to take effect")


def _approvals(tools: Tools, namespace: str, name: str) -> list[dict[str, str]]:
    out = tools.kubectl_run("get", "registeredmodels.modelreg.io", name, "-n", namespace, "-o", "json").stdout
    return json.loads(out)["spec"].get("approvals", [])


def test_approval_policy(tools: Tools, crds: list[str], namespace: str, api: client.ApiClient) -> None:
    policy = _install_policy(tools, namespace, "--set", f"approval.gitopsGroup={GITOPS}")
    dave = Actor(tools, namespace, "dave", ("devs",))
    alice = Actor(tools, namespace, "alice", (APPROVERS,))
    argo = Actor(tools, namespace, "system:serviceaccount:argocd:argocd-application-controller", (GITOPS,))
    _wait_policy_active(dave)

    # Models without approvals are anyone's business.
    assert dave.create(_model_doc("m-1")).returncode == 0
    # A non-member cannot add an approval, not even their own.
    proc = dave.set_approvals("m-1", [{"by": "dave"}])
    assert proc.returncode != 0
    assert f"ValidatingAdmissionPolicy '{policy}'" in proc.stderr
    assert f'spec.approvals may be added or changed only by members of the group "{APPROVERS}"' in proc.stderr
    assert 'user "dave" is not a member' in proc.stderr
    assert _approvals(tools, namespace, "m-1") == []
    # A member approves in their own name.
    entry = {"by": "alice", "at": "2026-11-20T09:00:00Z", "comment": "Reviewed in MR !42"}
    assert alice.set_approvals("m-1", [entry]).returncode == 0
    assert _approvals(tools, namespace, "m-1") == [entry]
    # ... but not in someone else's.
    proc = alice.set_approvals("m-1", [entry, {"by": "bob"}])
    assert proc.returncode != 0
    assert 'spec.approvals: a new approval must be recorded by the approver themself: by must be "alice"' in (
        proc.stderr
    )
    assert 'not "bob"' in proc.stderr
    # Edits that leave spec.approvals alone are not its concern.
    assert dave.patch_spec("m-1", {"description": "Détecteur de fraude"}).returncode == 0
    # Removing an approval is a change too.
    assert dave.set_approvals("m-1", []).returncode != 0
    assert _approvals(tools, namespace, "m-1") == [entry]
    # CREATE with approvals: the same rules.
    assert dave.create(_model_doc("m-2", approvals=[{"by": "dave"}])).returncode != 0
    assert alice.create(_model_doc("m-3", approvals=[{"by": "alice"}])).returncode == 0
    # The GitOps applier's changes are trusted (what Git says was reviewed there).
    carol = {"by": "carol", "comment": "approved in Git"}
    proc = argo.set_approvals("m-1", [entry, carol])
    assert proc.returncode == 0, proc.stderr
    assert _approvals(tools, namespace, "m-1") == [entry, carol]
    # Status is not writable through the user roles at all.
    proc = tools.kubectl_run(
        "patch", *alice._as(), "registeredmodels.modelreg.io", "m-1", "--subresource=status", "--type=merge",
        "-p", '{"status": {"stage": "Production"}}', check=False,
    )  # fmt: skip
    assert proc.returncode != 0 and "forbidden" in proc.stderr.lower()

    # Without approval.gitopsGroup (the default) there is no exception.
    other = _new_namespace(api)
    try:
        _install_policy(tools, other)
        argo2 = Actor(tools, other, argo.user, (GITOPS,))
        _wait_policy_active(argo2)
        assert argo2.create(_model_doc("m-1")).returncode == 0
        proc = argo2.set_approvals("m-1", [carol])
        assert proc.returncode != 0 and APPROVERS in proc.stderr
    finally:
        _delete_namespace(api, other)


# --------------------------------------------------------------------------- the operator's identity


@dataclass
class ServiceAccountIdentity:
    """The chart's operator ServiceAccount with its RBAC, and a kubeconfig holding its token."""

    kubeconfig: Path
    namespace: str
    service_account: str

    @property
    def username(self) -> str:
        return f"system:serviceaccount:{self.namespace}:{self.service_account}"

    def api_client(self) -> client.ApiClient:
        return config.new_client_from_config(config_file=str(self.kubeconfig))


def install_operator_identity(
    tools: Tools, api: client.ApiClient, namespace: str, out_dir: Path, *values: str
) -> ServiceAccountIdentity:
    """Apply the chart's ServiceAccount + RBAC (``values`` as for helm) and mint a token for it."""
    fullname = _fullname(namespace)
    text = tools.template(
        namespace,
        "--set",
        f"fullnameOverride={fullname}",
        *values,
        "--show-only",
        "templates/serviceaccount.yaml",
        "--show-only",
        "templates/rbac.yaml",
        "--show-only",
        "templates/leader-election.yaml",
    )
    tools.apply(text)
    token = client.CoreV1Api(api).create_namespaced_service_account_token(
        fullname,
        namespace,
        client.AuthenticationV1TokenRequest(spec=client.V1TokenRequestSpec(audiences=[], expiration_seconds=3600)),
    )
    kubeconfig = out_dir / f"{fullname}.kubeconfig"
    kubeconfig.write_text(yaml.safe_dump(_token_kubeconfig(tools, token.status.token, namespace)))
    return ServiceAccountIdentity(kubeconfig=kubeconfig, namespace=namespace, service_account=fullname)


def _token_kubeconfig(tools: Tools, token: str, namespace: str) -> dict[str, Any]:
    """A kubeconfig with the cluster (server, CA) of the fixture's kubeconfig and ``token``."""
    cfg = yaml.safe_load(tools.kubeconfig.read_text())
    context = next(c["context"] for c in cfg["contexts"] if c["name"] == tools.context)
    cluster = dict(next(c["cluster"] for c in cfg["clusters"] if c["name"] == context["cluster"]))
    if "certificate-authority" in cluster:
        ca = Path(cluster.pop("certificate-authority"))
        if not ca.is_absolute():
            ca = tools.kubeconfig.parent / ca
        cluster["certificate-authority-data"] = base64.b64encode(ca.read_bytes()).decode()
    return {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "cluster", "cluster": cluster}],
        "users": [{"name": "operator", "user": {"token": token}}],
        "contexts": [
            {"name": "operator", "context": {"cluster": "cluster", "user": "operator", "namespace": namespace}}
        ],
        "current-context": "operator",
    }


@pytest.fixture()
def sa_kubeconfig(
    tools: Tools, api: client.ApiClient, crds: list[str], namespace: str, tmp_path: Path
) -> ServiceAccountIdentity:
    """The operator's identity as the chart installs it cluster-wide (default values), in ``namespace``."""
    return install_operator_identity(tools, api, namespace, tmp_path)


def _can_i(tools: Tools, ident: ServiceAccountIdentity, verb: str, resource: str, namespace: str) -> bool:
    args = ["auth", "can-i", verb, resource]
    if resource.partition("/")[2]:
        resource, _, sub = resource.partition("/")
        args = ["auth", "can-i", verb, resource, f"--subresource={sub}"]
    proc = tools.kubectl_run(*args, "-n", namespace, kubeconfig=ident.kubeconfig, check=False)
    answer = proc.stdout.strip()
    assert answer in ("yes", "no"), proc.stderr
    return answer == "yes"


ALLOWED = [
    ("get", "registeredmodels.modelreg.io"),
    ("watch", "performancesnapshots.modelreg.io"),
    ("list", "incidents.modelreg.io"),
    ("create", "incidents.modelreg.io"),
    ("delete", "incidents.modelreg.io"),
    ("delete", "performancesnapshots.modelreg.io"),
    ("patch", "registeredmodels.modelreg.io/status"),
    ("update", "incidents.modelreg.io/status"),
    ("patch", "performancesnapshots.modelreg.io/status"),
    ("create", "events"),
    ("patch", "configmaps"),
    ("create", "configmaps"),
    ("patch", "deployments.apps"),
    ("get", "statefulsets.apps"),
    ("create", "performancesnapshots.modelreg.io"),
    ("watch", "metricsources.modelreg.io"),
    ("patch", "metricsources.modelreg.io/status"),
]
DENIED = [
    ("get", "secrets"),
    ("list", "secrets"),
    ("create", "registeredmodels.modelreg.io"),
    ("update", "registeredmodels.modelreg.io"),
    ("patch", "registeredmodels.modelreg.io"),
    ("delete", "registeredmodels.modelreg.io"),
    ("patch", "incidents.modelreg.io"),
    ("patch", "metricsources.modelreg.io"),
    ("delete", "configmaps"),
    ("update", "deployments.apps"),
    ("create", "deployments.apps"),
    ("list", "pods"),
    ("create", "pods"),
    ("create", "rolebindings.rbac.authorization.k8s.io"),
    ("delete", "namespaces"),
]


def test_service_account_least_privilege(
    tools: Tools, sa_kubeconfig: ServiceAccountIdentity, api: client.ApiClient, namespace: str
) -> None:
    ident = sa_kubeconfig
    who = tools.kubectl_run("auth", "whoami", "-o", "json", kubeconfig=ident.kubeconfig)
    assert json.loads(who.stdout)["status"]["userInfo"]["username"] == ident.username
    for verb, resource in ALLOWED:
        assert _can_i(tools, ident, verb, resource, namespace), f"{verb} {resource} should be allowed"
    for verb, resource in DENIED:
        assert not _can_i(tools, ident, verb, resource, namespace), f"{verb} {resource} should be denied"
    # cluster-wide: the same in any namespace
    assert _can_i(tools, ident, "patch", "registeredmodels.modelreg.io/status", "kube-system")

    # A real Secret read is refused.
    core = client.CoreV1Api(api)
    core.create_namespaced_secret(
        namespace, client.V1Secret(metadata=client.V1ObjectMeta(name="creds"), string_data={"k": "v"})
    )
    with ident.api_client() as sa_api:
        with pytest.raises(ApiException) as err:
            client.CoreV1Api(sa_api).read_namespaced_secret("creds", namespace)
        assert err.value.status == 403

        # ... while a RegisteredModel's status is patched, and its spec is not.
        custom = client.CustomObjectsApi(api)
        custom.create_namespaced_custom_object(GROUP, VERSION, namespace, "registeredmodels", _model_doc("sa-1"))
        sa_custom = client.CustomObjectsApi(sa_api)
        marker = {"status": {"modelCard": {"configMap": "written-by-the-operator-identity", "sha256": "0" * 64}}}
        out = sa_custom.patch_namespaced_custom_object_status(
            GROUP, VERSION, namespace, "registeredmodels", "sa-1", marker
        )
        assert out["status"]["modelCard"]["configMap"] == "written-by-the-operator-identity"
        with pytest.raises(ApiException) as err:
            sa_custom.patch_namespaced_custom_object(
                GROUP, VERSION, namespace, "registeredmodels", "sa-1", {"spec": {"targetStage": "Production"}}
            )
        assert err.value.status == 403


def test_namespaced_service_account_is_confined(
    tools: Tools, api: client.ApiClient, crds: list[str], namespace: str, tmp_path: Path
) -> None:
    ident = install_operator_identity(tools, api, namespace, tmp_path, "--set", f"watchNamespaces={{{namespace}}}")
    assert _can_i(tools, ident, "patch", "registeredmodels.modelreg.io/status", namespace)
    assert _can_i(tools, ident, "create", "events", namespace)
    for other in ("default", "kube-system"):
        assert not _can_i(tools, ident, "patch", "registeredmodels.modelreg.io/status", other)
        assert not _can_i(tools, ident, "list", "registeredmodels.modelreg.io", other)
        assert not _can_i(tools, ident, "create", "events", other)
    assert not _can_i(tools, ident, "get", "secrets", namespace)
    # read-only discovery is all it has cluster-wide
    assert _can_i(tools, ident, "watch", "customresourcedefinitions.apiextensions.k8s.io", "default")
    assert not _can_i(tools, ident, "patch", "customresourcedefinitions.apiextensions.k8s.io", "default")


# --------------------------------------------------------------------------- HA: a Lease under the chart's RBAC


def _log(op: OperatorProcess) -> str:
    return op.log_path.read_text(errors="replace")


def _holder(api: client.ApiClient, namespace: str) -> str:
    try:
        lease = client.CoordinationV1Api(api).read_namespaced_lease("modelreg", namespace)
    except ApiException:
        return ""
    return str(lease.spec.holder_identity or "")


def test_ha_lease_one_replica_acts_and_fails_over(
    tools: Tools, api: client.ApiClient, crds: list[str], namespace: str, tmp_path: Path
) -> None:
    """Two operators under the chart's namespaced RBAC (its Lease Role included): one holds the
    Lease and acts; on a graceful stop it releases the Lease and the standby takes over within
    seconds (after a crash, within the 15 s lease: tests/faults/test_leader.py)."""
    values = ("--set", f"watchNamespaces={{{namespace}}}", "--set", "ha.enabled=true")
    ident = install_operator_identity(tools, api, namespace, tmp_path, *values)

    def start(name: str) -> OperatorProcess:
        return OperatorProcess(
            kubeconfig=ident.kubeconfig,
            log_path=tmp_path / f"operator-{name}.log",
            identity="ha",
            extra_args=("--namespace", namespace, "--leader-elect", "--leader-election-namespace", namespace,
                        "--leader-election-id", "modelreg", "--leader-identity", name),
        ).start()  # fmt: skip

    first = start("first")
    wait_for(lambda: _holder(api, namespace) == "first", timeout=30, what="the first replica to lead")
    second = start("second")
    try:
        k = Cluster(client.CustomObjectsApi(api), namespace)
        k.model("ha-1", model_name="ha", version="1.0.0")
        k.wait_stage("ha-1", "Production", timeout=30)
        assert "leading" in _log(first) and "leading" not in _log(second), second.log_tail()
        for op in (first, second):
            assert " 403" not in _log(op) and "Forbidden" not in _log(op), op.log_tail()

        stopped = time.monotonic()
        first.stop()
        wait_for(lambda: _holder(api, namespace) == "second", timeout=15, interval=0.05, what="the takeover")
        failover = time.monotonic() - stopped
        print(f"graceful failover took {failover:.2f}s", file=sys.stderr)
        assert failover < 10
        # and the survivor works: a model in the namespace is promoted by it
        k.model("ha-2", model_name="ha2", version="1.0.0")
        k.wait_stage("ha-2", "Production", timeout=30)
        assert "released Lease" in _log(first), first.log_tail()
    finally:
        second.stop()
        first.stop()


# --------------------------------------------------------------------------- Argo CD health on real objects


def test_argocd_health_checks_on_operator_objects(
    operator: OperatorProcess, k: Cluster, namespace: str, kube: Any
) -> None:
    pytest.importorskip("lupa", reason="needs lupa (the `test` extras) to run the Lua health checks")
    from modelreg.deploy.argocd_health import health

    def model_health(name: str) -> dict[str, str]:
        return health("RegisteredModel", k.rm(name))

    created = k.model("lua-1", model_name="lua", version="1.0.0")
    assert health("RegisteredModel", created)["status"] == "Progressing"  # no status yet
    k.wait_stage("lua-1", "Production")
    wait_for(lambda: condition(k.rm("lua-1"), "Ready").get("status") == "True", what="lua-1 Ready")
    assert model_health("lua-1")["status"] == "Healthy", k.rm("lua-1")["status"]

    snap = k.snapshot("lua-1-ok", "lua-1")
    assert health("PerformanceSnapshot", snap)["status"] == "Progressing"
    k.wait_verdict("lua-1-ok")
    assert health("PerformanceSnapshot", k.snap("lua-1-ok"))["status"] == "Healthy"

    # IncidentOnly (the kit's default): a Critical snapshot leaves it Critical in Production with an Incident.
    k.snapshot("lua-1-bad", "lua-1", metrics={"errorRate": 0.5, "oodRate": 0.01})
    assert k.wait_verdict("lua-1-bad")["status"]["verdict"] == "Critical"
    bad = health("PerformanceSnapshot", k.snap("lua-1-bad"))
    assert bad["status"] == "Degraded" and "errorRate" in bad["message"]
    wait_for(lambda: (k.rm("lua-1").get("status") or {}).get("health") == "Critical", what="lua-1 Critical")
    assert model_health("lua-1")["status"] == "Degraded"
    (incident,) = wait_for(lambda: k.incidents("lua-1"), what="an Incident for lua-1")
    assert health("Incident", incident)["status"] == "Degraded"

    name = incident["metadata"]["name"]
    subprocess.run(
        [sys.executable, "-m", "modelreg.cli.main", "resolve", name, "-n", namespace,
         "--kubeconfig", str(kube.kubeconfig), "--context", kube.context],
        check=True, capture_output=True, timeout=60,
    )  # fmt: skip
    resolved = wait_for(
        lambda: (i := k.get("incidents", name)) and (i.get("status") or {}).get("phase") == "Resolved" and i,
        what="the Incident Resolved",
    )
    assert health("Incident", resolved)["status"] == "Healthy"

    # Waiting for an approval only a person can give: Stalled, which Argo CD shows as Degraded.
    k.model("lua-2", model_name="lua2", version="1.0.0", promotionPolicy={"minSandboxDuration": "0s",
            "minHealthySnapshots": 0, "requireApproval": True})  # fmt: skip
    wait_for(lambda: condition(k.rm("lua-2"), "Stalled").get("status") == "True", what="lua-2 Stalled")
    result = model_health("lua-2")
    assert result["status"] == "Degraded" and result["message"].startswith("Sandbox: "), result


# --------------------------------------------------------------------------- the operator under its own identity


def test_operator_under_chart_service_account_passes_seed_rollback(
    tools: Tools, api: client.ApiClient, crds: list[str], iso_namespace: str, tmp_path: Path
) -> None:
    """`modelreg run` with the chart's ServiceAccount token (TokenRequest) in a namespace no other
    operator watches: promotion, serving, incident, automatic rollback — so the RBAC is sufficient."""
    ns = iso_namespace
    ident = install_operator_identity(tools, api, ns, tmp_path, "--set", f"watchNamespaces={{{ns}}}")
    op = OperatorProcess(
        kubeconfig=ident.kubeconfig,
        log_path=tmp_path / "sa-operator.log",
        identity="sa-operator",
        extra_args=("--namespace", ns),
    ).start()
    try:
        apps = client.AppsV1Api(api)
        apps.create_namespaced_deployment(ns, {
            "apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "fraud-api", "annotations": {"modelreg.io/serving-model": "fraud"}},
            "spec": {"replicas": 0, "selector": {"matchLabels": {"app": "f"}},
                     "template": {"metadata": {"labels": {"app": "f"}}, "spec": {"containers": [
                         {"name": "server", "image": "x", "env": [{"name": "MODEL_URI"}]}]}}},
        })  # fmt: skip
        serving = {"targetRef": {"kind": "Deployment", "name": "fraud-api"}, "container": "server", "env": "MODEL_URI"}

        def env() -> str:
            dep = apps.read_namespaced_deployment("fraud-api", ns)
            return {e.name: e.value for e in dep.spec.template.spec.containers[0].env}["MODEL_URI"]

        k = Cluster(client.CustomObjectsApi(api), ns)
        auto = {"mode": "Automatic"}
        k.model("fraud-1", version="1.0.0", serving=serving, rollbackPolicy=auto)
        k.wait_stage("fraud-1", "Production")
        k.model("fraud-2", version="2.0.0", serving=serving, rollbackPolicy=auto)
        k.wait_stage("fraud-2", "Production")
        wait_for(lambda: env().endswith("/2.0.0/model.bst"), what="serving on v2")
        k.snapshot("fraud-2-bad", "fraud-2", metrics={"errorRate": 0.0668, "oodRate": 0.2167})
        k.wait_stage("fraud-2", "RolledBack")
        k.wait_stage("fraud-1", "Production")
        wait_for(lambda: env().endswith("/1.0.0/model.bst"), what="serving back on v1")
        inc = wait_for(lambda: (i := k.incidents("fraud-2")) and (i[0].get("status") or {}).get("phase")
                       == "Remediated" and i[0])  # fmt: skip
        assert inc["status"]["claimedBy"] == "sa-operator"
        assert client.CoreV1Api(api).read_namespaced_config_map("fraud-2-model-card", ns).data
        log = op.log_path.read_text(errors="replace")
        assert " 403" not in log and "Forbidden" not in log and "forbidden" not in log, op.log_tail()
    finally:
        op.stop()


def test_metricsource_secret_grant_names_only_listed_secrets(tools: Tools) -> None:
    """docs/metricsource.md: no Secret by default; `get` on exactly the Secrets the values name, per namespace."""

    def secret_roles(docs: list[dict[str, Any]]) -> list[dict[str, Any]]:  # the Lease's Role is there too
        return [r for r in _by_kind(docs, "Role") if any("secrets" in rule["resources"] for rule in r["rules"])]

    assert not secret_roles(_docs(tools.template("modelreg")))
    docs = _docs(
        tools.template("modelreg", "--set-json", 'metricSources.secretNames={"risk":["prom-reader"],"fraud":[]}')
    )
    (role,) = secret_roles(docs)
    assert role["metadata"]["namespace"] == "risk"
    assert role["rules"] == [
        {"apiGroups": [""], "resources": ["secrets"], "resourceNames": ["prom-reader"], "verbs": ["get"]}
    ]
    (binding,) = [b for b in _by_kind(docs, "RoleBinding") if b["roleRef"]["name"] == role["metadata"]["name"]]
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": "modelreg", "namespace": "modelreg"}]
    for cluster_role in _by_kind(docs, "ClusterRole"):
        assert all("secrets" not in r["resources"] for r in cluster_role["rules"])
