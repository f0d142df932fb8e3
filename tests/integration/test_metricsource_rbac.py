"""MetricSource polling under the chart's own RBAC (docs/metricsource.md): Secrets only when the values name them.

`modelreg run` with the chart's ServiceAccount token, in a namespace no other
operator watches: a source whose bearer token is in a Secret the chart's
values list is Ready and its version's windows are pulled (so the chart grants
enough: MetricSources, their status, creating snapshots); a source naming any
other Secret is Ready=False, reason SecretForbidden, naming the Secret.
"""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

from kubernetes import client

from tests.integration.kit import Cluster, OperatorProcess, condition, wait_for
from tests.integration.prom import CheckingProxy, Exporter, PrometheusServer
from tests.integration.test_deploy import (  # noqa: F401  (fixtures)
    Tools,
    _fullname,
    helm_bin,
    install_operator_identity,
    kubectl_bin,
    tools,
)
from tests.integration.test_metricsource_e2e import MONITOR, metric_source, pulled

TIMEOUT = 90.0


def test_secret_grant_only_for_names_in_values(
    tools: Tools,  # noqa: F811
    api: client.ApiClient,
    crds: list[str],
    iso_namespace: str,
    tmp_path: Path,
) -> None:
    ns = iso_namespace
    ident = install_operator_identity(tools, api, ns, tmp_path, "--set", f"watchNamespaces={{{ns}}}")
    grant = tools.template(
        ns,
        "--set",
        f"fullnameOverride={_fullname(ns)}",
        "--set-json",
        f"metricSources.secretNames={json.dumps({ns: ['granted']})}",
        "--show-only",
        "templates/rbac-metricsource-secrets.yaml",
    )
    tools.apply(grant)
    core = client.CoreV1Api(api)
    token = "granted-token"
    for name in ("granted", "other"):
        data = {"token": base64.b64encode(token.encode()).decode()}
        core.create_namespaced_secret(ns, client.V1Secret(metadata=client.V1ObjectMeta(name=name), data=data))

    exporter = Exporter().start()
    prom = PrometheusServer(tmp_path / "prom", [exporter.target])
    prom.workdir.mkdir()
    prom.start()
    proxy = CheckingProxy(prom.url, ("X-Scope-OrgID", "team-a"), token).start()
    op = OperatorProcess(
        kubeconfig=ident.kubeconfig, log_path=tmp_path / "op.log", identity="msrc-sa", extra_args=("--namespace", ns)
    ).start()
    try:
        k = Cluster(client.CustomObjectsApi(api), ns)
        header = [{"name": "X-Scope-OrgID", "value": "team-a"}]
        metric_source(k, "granted", proxy.url, headers=header, bearerTokenSecretRef={"name": "granted", "key": "token"})
        metric_source(k, "other", proxy.url, headers=header, bearerTokenSecretRef={"name": "other", "key": "token"})
        exporter.traffic("sa", "1.0.0", rate=50)
        mon: dict[str, Any] = {"targetStage": "Sandbox", "rollbackPolicy": {"minSamples": 20}}
        k.model("sa-1-0-0", "sa", "1.0.0", **mon, monitoring={"sourceRef": {"name": "granted"}, **MONITOR})
        k.model("sb-1-0-0", "sb", "1.0.0", **mon, monitoring={"sourceRef": {"name": "other"}, **MONITOR})

        def ready(name: str) -> dict[str, Any]:
            return condition(k.get("metricsources", name), "Ready")

        assert wait_for(lambda: ready("granted"), TIMEOUT, what="granted probed")["status"] == "True"
        forbidden = wait_for(lambda: ready("other"), TIMEOUT, what="other probed")
        assert (forbidden["status"], forbidden["reason"]) == ("False", "SecretForbidden")
        assert "other" in forbidden["message"]
        wait_for(lambda: pulled(k, "sa-1-0-0"), TIMEOUT, what="a window pulled under the chart's RBAC")
        cond = wait_for(lambda: condition(k.rm("sb-1-0-0"), "MetricsAvailable"), TIMEOUT)
        assert (cond["status"], cond["reason"]) == ("False", "SecretForbidden")
        assert not pulled(k, "sb-1-0-0")
        # The identity really cannot read the other Secret (the API server decides, not the operator).
        with ident.api_client() as sa_api:
            try:
                client.CoreV1Api(sa_api).read_namespaced_secret("other", ns)
                raise AssertionError("the operator identity read a Secret the values do not name")
            except client.ApiException as err:
                assert err.status == 403
            assert client.CoreV1Api(sa_api).read_namespaced_secret("granted", ns).data["token"]
    finally:
        op.stop()
        proxy.stop()
        prom.stop()
        exporter.stop()
