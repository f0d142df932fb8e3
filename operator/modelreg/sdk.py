"""Push snapshots from Python batch jobs: :func:`record_snapshot` (docs/metricsource.md).

Pulling from Prometheus (MetricSource) is one way to feed the operator; a
batch job that computes its own numbers pushes them::

    from modelreg.sdk import record_snapshot

    name = record_snapshot(
        "fraud-detector-3-1-0",
        namespace="risk",
        sample_count=12000,
        error_rate=0.012,
        ood_rate=0.04,
        drift={"psi": 0.08},
        window_end=datetime.now(UTC),
        name="fraud-detector-3-1-0-nightly-2026-11-20",   # idempotency name
    )

The same fields as ``modelreg record-snapshot``. With ``name`` the call is
idempotent: a retry after a timeout finds the snapshot already there and
returns its name, and a different snapshot under the same name raises
:class:`SnapshotConflict` instead of being silently taken for it.
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, cast

from pydantic import ValidationError

from modelreg import GROUP, VERSION
from modelreg.api.models import FeatureHistogram, PerformanceSnapshotSpec
from modelreg.core import timefmt

__all__ = ["SnapshotConflict", "build_snapshot_spec", "record_snapshot"]

PLURAL = "performancesnapshots"
DRIFT_MEASURES = ("klDivergence", "psi", "jsDivergence")


class SnapshotConflict(Exception):
    """A different snapshot already exists under the idempotency name."""


def _rfc3339(dt: datetime | str) -> str:
    return timefmt.rfc3339(timefmt.parse(dt) if isinstance(dt, str) else dt, "seconds")


def build_snapshot_spec(
    model: str,
    *,
    sample_count: int,
    error_rate: float | None = None,
    ood_rate: float | None = None,
    latency_p99_ms: float | None = None,
    custom: Mapping[str, float] | None = None,
    drift: Mapping[str, float] | None = None,
    features: Sequence[FeatureHistogram | Mapping[str, Any]] | None = None,
    window_start: datetime | str | None = None,
    window_end: datetime | str | None = None,
) -> dict[str, Any]:
    """The ``spec`` of a PerformanceSnapshot, validated like the API server would (ValueError naming the field)."""
    metrics: dict[str, Any] = {}
    for key, value in (("errorRate", error_rate), ("oodRate", ood_rate), ("latencyP99Ms", latency_p99_ms)):
        if value is not None:
            metrics[key] = value
    if custom:
        metrics["custom"] = dict(custom)
    spec: dict[str, Any] = {"modelRef": {"name": model}, "sampleCount": sample_count}
    window = {k: _rfc3339(v) for k, v in (("start", window_start), ("end", window_end)) if v is not None}
    if window:
        spec["window"] = window
    if metrics:
        spec["metrics"] = metrics
    drift_spec: dict[str, Any] = {}
    for key, value in (drift or {}).items():
        if key not in DRIFT_MEASURES:
            raise ValueError(f"drift.{key}: unknown measure (use one of {', '.join(DRIFT_MEASURES)})")
        drift_spec[key] = value
    if features:
        drift_spec["features"] = [f.wire() if isinstance(f, FeatureHistogram) else dict(f) for f in features]
    if drift_spec:
        spec["drift"] = drift_spec
    try:
        out = PerformanceSnapshotSpec.model_validate(spec)
    except ValidationError as err:
        parts = [f"spec.{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in err.errors()]
        raise ValueError("invalid snapshot: " + "; ".join(parts)) from None
    for i, f in enumerate(out.drift.features or [] if out.drift else []):
        if len(f.reference) != len(f.current):  # the CRD's CEL rule, checked before sending
            raise ValueError(f"invalid snapshot: spec.drift.features.{i}: reference and current differ in length")
    return out.wire()


def _api_client(kubeconfig: str | None, context: str | None) -> Any:
    from kubernetes import config

    if kubeconfig is None and context is None:
        try:
            config.load_incluster_config()  # type: ignore[no-untyped-call]  # kubernetes.config is unannotated
            from kubernetes import client

            return client.ApiClient()
        except config.ConfigException:
            pass
    return config.new_client_from_config(config_file=kubeconfig, context=context)  # type: ignore[no-untyped-call]


def record_snapshot(
    model: str,
    *,
    sample_count: int,
    namespace: str = "default",
    error_rate: float | None = None,
    ood_rate: float | None = None,
    latency_p99_ms: float | None = None,
    custom: Mapping[str, float] | None = None,
    drift: Mapping[str, float] | None = None,
    features: Sequence[FeatureHistogram | Mapping[str, Any]] | None = None,
    window_start: datetime | str | None = None,
    window_end: datetime | str | None = None,
    name: str | None = None,
    labels: Mapping[str, str] | None = None,
    api_client: Any = None,
    kubeconfig: str | None = None,
    context: str | None = None,
) -> str:
    """Create a PerformanceSnapshot for the RegisteredModel ``model`` and return its name.

    Args:
        model: the RegisteredModel's name (in ``namespace``).
        sample_count: requests observed in the window (≥ 0).
        error_rate, ood_rate: shares in [0, 1]; latency_p99_ms ≥ 0; custom: name → value.
        drift: precomputed measures, ``{"klDivergence" | "psi" | "jsDivergence": value}``
            (used only without ``features``).
        features: per-feature histograms ``{name, reference: [...], current: [...]}``.
        window_start, window_end: the window (datetimes, naive = UTC, or ISO strings).
        name: an idempotency name; default ``<model>-<UTC yyyymmdd-hhmmss>-<4 hex>``.
        api_client: a ``kubernetes.client.ApiClient``; default from ``kubeconfig``/``context``
            (or the in-cluster service account).

    Raises:
        ValueError: a field is invalid (the message names it), before anything is sent.
        SnapshotConflict: ``name`` exists with a different spec.
        kubernetes.client.exceptions.ApiException: the API server refused.
    """
    from kubernetes import client
    from kubernetes.client.exceptions import ApiException

    spec = build_snapshot_spec(
        model,
        sample_count=sample_count,
        error_rate=error_rate,
        ood_rate=ood_rate,
        latency_p99_ms=latency_p99_ms,
        custom=custom,
        drift=drift,
        features=features,
        window_start=window_start,
        window_end=window_end,
    )
    if name is None:
        name = f"{model}-{datetime.now(UTC).strftime('%Y%m%d-%H%M%S')}-{secrets.token_hex(2)}"
    meta: dict[str, Any] = {"name": name, "namespace": namespace}
    if labels:
        meta["labels"] = dict(labels)
    body = {"apiVersion": f"{GROUP}/{VERSION}", "kind": "PerformanceSnapshot", "metadata": meta, "spec": spec}
    owned = api_client is None
    api = api_client if api_client is not None else _api_client(kubeconfig, context)
    try:
        custom_api = client.CustomObjectsApi(api)
        try:
            custom_api.create_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, body)
        except ApiException as err:
            if err.status != 409:
                raise
            existing = cast(
                dict[str, Any], custom_api.get_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, name)
            )
            stored = PerformanceSnapshotSpec.model_validate(existing.get("spec") or {}).wire()
            if stored != spec:
                raise SnapshotConflict(
                    f"PerformanceSnapshot {namespace}/{name} already exists with a different spec"
                ) from None
        return name
    finally:
        if owned:
            api.close()
