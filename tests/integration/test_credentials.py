"""Credentials on the real API server: a rotated token file and an exec plugin.

The operator runs under a ServiceAccount with the chart's ClusterRole (the rendered
copy in manifests/base/rbac.yaml), in a namespace no other operator watches.
"""

from __future__ import annotations

import asyncio
import base64
import datetime
import json
import os
import ssl
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client

from tests.integration.conftest import REPO
from tests.integration.kit import Cluster, OperatorProcess, wait_for

SA = "modelreg-cred"


@dataclass
class Identity:
    namespace: str
    service_account: str
    server: str
    ca_pem: bytes

    def kubeconfig(self, path: Path, user: dict[str, Any]) -> Path:
        ca = base64.b64encode(self.ca_pem).decode()
        doc = {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [{"name": "c", "cluster": {"server": self.server, "certificate-authority-data": ca}}],
            "users": [{"name": "operator", "user": user}],
            "contexts": [
                {"name": "operator", "context": {"cluster": "c", "user": "operator", "namespace": self.namespace}}
            ],
            "current-context": "operator",
        }
        path.write_text(yaml.safe_dump(doc))
        return path

    def status_with(self, token: str) -> int:
        """The HTTP status the API server answers a request made with ``token``."""
        ctx = ssl.create_default_context(cadata=self.ca_pem.decode())
        url = f"{self.server}/apis/modelreg.io/v1alpha1/namespaces/{self.namespace}/registeredmodels?limit=1"
        req = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"})
        try:
            with urllib.request.urlopen(req, context=ctx, timeout=10) as resp:
                return int(resp.status)
        except urllib.error.HTTPError as err:
            return int(err.code)


def _chart_cluster_role_rules() -> list[dict[str, Any]]:
    docs = yaml.safe_load_all((REPO / "manifests" / "base" / "rbac.yaml").read_text())
    role = next(d for d in docs if d and d["kind"] == "ClusterRole" and d["metadata"]["name"] == "modelreg-operator")
    return role["rules"]


@pytest.fixture()
def identity(kube: Any, api: client.ApiClient, crds: list[str], iso_namespace: str) -> Iterator[Identity]:
    """A ServiceAccount in ``iso_namespace`` bound to (a copy of) the chart's operator ClusterRole."""
    ns = iso_namespace
    rbac = client.RbacAuthorizationV1Api(api)
    role = f"modelreg-cred-{ns}"
    rbac.create_cluster_role({"metadata": {"name": role}, "rules": _chart_cluster_role_rules()})
    rbac.create_cluster_role_binding(
        {
            "metadata": {"name": role},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": role},
            "subjects": [{"kind": "ServiceAccount", "name": SA, "namespace": ns}],
        }
    )
    client.CoreV1Api(api).create_namespaced_service_account(ns, {"metadata": {"name": SA}})
    cfg = yaml.safe_load(Path(kube.kubeconfig).read_text())
    context = next(c["context"] for c in cfg["contexts"] if c["name"] == kube.context)
    cluster = next(c["cluster"] for c in cfg["clusters"] if c["name"] == context["cluster"])
    if "certificate-authority-data" in cluster:
        ca = base64.b64decode(cluster["certificate-authority-data"])
    else:
        ca = (Path(kube.kubeconfig).parent / cluster["certificate-authority"]).read_bytes()
    yield Identity(namespace=ns, service_account=SA, server=cluster["server"], ca_pem=ca)
    rbac.delete_cluster_role_binding(role)
    rbac.delete_cluster_role(role)


def token_for(api: client.ApiClient, ident: Identity, bound_secret: str | None = None, seconds: int = 3600) -> str:
    """A TokenRequest token for the ServiceAccount, bound to a new Secret ``bound_secret`` when given."""
    core = client.CoreV1Api(api)
    ref = None
    if bound_secret:
        secret = core.create_namespaced_secret(ident.namespace, {"metadata": {"name": bound_secret}})
        ref = client.V1BoundObjectReference(api_version="v1", kind="Secret", name=bound_secret, uid=secret.metadata.uid)
    spec = client.V1TokenRequestSpec(audiences=[], expiration_seconds=seconds, bound_object_ref=ref)
    answer = core.create_namespaced_service_account_token(
        ident.service_account, ident.namespace, client.AuthenticationV1TokenRequest(spec=spec)
    )
    return str(answer.status.token)


def healthz(op: OperatorProcess) -> int:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{op.liveness_port}/healthz", timeout=5) as resp:
            return int(resp.status)
    except urllib.error.HTTPError as err:
        return int(err.code)


def metric(op: OperatorProcess, name: str, **labels: str) -> float:
    total = 0.0
    for line in op.metrics().splitlines():
        if line.startswith(name + "{") or line.startswith(name + " "):
            if all(f'{k}="{v}"' in line for k, v in labels.items()):
                total += float(line.rsplit(" ", 1)[1])
    return total


BAD_METRICS = {"errorRate": 0.0668, "oodRate": 0.2167}
AUTO = {"mode": "Automatic"}


def test_rotated_token_file_lets_a_locked_out_operator_go_on_without_restart(
    api: client.ApiClient, identity: Identity, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ident, ns = identity, identity.namespace
    token_file = tmp_path / "token"
    first = token_for(api, ident, bound_secret="cred-bind-1")
    token_file.write_text(first)
    kubeconfig = ident.kubeconfig(tmp_path / "kubeconfig", {"tokenFile": str(token_file)})
    # Liveness fails after 2 s of nothing but 401s here (5 minutes by default).
    monkeypatch.setenv("MODELREG_UNAUTHORIZED_LIVENESS_SECONDS", "2")
    op = OperatorProcess(
        kubeconfig=kubeconfig,
        log_path=tmp_path / "operator.log",
        identity="cred-operator",
        extra_args=("--namespace", ns),
    ).start()
    try:
        pid = op.proc.pid  # type: ignore[union-attr]
        k = Cluster(client.CustomObjectsApi(api), ns)
        k.model("fraud-1", version="1.0.0", rollbackPolicy=AUTO)
        k.wait_stage("fraud-1", "Production", timeout=60)
        k.model("fraud-2", version="2.0.0", rollbackPolicy=AUTO)
        k.wait_stage("fraud-2", "Production", timeout=60)

        # Deleting the Secret the token is bound to invalidates the token.
        client.CoreV1Api(api).delete_namespaced_secret("cred-bind-1", ns)
        wait_for(lambda: ident.status_with(first) == 401, timeout=30, what="the bound token rejected (401)")

        # A breach while the operator is locked out: its writes are answered 401.
        k.snapshot("fraud-2-bad", "fraud-2", metrics=BAD_METRICS)
        wait_for(
            lambda: "401 Unauthorized" in op.log_path.read_text(errors="replace"), timeout=60, what="a 401 in the log"
        )
        assert metric(op, "modelreg_api_unauthorized_total") >= 1
        wait_for(lambda: healthz(op) == 500, timeout=30, what="liveness failing while locked out")
        assert not k.incidents("fraud-2")

        # A fresh token in the file (as the kubelet writes one): no restart.
        token_file.with_suffix(".new").write_text(token_for(api, ident, bound_secret="cred-bind-2"))
        os.replace(token_file.with_suffix(".new"), token_file)
        k.wait_stage("fraud-2", "RolledBack", timeout=90)
        k.wait_stage("fraud-1", "Production", timeout=30)
        inc = wait_for(
            lambda: (i := k.incidents("fraud-2")) and (i[0].get("status") or {}).get("phase") == "Remediated" and i,
            timeout=30,
            what="the Incident remediated",
        )
        assert len(inc) == 1, [i["metadata"]["name"] for i in inc]
        assert metric(op, "modelreg_rollbacks_total", namespace=ns) == 1
        assert metric(op, "modelreg_incidents_opened_total") == 1
        assert op.proc is not None and op.proc.poll() is None and op.proc.pid == pid, "no restart"
        wait_for(lambda: healthz(op) == 200, timeout=30, what="liveness back once authenticated")
        assert "token file" in op.log_path.read_text(errors="replace")
    finally:
        op.stop()


def _exec_plugin(tmp_path: Path, token: str, lifetime: float) -> tuple[Path, Path]:
    """A plugin printing an ExecCredential valid for ``lifetime`` seconds; one line per run in the count file."""
    runs = tmp_path / "plugin-runs"
    script = tmp_path / "login-plugin"
    script.write_text(
        f"""#!{sys.executable}
import datetime, json, os, sys
info = json.loads(os.environ["KUBERNETES_EXEC_INFO"])
until = datetime.datetime.now(datetime.UTC) + datetime.timedelta(seconds={lifetime})
with open({str(runs)!r}, "a") as fh:
    fh.write(until.isoformat() + " " + " ".join(sys.argv[1:]) + " " + os.environ.get("PLUGIN_ENV", "") + "\\n")
print(json.dumps({{
    "apiVersion": info["apiVersion"],
    "kind": "ExecCredential",
    "status": {{"token": {token!r}, "expirationTimestamp": until.strftime("%Y-%m-%dT%H:%M:%SZ")}},
}}))
"""
    )
    script.chmod(0o755)
    return script, runs


def _runs(path: Path) -> list[str]:
    return path.read_text().splitlines() if path.exists() else []


def test_exec_plugin_kubeconfig_for_run_and_fleet(api: client.ApiClient, identity: Identity, tmp_path: Path) -> None:
    ident, ns = identity, identity.namespace
    script, runs = _exec_plugin(tmp_path, token_for(api, ident), lifetime=6)
    user = {
        "exec": {
            "apiVersion": "client.authentication.k8s.io/v1",
            "command": str(script),
            "args": ["--cluster", "dev"],
            "env": [{"name": "PLUGIN_ENV", "value": "from-kubeconfig"}],
            "interactiveMode": "Never",
        }
    }
    kubeconfig = ident.kubeconfig(tmp_path / "kubeconfig", user)
    op = OperatorProcess(
        kubeconfig=kubeconfig,
        log_path=tmp_path / "operator.log",
        identity="exec-operator",
        extra_args=("--namespace", ns),
    ).start()
    try:
        k = Cluster(client.CustomObjectsApi(api), ns)
        k.model("fraud-1", version="1.0.0")
        k.wait_stage("fraud-1", "Production", timeout=60)
        started = _runs(runs)
        assert started and all(line.endswith(" --cluster dev from-kubeconfig") for line in started)

        # After the credential's expiry, the operator's next request runs the plugin again.
        expiry = datetime.datetime.fromisoformat(started[-1].split(" ", 1)[0])
        while datetime.datetime.now(datetime.UTC) < expiry:
            time.sleep(0.2)
        k.snapshot("fraud-1-ok", "fraud-1")
        k.wait_verdict("fraud-1-ok", timeout=60)
        assert len(_runs(runs)) > len(started), _runs(runs)
        assert "401" not in op.log_path.read_text(errors="replace"), op.log_tail()
    finally:
        op.stop()

    before = len(_runs(runs))
    fleet = subprocess.run(
        [sys.executable, "-m", "modelreg.cli.main", "fleet", "--kubeconfig", str(kubeconfig), "-n", ns, "-o", "json"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert fleet.returncode == 0, fleet.stderr
    assert [row["name"] for row in json.loads(fleet.stdout)] == ["fraud-1"]
    assert len(_runs(runs)) == before + 1


def test_cli_verb_with_an_expired_exec_credential_runs_the_plugin_again(
    api: client.ApiClient, identity: Identity, tmp_path: Path
) -> None:
    """The CLI's kubernetes client asks the same credential source before each request."""
    from modelreg.kube import credentials

    script, runs = _exec_plugin(tmp_path, token_for(api, identity), lifetime=2)
    user = {"exec": {"apiVersion": "client.authentication.k8s.io/v1beta1", "command": str(script)}}
    kubeconfig = identity.kubeconfig(tmp_path / "kubeconfig", user)
    source = credentials.load(str(kubeconfig))
    with credentials.kubernetes_api_client(source) as api_client:
        custom = client.CustomObjectsApi(api_client)
        custom.list_namespaced_custom_object("modelreg.io", "v1alpha1", identity.namespace, "registeredmodels")
        assert len(_runs(runs)) == 1
        wait_for(source.due, timeout=10, what="the exec credential due again")
        custom.list_namespaced_custom_object("modelreg.io", "v1alpha1", identity.namespace, "registeredmodels")
        assert len(_runs(runs)) == 2


def test_watch_answered_401_reads_the_token_file_again_before_it_resumes(
    api: client.ApiClient, identity: Identity, tmp_path: Path
) -> None:
    from modelreg.kube import credentials
    from modelreg.kube.client import KubeClient, path_for

    ident, ns = identity, identity.namespace
    token_file = tmp_path / "token"
    first = token_for(api, ident, bound_secret="watch-bind-1")
    token_file.write_text(first)
    source = credentials.load(str(ident.kubeconfig(tmp_path / "kubeconfig", {"tokenFile": str(token_file)})))
    client.CoreV1Api(api).delete_namespaced_secret("watch-bind-1", ns)
    wait_for(lambda: ident.status_with(first) == 401, timeout=30, what="the bound token rejected (401)")
    k = Cluster(client.CustomObjectsApi(api), ns)

    async def until(check: Any, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while not check():
            assert time.monotonic() < deadline, "timed out"
            await asyncio.sleep(0.05)

    async def scenario() -> list[dict[str, Any]]:
        events: list[dict[str, Any]] = []
        async with KubeClient(source) as kc:

            async def watch() -> None:
                path = path_for("modelreg.io", "v1alpha1", "registeredmodels", ns)
                async for event in kc.watch(path, timeoutSeconds="60"):
                    events.append(event)
                    return

            task = asyncio.create_task(watch())
            await until(lambda: source.lockout.count >= 1)  # the watch was answered 401 and waits
            assert not task.done() and not events
            fresh = token_for(api, ident, bound_secret="watch-bind-2")
            token_file.write_text(fresh)
            await until(lambda: source.lockout.count == 0)  # answered with the token read again
            await asyncio.to_thread(k.model, "fraud-w", "fraud", "1.0.0")
            await asyncio.wait_for(task, 30)
        return events

    events = asyncio.run(scenario())
    assert [(e["type"], e["object"]["metadata"]["name"]) for e in events] == [("ADDED", "fraud-w")]
    assert source.current().token != first


def test_exec_plugin_client_certificate_for_the_operator_client_and_the_cli(
    kube: Any, api: client.ApiClient, identity: Identity, tmp_path: Path
) -> None:
    """An ExecCredential with clientCertificateData/clientKeyData (here: the dev cluster's admin's)."""
    from modelreg.kube import credentials
    from modelreg.kube.client import KubeClient, path_for

    cfg = yaml.safe_load(Path(kube.kubeconfig).read_text())
    user_name = next(c["context"]["user"] for c in cfg["contexts"] if c["name"] == kube.context)
    user = next(u["user"] for u in cfg["users"] if u["name"] == user_name)
    if "client-certificate-data" not in user:
        pytest.skip("the cluster's kubeconfig has no embedded client certificate")
    cert, key = (base64.b64decode(user[f]).decode() for f in ("client-certificate-data", "client-key-data"))
    script = tmp_path / "cert-plugin"
    status = {"clientCertificateData": cert, "clientKeyData": key}
    doc = {"apiVersion": "client.authentication.k8s.io/v1", "kind": "ExecCredential", "status": status}
    script.write_text(f"#!{sys.executable}\nprint({json.dumps(json.dumps(doc))})\n")
    script.chmod(0o755)
    exec_user = {"exec": {"apiVersion": "client.authentication.k8s.io/v1", "command": str(script)}}
    source = credentials.load(str(identity.kubeconfig(tmp_path / "kubeconfig", exec_user)))
    assert source.current().cert_pem == cert.encode() and source.current().token is None

    async def scenario() -> dict[str, Any]:
        async with KubeClient(source) as kc:
            return await kc.list(path_for("", "v1", "namespaces"), limit="1")

    assert asyncio.run(scenario())["kind"] == "NamespaceList"
    with credentials.kubernetes_api_client(source) as api_client:
        assert client.CoreV1Api(api_client).list_namespace(limit=1).kind == "NamespaceList"


def test_cli_client_answered_401_reads_the_token_file_again_and_retries(
    api: client.ApiClient, identity: Identity, tmp_path: Path
) -> None:
    """Within the 60 s between two reads, a 401 makes the CLI's client read the token file at once."""
    from modelreg.kube import credentials

    ident, ns = identity, identity.namespace
    token_file = tmp_path / "token"
    first = token_for(api, ident, bound_secret="cli-bind-1")
    token_file.write_text(first)
    source = credentials.load(str(ident.kubeconfig(tmp_path / "kubeconfig", {"tokenFile": str(token_file)})))
    with credentials.kubernetes_api_client(source) as api_client:
        custom = client.CustomObjectsApi(api_client)
        custom.list_namespaced_custom_object("modelreg.io", "v1alpha1", ns, "registeredmodels")
        client.CoreV1Api(api).delete_namespaced_secret("cli-bind-1", ns)
        wait_for(lambda: ident.status_with(first) == 401, timeout=30, what="the bound token rejected (401)")
        token_file.write_text(token_for(api, ident, bound_secret="cli-bind-2"))
        assert not source.due()
        custom.list_namespaced_custom_object("modelreg.io", "v1alpha1", ns, "registeredmodels")
        assert source.current().token != first
