"""The objects the benchmark creates: the shared test manifests, with the benchmark's own values."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from tests.integration.kit import DIGEST, model_body
from tests.integration.kit import snapshot_body as kit_snapshot_body

from benchmarks.kube import API_VERSION, JSON
from benchmarks.report import iso

HEALTHY = {"errorRate": 0.01, "oodRate": 0.02}
BREACHING = {"errorRate": 0.2, "oodRate": 0.02}  # errorRate >= 2 x max: severity high
BREACHES = [{"criterion": "errorRate", "value": 0.2, "threshold": 0.05}]
HISTORY = 20  # the operator's default snapshotHistoryLimit (the bench's versions set none)


def artifact_uri(model_name: str, version: str) -> str:
    return f"s3://bench/{model_name}/{version}/model.bin"


def version_body(name: str, model_name: str, version: str, mode: str, serving: JSON | None = None) -> JSON:
    """A version promoted straight to Production, rolled back after one breach (``mode``)."""
    return model_body(
        name,
        model_name,
        version,
        artifact={"uri": artifact_uri(model_name, version), "digest": DIGEST},
        rollbackPolicy={"mode": mode, "consecutiveBreaches": 1},
        serving=serving,
    )


def serving(deployment: str) -> JSON:
    return {"targetRef": {"kind": "Deployment", "name": deployment}, "container": "server", "env": "MODEL_URI"}


def snapshot_body(name: str, rm: str, metrics: JSON) -> JSON:
    now = datetime.now(UTC)
    window = {"start": iso(now - timedelta(minutes=1)), "end": iso(now)}
    return kit_snapshot_body(name, rm, window=window, metrics=metrics)


def incident_body(ns: str, rm: str, snapshot: str) -> JSON:
    """The Incident the operator opens for ``rm`` (version 1.0.0, its own model name) on a breach."""
    return {
        "apiVersion": API_VERSION,
        "kind": "Incident",
        "metadata": {"name": f"{rm}-{snapshot.rsplit('-', 1)[1]}", "labels": {"modelreg.io/registered-model": rm}},
        "spec": {
            "severity": "high",
            "summary": f"{rm} 1.0.0: errorRate 0.2 > 0.05",
            "modelRef": {"name": rm, "modelName": rm, "version": "1.0.0"},
            "stage": "Production",
            "trigger": {"snapshot": snapshot, "breaches": BREACHES, "metrics": BREACHING},
            "playbook": "model_rollback",
            "dedupKey": f"{ns}/{rm}/1.0.0/performance",
        },
    }


def namespace_body(name: str) -> JSON:
    return {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name, "labels": {"modelreg-bench": "1"}}}


def deployment_body(name: str, model_name: str) -> JSON:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "annotations": {"modelreg.io/serving-model": model_name}},
        "spec": {
            "replicas": 0,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {
                    "containers": [
                        {
                            "name": "server",
                            "image": "example/server:1",
                            "env": [{"name": "MODEL_URI"}],  # the value is modelreg's
                        }
                    ]
                },
            },
        },
    }
