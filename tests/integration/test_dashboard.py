"""`modelreg dashboard` over HTTP: Host check, start-up token, escaping, RBAC notes, port in use.

The rules: docs/observability.md.
"""

from __future__ import annotations

import re
import socket
import subprocess
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml
from kubernetes import client

from tests.integration.dashboard_kit import BIN, dashboard, fetch
from tests.integration.kit import Cluster, OperatorProcess, wait_for

NO_WAIT = {"minSandboxDuration": "0s", "minHealthySnapshots": 0, "requireApproval": False}
EVIL = '<script>window.pwned=1</script><img src=x onerror="window.pwned=2"> & "quotes"'


def login(url: str) -> tuple[str, str]:
    """Follow the printed URL once: (base URL, cookie header)."""
    status, headers, _ = fetch(url)
    assert status == 303, status
    cookie = headers["Set-Cookie"].split(";", 1)[0]
    assert "HttpOnly" in headers["Set-Cookie"] and "SameSite=Strict" in headers["Set-Cookie"]
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}", cookie


def test_host_check_and_token(kube: Any, crds: list[str], namespace: str) -> None:
    with dashboard(Path(kube.kubeconfig), "-n", namespace) as url:
        base, cookie = login(url)
        port = urlsplit(url).port
        assert fetch(base + "/")[0] == 401  # no token, no cookie
        assert fetch(base + "/?token=wrong")[0] == 401
        assert fetch(base + "/", cookie="modelreg_dashboard=wrong")[0] == 401
        status, _, body = fetch(base + "/", cookie=cookie)
        assert status == 200 and "<h1>Fleet</h1>" in body
        # A page that rebinds its own name to 127.0.0.1 sends its own Host: refused, token or not.
        assert fetch(url, host=f"attacker.example:{port}")[0] == 421
        assert fetch(base + "/", host=f"attacker.example:{port}", cookie=cookie)[0] == 421
        assert fetch(base + "/", host="127.0.0.1:1", cookie=cookie)[0] == 421
        assert fetch(base + "/", host=f"localhost:{port}", cookie=cookie)[0] == 200
        status, headers, _ = fetch(base + "/", cookie=cookie)
        assert "default-src 'none'" in headers["Content-Security-Policy"]


def test_port_in_use_is_one_line_and_exit_1(kube: Any, crds: list[str]) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        port = sock.getsockname()[1]
        out = subprocess.run(
            [str(BIN / "modelreg"), "dashboard", "--port", str(port), "--kubeconfig", str(kube.kubeconfig)],
            capture_output=True, text=True, timeout=60,
        )  # fmt: skip
    assert out.returncode == 1
    assert out.stdout == ""
    assert out.stderr == f"error: port {port} on 127.0.0.1 is in use; choose another with --port\n"


def test_everything_from_the_cluster_is_escaped(
    operator: OperatorProcess, k: Cluster, kube: Any, namespace: str
) -> None:
    k.model("xss-1", model_name="xss", version="1.0.0", promotionPolicy=NO_WAIT, description=EVIL)
    k.wait_stage("xss-1", "Production", timeout=60)
    with dashboard(Path(kube.kubeconfig), "-n", namespace) as url:
        base, cookie = login(url)
        body = wait_for(
            lambda: (b := fetch(f"{base}/model/{namespace}/xss", cookie=cookie)[2]) and "model-card" in b and b,
            60, 0.5, "the model page with its card",
        )  # fmt: skip
        assert "<script>window.pwned" not in body and "<img src=x" not in body
        assert "&lt;script&gt;window.pwned=1&lt;/script&gt;" in body
        assert body.count("<script>") == 1  # the page's own
        fleet = fetch(base + "/", cookie=cookie)[2]
        assert "<script>window" not in fleet


def test_a_user_without_snapshot_rights_sees_the_rest_and_a_note(
    operator: OperatorProcess, k: Cluster, kube: Any, api: client.ApiClient, namespace: str, tmp_path: Path
) -> None:
    if not kube.is_devcluster:
        pytest.skip("needs the local control plane's CA")
    k.model("ro-1", model_name="ro", version="1.0.0", promotionPolicy=NO_WAIT, description="read-only view")
    k.wait_stage("ro-1", "Production", timeout=60)
    k.snapshot("ro-1-a", "ro-1")
    path = kube.devcluster.issue_client_kubeconfig("mallory", [], tmp_path / "mallory.kubeconfig")
    doc = yaml.safe_load(path.read_text(encoding="utf-8"))
    doc["contexts"][0]["context"]["namespace"] = namespace
    path.write_text(yaml.safe_dump(doc), encoding="utf-8")
    rbac = client.RbacAuthorizationV1Api(api)
    rbac.create_namespaced_role(namespace, client.V1Role(
        metadata=client.V1ObjectMeta(name="mallory"),
        rules=[client.V1PolicyRule(api_groups=["modelreg.io"], resources=["registeredmodels", "incidents"],
                                   verbs=["get", "list", "watch"])],
    ))  # fmt: skip
    rbac.create_namespaced_role_binding(namespace, client.V1RoleBinding(
        metadata=client.V1ObjectMeta(name="mallory"),
        role_ref=client.V1RoleRef(api_group="rbac.authorization.k8s.io", kind="Role", name="mallory"),
        subjects=[client.RbacV1Subject(kind="User", name="mallory", api_group="rbac.authorization.k8s.io")],
    ))  # fmt: skip
    with dashboard(path) as url:  # no --namespace: all namespaces, which mallory may not list
        base, cookie = login(url)
        body = wait_for(
            lambda: (b := fetch(f"{base}/model/{namespace}/ro", cookie=cookie)[2])
            and "may not list performancesnapshots" in b and "read-only view" in b and b,
            60, 0.5, "the model page with the note",
        )  # fmt: skip
        assert f"showing namespace {namespace}" in body
        assert "Snapshots are not shown" in body
        assert re.search(r'<ol class="timeline"[^>]*>.*Production', body)  # the rest is there
        fleet = fetch(base + "/", cookie=cookie)[2]
        assert "ro</a>" in fleet and "may not list performancesnapshots" in fleet
