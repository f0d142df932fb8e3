"""The chart's `dashboard.enabled`: off by default; on, a read-only ServiceAccount (checked by the API server)."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import yaml
from kubernetes import client

from modelreg.deploy import render

CHART = Path(__file__).resolve().parents[2] / "charts" / "modelreg"


def template(*args: str, namespace: str = "mr-dash", release: str = "rel") -> list[dict[str, Any]]:
    helm = render.ensure_helm(build=True)
    out = subprocess.run(
        [str(helm), "template", release, str(CHART), "--namespace", namespace, *args],
        capture_output=True, text=True, check=True, timeout=120,
    )  # fmt: skip
    return [d for d in yaml.safe_load_all(out.stdout) if d]


def test_off_by_default_and_schema_closed() -> None:
    assert not [d for d in template() if "dashboard" in d["metadata"]["name"] and d["kind"] != "ConfigMap"]
    helm = render.ensure_helm(build=True)
    bad = subprocess.run(
        [str(helm), "template", "rel", str(CHART), "--set", "dashboard.colour=red"],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert bad.returncode != 0 and "colour" in bad.stderr


def test_its_service_account_may_only_read(api: client.ApiClient, crds: list[str]) -> None:
    import secrets

    ns, release = f"mr-dash-{secrets.token_hex(3)}", f"r{secrets.token_hex(3)}"
    docs = {
        (d["kind"], d["metadata"]["name"]): d
        for d in template("--set", "dashboard.enabled=true", namespace=ns, release=release)
    }
    name = f"{release}-modelreg-dashboard"
    deploy = docs[("Deployment", name)]
    pod = deploy["spec"]["template"]
    assert pod["spec"]["serviceAccountName"] == name
    assert pod["spec"]["containers"][0]["command"] == ["modelreg", "dashboard"]
    # The operator's own Deployment must not select the dashboard's pods (nor its Service).
    operator = next(d for (kind, _), d in docs.items() if kind == "Deployment" and d is not deploy)
    sel = operator["spec"]["selector"]["matchLabels"]
    assert not all(pod["metadata"]["labels"].get(k) == v for k, v in sel.items())
    assert docs[("Service", name)]["spec"]["selector"] == deploy["spec"]["selector"]["matchLabels"]

    # Apply the ServiceAccount, ClusterRole and binding for real; ask the API server what it may do.
    core, rbac = client.CoreV1Api(api), client.RbacAuthorizationV1Api(api)
    core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=ns)))
    role, binding = docs[("ClusterRole", name)], docs[("ClusterRoleBinding", name)]
    try:
        core.create_namespaced_service_account(ns, docs[("ServiceAccount", name)])
        rbac.create_cluster_role(role)
        rbac.create_cluster_role_binding(binding)
        authz = client.AuthorizationV1Api(api)

        def can(verb: str, resource: str, group: str = "modelreg.io") -> bool:
            review = client.V1SubjectAccessReview(spec=client.V1SubjectAccessReviewSpec(
                user=f"system:serviceaccount:{ns}:{name}",
                groups=["system:serviceaccounts", f"system:serviceaccounts:{ns}", "system:authenticated"],
                resource_attributes=client.V1ResourceAttributes(verb=verb, resource=resource, group=group,
                                                                namespace="risk"),
            ))  # fmt: skip
            return bool(authz.create_subject_access_review(review).status.allowed)

        for resource in ("registeredmodels", "performancesnapshots", "incidents"):
            assert can("list", resource) and can("watch", resource) and can("get", resource)
            for verb in ("create", "update", "patch", "delete"):
                assert not can(verb, resource), (verb, resource)
            assert not can("patch", resource + "/status")
        assert can("get", "configmaps", "") and not can("list", "configmaps", "")
        assert not can("get", "secrets", "") and not can("list", "secrets", "")
    finally:
        for call in (
            lambda: rbac.delete_cluster_role_binding(name),
            lambda: rbac.delete_cluster_role(name),
            lambda: core.delete_namespace(ns),
        ):
            try:
                call()
            except client.ApiException:
                pass
