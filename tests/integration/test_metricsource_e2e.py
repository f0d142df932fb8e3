"""The operator pulls snapshots from a real Prometheus (docs/metricsource.md), end to end on the local API server.

Prometheus (Debian's package) scrapes a synthetic exporter in the test process
every second; the session's operator polls it every 5 s. Edge cases covered:
healthy windows promote, an error spike rolls back, shifted feature values
breach drift, a stopped Prometheus gives MetricsAvailable=False (no snapshot,
health goes stale, never Healthy), two series give AmbiguousQuery, an idle
model gives Inconclusive NoData, a missing source gives SourceNotFound, an
unknown placeholder gives InvalidTemplate, and a tenant header plus a bearer
token from a Secret reach Prometheus through a checking proxy.
"""

from __future__ import annotations

import base64
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client

from tests.integration.kit import GROUP, VERSION, Cluster, condition, wait_for
from tests.integration.prom import CheckingProxy, Exporter, PrometheusServer, prometheus_binary

pytestmark = pytest.mark.timeout(300)

SEL = '{model="{{modelName}}",version="{{version}}"}'
QUERIES = {
    "sampleCount": f"sum(increase(model_requests_total{SEL}[{{{{window}}}}]))",
    "errorCount": (
        'sum(increase(model_requests_total{model="{{modelName}}",version="{{version}}",outcome="error"}'
        "[{{window}}])) or vector(0)"
    ),
    "oodCount": f"sum(increase(model_ood_total{SEL}[{{{{window}}}}])) or vector(0)",
    "featureHistogram": (
        'sum by (le) (increase(model_feature_value_bucket{model="{{modelName}}",version="{{version}}",'
        'feature="{{feature}}"}[{{window}}]))'
    ),
}
MONITOR = {"interval": "5s", "evaluationDelay": "2s"}
TIMEOUT = 90.0


@pytest.fixture(scope="module")
def exporter() -> Iterator[Exporter]:
    prometheus_binary()
    e = Exporter().start()
    yield e
    e.stop()


@pytest.fixture(scope="module")
def prometheus(exporter: Exporter, tmp_path_factory: pytest.TempPathFactory) -> Iterator[PrometheusServer]:
    server = PrometheusServer(tmp_path_factory.mktemp("prometheus"), [exporter.target]).start()
    yield server
    server.stop()


def metric_source(k: Cluster, name: str, url: str, queries: dict[str, Any] | None = None, **prom: Any) -> None:
    body = {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "MetricSource",
        "metadata": {"name": name},
        "spec": {"prometheus": {"url": url, "timeout": "5s", **prom}, "queries": queries or dict(QUERIES)},
    }
    k.custom.create_namespaced_custom_object(GROUP, VERSION, k.ns, "metricsources", body)


def pulled(k: Cluster, name: str) -> list[dict[str, Any]]:
    snaps = k.list("performancesnapshots", label_selector="modelreg.io/metric-source")
    return sorted((s for s in snaps if s["spec"]["modelRef"]["name"] == name), key=lambda s: s["spec"]["window"]["end"])


def evaluated(k: Cluster, name: str) -> list[dict[str, Any]]:
    return [s for s in pulled(k, name) if (s.get("status") or {}).get("verdict")]


def metrics_condition(k: Cluster, name: str) -> dict[str, Any]:
    return condition(k.rm(name), "MetricsAvailable")


def source_ready(k: Cluster, name: str) -> dict[str, Any]:
    return condition(k.get("metricsources", name), "Ready")


def serving_deployment(api: client.ApiClient, ns: str, model_name: str) -> None:
    container = client.V1Container(
        name="server", image="example/server:1", env=[client.V1EnvVar(name="MODEL_URI", value="")]
    )
    body = client.V1Deployment(
        metadata=client.V1ObjectMeta(name=f"{model_name}-api", annotations={"modelreg.io/serving-model": model_name}),
        spec=client.V1DeploymentSpec(
            replicas=0,
            selector=client.V1LabelSelector(match_labels={"app": model_name}),
            template=client.V1PodTemplateSpec(
                metadata=client.V1ObjectMeta(labels={"app": model_name}), spec=client.V1PodSpec(containers=[container])
            ),
        ),
    )
    client.AppsV1Api(api).create_namespaced_deployment(ns, body)


def model_uri(api: client.ApiClient, ns: str, model_name: str) -> str:
    dep = client.AppsV1Api(api).read_namespaced_deployment(f"{model_name}-api", ns)
    env = dep.spec.template.spec.containers[0].env or []
    return next((e.value or "" for e in env if e.name == "MODEL_URI"), "")


def test_pulled_healthy_windows_promote_then_an_error_spike_rolls_back(
    operator: Any, k: Cluster, api: client.ApiClient, namespace: str, exporter: Exporter, prometheus: PrometheusServer
) -> None:
    serving = {"targetRef": {"kind": "Deployment", "name": "promo-api"}, "container": "server", "env": "MODEL_URI"}
    serving_deployment(api, namespace, "promo")
    metric_source(k, "prom", prometheus.url)
    k.model("promo-1-0-0", "promo", "1.0.0", rollbackPolicy={"mode": "Automatic"}, serving=serving)
    k.wait_stage("promo-1-0-0", "Production", TIMEOUT)
    exporter.traffic("promo", "2.0.0", rate=50, errors=0.01)
    k.model(
        "promo-2-0-0",
        "promo",
        "2.0.0",
        promotionPolicy={"minSandboxDuration": "0s", "minHealthySnapshots": 2, "requireApproval": False},
        rollbackPolicy={"mode": "Automatic", "minSamples": 20},
        monitoring={"sourceRef": {"name": "prom"}, **MONITOR},
        serving=serving,
    )
    rm = k.wait_stage("promo-2-0-0", "Production", TIMEOUT)

    # Promoted on pulled windows alone: every snapshot of the version was written by the operator.
    # The snapshots' verdicts are written after the version's status (the kill-safe order), so
    # the second Healthy verdict may land a moment after the promotion is seen.
    def verdicts() -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        mine = [s for s in k.list("performancesnapshots") if s["spec"]["modelRef"]["name"] == "promo-2-0-0"]
        return mine, [s for s in mine if (s.get("status") or {}).get("verdict") == "Healthy"]

    wait_for(lambda: len(verdicts()[1]) >= 2, timeout=30, interval=0.2, what="the two Healthy verdicts written")
    mine, healthy = verdicts()
    assert mine and all("source" in s["spec"] for s in mine)
    assert len(healthy) >= 2
    first = healthy[0]
    t = int(first["metadata"]["name"].rsplit("-", 1)[1])
    assert t % 5 == 0 and first["spec"]["window"]["end"] == time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t))
    assert first["spec"]["source"]["queries"]["sampleCount"] == (
        'sum(increase(model_requests_total{model="promo",version="2.0.0"}[5s]))'
    )
    assert first["metadata"]["labels"]["modelreg.io/metric-source"] == "prom"
    assert first["metadata"]["ownerReferences"][0]["uid"] == rm["metadata"]["uid"]
    assert condition(rm, "MetricsAvailable")["status"] == "True"
    assert rm["status"]["effectivePolicy"]["monitoring"] == {
        "sourceRef": {"name": "prom"},
        "interval": "5s",
        "window": "5s",
        "evaluationDelay": "2s",
        "stages": ["Sandbox", "Production"],
        "features": [],
    }
    wait_for(lambda: model_uri(api, namespace, "promo").endswith("/2.0.0/model.bst"), TIMEOUT, what="serving 2.0.0")
    assert k.stage("promo-1-0-0") == "Archived"

    exporter.traffic("promo", "2.0.0", rate=50, errors=0.25)  # more than 5 % of requests fail
    k.wait_stage("promo-2-0-0", "RolledBack", TIMEOUT)
    k.wait_stage("promo-1-0-0", "Production", TIMEOUT)
    (incident,) = k.incidents("promo-2-0-0")
    assert incident["spec"]["trigger"]["breaches"][0]["criterion"] == "errorRate"
    assert "source" in k.snap(incident["spec"]["trigger"]["snapshot"])["spec"]
    wait_for(lambda: model_uri(api, namespace, "promo").endswith("/1.0.0/model.bst"), TIMEOUT, what="serving restored")
    exporter.idle("promo", "2.0.0")


def test_shifted_feature_values_breach_drift(
    operator: Any, k: Cluster, exporter: Exporter, prometheus: PrometheusServer
) -> None:
    metric_source(k, "prom", prometheus.url)
    start = int(time.time()) + 1
    exporter.traffic("drift", "ref", rate=50, feature=0.1)  # the reference: values near 0.1
    wait_for(lambda: time.time() > start + 8, 15, interval=0.5, what="reference traffic")
    end = start + 6
    exporter.idle("drift", "ref")
    exporter.traffic("drift", "2.0.0", rate=50, feature=0.9)  # now: values near 0.9
    ref = {
        "version": "ref",
        "start": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(start)),
        "end": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(end)),
    }
    k.model(
        "drift-2-0-0",
        "drift",
        "2.0.0",
        targetStage="Sandbox",
        rollbackPolicy={"minSamples": 20},
        monitoring={"sourceRef": {"name": "prom"}, **MONITOR, "features": ["amount"], "driftReference": ref},
    )
    snap = wait_for(
        lambda: next((s for s in evaluated(k, "drift-2-0-0") if s["spec"].get("drift")), None),
        TIMEOUT,
        what="a pulled snapshot with drift",
    )
    (feature,) = snap["spec"]["drift"]["features"]
    assert feature["name"] == "amount" and len(feature["reference"]) == len(feature["current"]) == 5
    assert feature["reference"][0] > 0 and feature["current"][0] == 0
    assert "reference:amount" in snap["spec"]["source"]["queries"]
    assert 'version="ref"' in snap["spec"]["source"]["queries"]["reference:amount"]
    status = snap["status"]
    assert status["verdict"] == "Critical"
    assert [b["criterion"] for b in status["breaches"]] == ["klDivergence"]
    exporter.idle("drift", "2.0.0")


def test_source_edge_cases(
    operator: Any, k: Cluster, api: client.ApiClient, exporter: Exporter, prometheus: PrometheusServer
) -> None:
    """Idle model → NoData; two series → AmbiguousQuery; no source → SourceNotFound; bad template; tenant + token."""
    core = client.CoreV1Api(api)
    token = "s3cret-token"
    core.create_namespaced_secret(
        k.ns,
        client.V1Secret(
            metadata=client.V1ObjectMeta(name="prom-reader"), data={"token": base64.b64encode(token.encode()).decode()}
        ),
    )
    proxy = CheckingProxy(prometheus.url, ("X-Scope-OrgID", "team-a"), token).start()
    try:
        metric_source(k, "prom", prometheus.url)
        ambiguous = dict(QUERIES, sampleCount=f"increase(model_requests_total{SEL}[{{{{window}}}}])")
        metric_source(k, "prom-ambiguous", prometheus.url, ambiguous)
        metric_source(k, "prom-badtemplate", prometheus.url, dict(QUERIES, errorCount="sum(x{m='{{model}}'})"))
        metric_source(
            k,
            "prom-tenant",
            proxy.url,
            headers=[{"name": "X-Scope-OrgID", "value": "team-a"}],
            bearerTokenSecretRef={"name": "prom-reader", "key": "token"},
        )
        metric_source(k, "prom-notoken", proxy.url, headers=[{"name": "X-Scope-OrgID", "value": "team-a"}])
        exporter.traffic("amb", "1.0.0", rate=50, errors=0.2)  # success and error series both exist
        exporter.traffic("tenant", "1.0.0", rate=50)
        mon = {"targetStage": "Sandbox", "rollbackPolicy": {"minSamples": 20}}
        k.model("idle-1-0-0", "idle", "1.0.0", **mon, monitoring={"sourceRef": {"name": "prom"}, **MONITOR})
        k.model("amb-1-0-0", "amb", "1.0.0", **mon, monitoring={"sourceRef": {"name": "prom-ambiguous"}, **MONITOR})
        k.model("gone-1-0-0", "gone", "1.0.0", **mon, monitoring={"sourceRef": {"name": "nowhere"}, **MONITOR})
        k.model("tenant-1-0-0", "tenant", "1.0.0", **mon, monitoring={"sourceRef": {"name": "prom-tenant"}, **MONITOR})

        # An idle model: Inconclusive windows whose reason says there was no data.
        snap = wait_for(lambda: next(iter(evaluated(k, "idle-1-0-0")), None), TIMEOUT, what="an idle window")
        assert snap["spec"]["sampleCount"] == 0 and "sampleCount" in snap["spec"]["source"]["noData"]
        assert snap["status"]["verdict"] == "Inconclusive" and snap["status"]["reason"].startswith("NoData")
        assert "errorRate" not in (snap["spec"].get("metrics") or {})

        # Two series: never one picked silently, no snapshot.
        cond = wait_for(lambda: (c := metrics_condition(k, "amb-1-0-0")) and c.get("status") == "False" and c, TIMEOUT)
        assert cond["reason"] == "AmbiguousQuery" and "2 series" in cond["message"]
        assert any(e.reason == "MetricsAmbiguousQuery" for e in k.events("amb-1-0-0"))

        cond = wait_for(lambda: metrics_condition(k, "gone-1-0-0"), TIMEOUT, what="SourceNotFound")
        assert (cond["status"], cond["reason"]) == ("False", "SourceNotFound")

        ready = wait_for(lambda: source_ready(k, "prom-badtemplate"), TIMEOUT, what="probe of a bad template")
        assert (ready["status"], ready["reason"]) == ("False", "InvalidTemplate")
        assert "queries.errorCount" in ready["message"] and "{{model}}" in ready["message"]

        # Tenant header and bearer token reach Prometheus through the proxy.
        wait_for(lambda: evaluated(k, "tenant-1-0-0"), TIMEOUT, what="a window pulled through the proxy")
        ready = wait_for(lambda: source_ready(k, "prom-tenant"), TIMEOUT)
        assert ready["status"] == "True"
        assert any(
            h.get("Authorization") == f"Bearer {token}" and h.get("X-Scope-OrgID") == "team-a" for h in proxy.seen
        )
        # The token is rotated: the next 401 makes the operator read the Secret again at once.
        rotated = "rotated-token"
        core.patch_namespaced_secret(
            "prom-reader", k.ns, {"data": {"token": base64.b64encode(rotated.encode()).decode()}}
        )
        proxy.token = rotated
        seen_before = len(proxy.seen)
        wait_for(
            lambda: any(h.get("Authorization") == f"Bearer {rotated}" for h in proxy.seen[seen_before:]),
            30,  # well before the 60 s re-read: it is the 401 that makes the operator read it again
            what="the rotated token used",
        )
        before = {s["metadata"]["name"] for s in pulled(k, "tenant-1-0-0")}
        wait_for(
            lambda: {s["metadata"]["name"] for s in evaluated(k, "tenant-1-0-0")} - before,
            TIMEOUT,
            what="a window pulled with the rotated token",
        )
        cond = metrics_condition(k, "tenant-1-0-0")
        assert cond["status"] == "True", cond
        ready = wait_for(lambda: source_ready(k, "prom-notoken"), TIMEOUT)
        assert (ready["status"], ready["reason"]) == ("False", "Forbidden")
        assert "no tenant" not in ready["message"]  # never the response body

        assert not pulled(k, "amb-1-0-0") and not pulled(k, "gone-1-0-0")
        assert condition(k.rm("idle-1-0-0"), "MetricsAvailable")["status"] == "True"
        # Monitoring removed from the spec: the condition goes (absent on unmonitored versions).
        k.patch("registeredmodels", "idle-1-0-0", {"spec": {"monitoring": None}})
        wait_for(lambda: not metrics_condition(k, "idle-1-0-0"), TIMEOUT, what="MetricsAvailable removed")
    finally:
        proxy.stop()
        exporter.idle("amb", "1.0.0")
        exporter.idle("tenant", "1.0.0")


def test_prometheus_stopped_gives_no_snapshot_and_goes_stale(
    operator: Any, k: Cluster, exporter: Exporter, tmp_path: Path
) -> None:
    own = PrometheusServer(tmp_path, [exporter.target]).start()
    try:
        metric_source(k, "prom-own", own.url)
        exporter.traffic("stop", "1.0.0", rate=50)
        k.model(
            "stop-1-0-0",
            "stop",
            "1.0.0",
            rollbackPolicy={"mode": "Automatic", "minSamples": 20, "staleAfter": "15s"},
            monitoring={"sourceRef": {"name": "prom-own"}, **MONITOR, "stages": ["Production"]},
        )
        wait_for(
            lambda: (k.rm("stop-1-0-0").get("status") or {}).get("health") == "Healthy",
            TIMEOUT,
            what="Healthy from pulled windows",
        )
        own.stop()
        stopped_at = time.time()
        cond = wait_for(
            lambda: (c := metrics_condition(k, "stop-1-0-0")) and c.get("status") == "False" and c,
            TIMEOUT,
            what="MetricsAvailable=False",
        )
        assert cond["reason"] in ("Unreachable", "Timeout")
        assert own.url not in cond["message"]
        # Health goes stale through staleAfter like any unobserved version; never Healthy again.
        wait_for(
            lambda: (k.rm("stop-1-0-0").get("status") or {}).get("health") == "Degraded",
            TIMEOUT,
            what="stale while Prometheus is down",
        )
        late = [s for s in pulled(k, "stop-1-0-0") if s["metadata"]["creationTimestamp"] > _iso(stopped_at + 1)]
        assert not late, [s["metadata"]["name"] for s in late]
        events = [e for e in k.events("stop-1-0-0") if e.reason.startswith("Metrics")]
        assert len(events) == 1, [(e.reason, e.message) for e in events]  # one Event per reason change
    finally:
        own.stop()
        exporter.idle("stop", "1.0.0")


def _iso(ts: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ts))


def test_a_second_replica_never_doubles_a_window(
    operator: Any, k: Cluster, namespace: str, exporter: Exporter, prometheus: PrometheusServer, tmp_path: Path
) -> None:
    """Two operators poll the same version: each window is written once (AlreadyExists = done)."""
    from tests.integration.kit import OperatorProcess

    second = OperatorProcess(
        kubeconfig=operator.kubeconfig,
        log_path=tmp_path / "second.log",
        identity="second-replica",
        extra_args=("--namespace", namespace),
    ).start()
    try:
        metric_source(k, "prom", prometheus.url)
        exporter.traffic("twice", "1.0.0", rate=50)
        k.model(
            "twice-1-0-0",
            "twice",
            "1.0.0",
            targetStage="Sandbox",
            rollbackPolicy={"minSamples": 20},
            monitoring={"sourceRef": {"name": "prom"}, **MONITOR},
        )

        def exists_total() -> float:
            total = 0.0
            for op in (operator, second):
                for line in op.metrics().splitlines():
                    if line.startswith('modelreg_pulled_windows_total{outcome="Exists"}'):
                        total += float(line.split()[-1])
            return total

        # Both polled a window and one of them found it already written.
        wait_for(lambda: exists_total() >= 1, TIMEOUT, what="a window found already written")
        snaps = pulled(k, "twice-1-0-0")
        ends = [s["spec"]["window"]["end"] for s in snaps]
        assert len(ends) == len(set(ends)) and len(snaps) >= 1
        assert all(s["metadata"]["name"] == f"twice-1-0-0-{_t(s)}" for s in snaps)
    finally:
        second.stop()
        exporter.idle("twice", "1.0.0")


def _t(snap: dict[str, Any]) -> int:
    import calendar

    return calendar.timegm(time.strptime(snap["spec"]["window"]["end"], "%Y-%m-%dT%H:%M:%SZ"))
