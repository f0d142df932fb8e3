"""MetricSource, spec.monitoring and spec.source as the real API server enforces them (docs/metricsource.md)."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from kubernetes import client

from tests.integration.test_crd_validation import GROUP, VERSION, model, rejection, snapshot

QUERIES = {
    "sampleCount": 'sum(increase(model_requests_total{model="{{modelName}}"}[{{window}}]))',
    "errorCount": 'sum(increase(model_errors_total{model="{{modelName}}"}[{{window}}])) or vector(0)',
    "custom": {"accuracy": 'avg_over_time(model_accuracy{model="{{modelName}}"}[{{window}}])'},
    "featureHistogram": 'sum by (le) (increase(f_bucket{feature="{{feature}}"}[{{window}}]))',
}


def source(name: str = "prometheus", **prom: Any) -> dict[str, Any]:
    spec_prom: dict[str, Any] = {"url": "http://prometheus.monitoring.svc:9090"}
    spec_prom.update(prom)
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "MetricSource",
        "metadata": {"name": name},
        "spec": {"prometheus": spec_prom, "queries": copy.deepcopy(QUERIES)},
    }


def create(custom: client.CustomObjectsApi, namespace: str, doc: dict[str, Any]) -> dict[str, Any]:
    plural = {"MetricSource": "metricsources", "RegisteredModel": "registeredmodels"}.get(
        doc["kind"], "performancesnapshots"
    )
    return custom.create_namespaced_custom_object(GROUP, VERSION, namespace, plural, doc, field_validation="Strict")


def test_full_metricsource_is_accepted_and_status_is_a_subresource(
    custom: client.CustomObjectsApi, iso_namespace: str
) -> None:
    # A namespace the session's operator does not watch: its probe would write a status the
    # test then reads as the one the main resource let through.
    namespace = iso_namespace
    doc = source(
        headers=[{"name": "X-Scope-OrgID", "value": "team-a"}],
        bearerTokenSecretRef={"name": "prom-reader", "key": "token"},
        caConfigMapRef={"name": "prom-ca", "key": "ca.crt"},
        timeout="10s",
    )
    doc["spec"]["queries"]["latencyP99Ms"] = "1000 * histogram_quantile(0.99, sum by (le) (rate(x[{{window}}])))"
    out = create(custom, namespace, doc)
    assert out["spec"]["prometheus"]["headers"] == [{"name": "X-Scope-OrgID", "value": "team-a"}]
    ignored = custom.patch_namespaced_custom_object(
        GROUP,
        VERSION,
        namespace,
        "metricsources",
        "prometheus",
        {"status": {"lastProbe": {"at": "2026-11-20T10:00:00Z", "ok": True}}},
    )
    assert "status" not in ignored
    status = {
        "conditions": [
            {
                "type": "Ready",
                "status": "True",
                "reason": "Probed",
                "message": "",
                "lastTransitionTime": "2026-11-20T10:00:00Z",
            }
        ],
        "lastProbe": {"at": "2026-11-20T10:00:00Z", "ok": True, "message": "vector(1) answered"},
    }
    out = custom.patch_namespaced_custom_object_status(
        GROUP, VERSION, namespace, "metricsources", "prometheus", {"status": status}
    )
    assert out["status"]["lastProbe"]["ok"] is True


def _long_query() -> str:
    return "sum(x)" + " " * 4100


BAD_SOURCES = {
    "ftp url": (source(url="ftp://prom:9090"), ["url"]),
    "not a url": (source(url="prometheus:9090"), ["url"]),
    "timeout over 60s": (source(timeout="61s"), ["timeout"]),
    "zero timeout": (source(timeout="0s"), ["timeout"]),
    "header with newline": (source(headers=[{"name": "X-Org", "value": "a\r\nX-Evil: 1"}]), ["headers", "value"]),
    "header name with newline": (source(headers=[{"name": "X-Org\n", "value": "a"}]), ["headers", "name"]),
    "authorization header": (source(headers=[{"name": "Authorization", "value": "Bearer x"}]), ["Authorization"]),
    "name over 63": (source(name="p" * 64), ["metadata.name", "63"]),
}


@pytest.mark.parametrize(("case", "words"), [(k, v[1]) for k, v in BAD_SOURCES.items()], ids=list(BAD_SOURCES))
def test_bad_metricsource_rejected(
    custom: client.CustomObjectsApi, namespace: str, case: str, words: list[str]
) -> None:
    message = rejection(lambda: create(custom, namespace, BAD_SOURCES[case][0]))
    for word in words:
        assert word in message, message


def test_query_bounds(custom: client.CustomObjectsApi, namespace: str) -> None:
    long_query = source(name="long")
    long_query["spec"]["queries"]["sampleCount"] = _long_query()
    assert "sampleCount" in rejection(lambda: create(custom, namespace, long_query))
    many = source(name="many")
    many["spec"]["queries"]["custom"] = {f"m{i}": "sum(x)" for i in range(21)}
    assert "custom" in rejection(lambda: create(custom, namespace, many))
    twenty = source(name="twenty")
    twenty["spec"]["queries"]["custom"] = {f"m{i}": "sum(x)" for i in range(20)}
    create(custom, namespace, twenty)
    missing = source(name="missing")
    del missing["spec"]["queries"]["sampleCount"]
    assert "sampleCount" in rejection(lambda: create(custom, namespace, missing))


def monitored(name: str, **mon: Any) -> dict[str, Any]:
    m: dict[str, Any] = {"sourceRef": {"name": "prometheus"}}
    m.update(mon)
    return model(name=name, monitoring=m)


def test_monitoring_accepted(custom: client.CustomObjectsApi, namespace: str) -> None:
    doc = monitored(
        "ok-1",
        interval="1m",
        window="5m",
        evaluationDelay="30s",
        stages=["Sandbox", "Production"],
        features=["amount", "merchant_risk"],
        driftReference={"version": "3.0.2", "start": "2026-11-01T00:00:00Z", "end": "2026-11-08T00:00:00Z"},
    )
    out = create(custom, namespace, doc)
    assert out["spec"]["monitoring"]["interval"] == "1m"
    create(custom, namespace, monitored("ok-2", interval="5s", window="1m30s", evaluationDelay="0s"))


BAD_MONITORING = {
    "interval under 5s": ({"interval": "4s"}, ["interval", "at least 5s"]),
    "fractional interval": ({"interval": "5.5s"}, ["interval", "whole number of seconds"]),
    "millisecond window": ({"window": "10s500ms"}, ["window", "whole number of seconds"]),
    "negative delay": ({"evaluationDelay": "-1s"}, ["evaluationDelay"]),
    "unknown stage": ({"stages": ["Archived"]}, ["stages"]),
    "features without reference": ({"features": ["amount"]}, ["driftReference"]),
    "reference backwards": (
        {"features": ["a"], "driftReference": {"start": "2026-11-08T00:00:00Z", "end": "2026-11-01T00:00:00Z"}},
        ["start"],
    ),
    "source name over 63": ({"sourceRef": {"name": "p" * 64}}, ["sourceRef.name"]),
    "feature name with a space": (
        {
            "features": ["merchant risk"],
            "driftReference": {"start": "2026-11-01T00:00:00Z", "end": "2026-11-02T00:00:00Z"},
        },
        ["features"],
    ),
}


@pytest.mark.parametrize(("case", "words"), [(k, v[1]) for k, v in BAD_MONITORING.items()], ids=list(BAD_MONITORING))
def test_bad_monitoring_rejected(custom: client.CustomObjectsApi, namespace: str, case: str, words: list[str]) -> None:
    doc = monitored("bad", **BAD_MONITORING[case][0])
    message = rejection(lambda: create(custom, namespace, doc))
    for word in words:
        assert word in message, message


def test_pulled_snapshot_source_is_accepted_and_immutable(custom: client.CustomObjectsApi, namespace: str) -> None:
    doc = snapshot(
        "pulled-1",
        source={
            "metricSource": "prometheus",
            "queries": {"sampleCount": 'sum(increase(x{model="m"}[60s]))', "feature:amount": "sum by (le) (y)"},
            "noData": ["oodCount"],
            "invalid": ["latencyP99Ms"],
        },
    )
    out = create(custom, namespace, doc)
    assert out["spec"]["source"]["noData"] == ["oodCount"]
    message = rejection(
        lambda: custom.patch_namespaced_custom_object(
            GROUP, VERSION, namespace, "performancesnapshots", "pulled-1", {"spec": {"source": {"noData": []}}}
        )
    )
    assert "immutable" in message
