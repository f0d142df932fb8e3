"""Point an opted-in serving workload at the live Production artifact (SPEC §1 Serving).

One server-side apply under field manager ``modelreg`` that owns exactly one
env entry of one container. A workload without the annotation
``modelreg.io/serving-model: <modelName>`` is refused and left untouched.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from modelreg.api.models import RegisteredModelSpec
from modelreg.kube.client import ApiError, KubeClient, path_for

OPT_IN_ANNOTATION = "modelreg.io/serving-model"
PLURALS = {"Deployment": "deployments", "StatefulSet": "statefulsets"}


@dataclass(frozen=True)
class ServingResult:
    ok: bool
    reason: str  # Synced | NotOptedIn | WorkloadNotFound | Forbidden | ContainerNotFound | ApplyFailed
    message: str


def synced_message(spec: RegisteredModelSpec) -> str:
    assert spec.serving is not None
    ref = spec.serving.target_ref
    return f"{ref.kind}/{ref.name} container {spec.serving.container} env {spec.serving.env}={spec.artifact.uri}"


async def sync_serving(client: KubeClient, namespace: str, spec: RegisteredModelSpec) -> ServingResult:
    """Make the workload's env var equal ``spec.artifact.uri``."""
    serving = spec.serving
    assert serving is not None
    ref = serving.target_ref
    path = path_for("apps", "v1", PLURALS[ref.kind], namespace, ref.name)
    try:
        workload = await client.get(path)
    except ApiError as err:
        if err.not_found:
            return ServingResult(False, "WorkloadNotFound", f"{ref.kind}/{ref.name} not found in {namespace}")
        if err.forbidden:
            return ServingResult(False, "Forbidden", f"reading {ref.kind}/{ref.name}: {err.message}")
        raise
    annotations = workload.get("metadata", {}).get("annotations") or {}
    if annotations.get(OPT_IN_ANNOTATION) != spec.model_name:
        return ServingResult(
            False,
            "NotOptedIn",
            f"{ref.kind}/{ref.name} lacks annotation {OPT_IN_ANNOTATION}: {spec.model_name}; left untouched",
        )
    containers = workload.get("spec", {}).get("template", {}).get("spec", {}).get("containers") or []
    if not any(c.get("name") == serving.container for c in containers):
        return ServingResult(False, "ContainerNotFound", f"{ref.kind}/{ref.name} has no container {serving.container}")
    current = next(
        (
            e.get("value")
            for c in containers
            if c.get("name") == serving.container
            for e in c.get("env") or []
            if e.get("name") == serving.env
        ),
        None,
    )
    message = synced_message(spec)
    if current == spec.artifact.uri and _owned(workload):
        return ServingResult(True, "Synced", message)
    body = {
        "apiVersion": "apps/v1",
        "kind": ref.kind,
        "metadata": {"name": ref.name, "namespace": namespace},
        "spec": {
            "template": {
                "spec": {
                    "containers": [
                        {
                            "name": serving.container,
                            "env": [{"name": serving.env, "value": spec.artifact.uri}],
                        }
                    ]
                }
            }
        },
    }
    try:
        await client.apply(path, body)
    except ApiError as err:
        if err.forbidden:
            return ServingResult(False, "Forbidden", f"patching {ref.kind}/{ref.name}: {err.message}")
        if err.not_found:
            return ServingResult(False, "WorkloadNotFound", f"{ref.kind}/{ref.name} not found in {namespace}")
        return ServingResult(False, "ApplyFailed", f"{ref.kind}/{ref.name}: {err.message}")
    return ServingResult(True, "Synced", message)


def _owned(workload: dict[str, Any]) -> bool:
    """Whether field manager ``modelreg`` already holds an apply entry on the workload."""
    return any(
        m.get("manager") == "modelreg" and m.get("operation") == "Apply"
        for m in workload.get("metadata", {}).get("managedFields") or []
    )
