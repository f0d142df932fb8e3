"""modelreg.sdk.record_snapshot against the real API server (docs/metricsource.md, pushing)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from kubernetes import client

from modelreg.sdk import SnapshotConflict, record_snapshot
from tests.integration.kit import Cluster


def test_record_snapshot_is_typed_idempotent_and_evaluated(
    operator: Any, k: Cluster, api: client.ApiClient, namespace: str
) -> None:
    k.model("sdk-1-0-0", "sdk", "1.0.0", targetStage="Sandbox")
    end = datetime(2026, 11, 20, 10, 5, tzinfo=UTC)
    kwargs: dict[str, Any] = {
        "namespace": namespace,
        "sample_count": 5000,
        "error_rate": 0.01,
        "ood_rate": 0.02,
        "latency_p99_ms": 80.0,
        "custom": {"accuracy": 0.93},
        "drift": {"psi": 0.01},
        "window_start": end - timedelta(minutes=5),
        "window_end": end,
        "name": "sdk-1-0-0-nightly",
        "api_client": api,
    }
    assert record_snapshot("sdk-1-0-0", **kwargs) == "sdk-1-0-0-nightly"
    # A retry (say after a timeout) finds the same snapshot and returns its name.
    assert record_snapshot("sdk-1-0-0", **kwargs) == "sdk-1-0-0-nightly"
    snaps = [s for s in k.list("performancesnapshots") if s["spec"]["modelRef"]["name"] == "sdk-1-0-0"]
    assert [s["metadata"]["name"] for s in snaps] == ["sdk-1-0-0-nightly"]
    spec = snaps[0]["spec"]
    assert spec["window"] == {"start": "2026-11-20T10:00:00Z", "end": "2026-11-20T10:05:00Z"}
    assert spec["metrics"]["custom"] == {"accuracy": 0.93} and spec["drift"] == {"psi": 0.01}
    assert k.wait_verdict("sdk-1-0-0-nightly", 60)["status"]["verdict"] == "Healthy"

    with pytest.raises(SnapshotConflict, match="sdk-1-0-0-nightly"):
        record_snapshot("sdk-1-0-0", **{**kwargs, "error_rate": 0.5})

    # Without a name each call is a new snapshot.
    first = record_snapshot("sdk-1-0-0", namespace=namespace, sample_count=10, api_client=api)
    second = record_snapshot("sdk-1-0-0", namespace=namespace, sample_count=10, api_client=api)
    assert first != second and first.startswith("sdk-1-0-0-")


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"error_rate": 1.5}, "spec.metrics.errorRate"),
        ({"sample_count": -1}, "spec.sampleCount"),
        ({"drift": {"wasserstein": 0.1}}, "drift.wasserstein"),
        ({"features": [{"name": "a", "reference": [1, 2], "current": [1]}]}, "spec.drift.features"),
    ],
)
def test_bad_input_names_the_field_and_sends_nothing(
    k: Cluster, api: client.ApiClient, namespace: str, kwargs: dict[str, Any], field: str
) -> None:
    args: dict[str, Any] = {"namespace": namespace, "sample_count": 10, "api_client": api, "name": "bad-1"}
    args.update(kwargs)
    with pytest.raises(ValueError, match=field.replace(".", r"\.")):
        record_snapshot("m-1-0-0", **args)
    assert not k.list("performancesnapshots")
