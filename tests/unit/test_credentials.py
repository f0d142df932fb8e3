"""Kubeconfig parsing, expiry decisions, the 401 backoff, and the credential source's re-reads."""

from __future__ import annotations

import base64
import datetime
import json
import os
import stat
from pathlib import Path
from typing import Any

import pytest
import yaml

from modelreg.kube import credentials, kubeconfig
from modelreg.kube.kubeconfig import CredentialError, ExecConfig, Lockout

UTC = datetime.UTC
T0 = datetime.datetime(2026, 1, 1, 12, 0, 0, tzinfo=UTC)


def kubeconfig_doc(users: dict[str, dict[str, Any]], current: str = "dev", **cluster: Any) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "c", "cluster": {"server": "https://127.0.0.1:6443", **cluster}}],
        "users": [{"name": name, "user": user} for name, user in users.items()],
        "contexts": [
            {"name": name, "context": {"cluster": "c", "user": name, "namespace": f"ns-{name}"}} for name in users
        ],
        "current-context": current,
    }


def write(path: Path, doc: dict[str, Any]) -> Path:
    path.write_text(yaml.safe_dump(doc))
    return path


# ----------------------------------------------------------------------------- pure parsing


def test_select_current_context_and_relative_paths(tmp_path: Path) -> None:
    doc = kubeconfig_doc(
        {"dev": {"tokenFile": "tok"}, "admin": {"client-certificate": "a.crt", "client-key": "/abs/a.key"}},
        **{"certificate-authority": "../ca.crt"},
    )
    merged = kubeconfig.merge([(str(tmp_path / "sub" / "config"), doc)])
    auth = kubeconfig.select(merged, None, "x")
    assert auth.context == "dev" and auth.namespace == "ns-dev" and auth.user == "dev"
    assert auth.token_file == str(tmp_path / "sub" / "tok")
    assert auth.ca_file == str(tmp_path / "ca.crt")
    admin = kubeconfig.select(merged, "admin", "x")
    assert admin.cert_file == str(tmp_path / "sub" / "a.crt") and admin.key_file == "/abs/a.key"


def test_merge_first_file_wins(tmp_path: Path) -> None:
    first = kubeconfig_doc({"dev": {"token": "one"}}, current="dev")
    second = kubeconfig_doc({"dev": {"token": "two"}, "other": {"token": "three"}}, current="other")
    merged = kubeconfig.merge([("/a/config", first), ("/b/config", second)])
    assert merged["current-context"] == "dev"
    assert kubeconfig.select(merged, None, "x").token == "one"
    assert kubeconfig.select(merged, "other", "x").token == "three"


def test_token_wins_over_token_file_and_data_is_decoded() -> None:
    pem = b"-----BEGIN CERTIFICATE-----\nx\n-----END CERTIFICATE-----\n"
    doc = kubeconfig_doc(
        {
            "dev": {
                "token": "t",
                "tokenFile": "/f",
                "client-certificate-data": base64.b64encode(pem).decode(),
                "client-key-data": base64.b64encode(b"key").decode(),
            }
        },
        **{"certificate-authority-data": base64.b64encode(pem).decode()},
    )
    auth = kubeconfig.select(kubeconfig.merge([("/k", doc)]), None, "x")
    assert auth.token == "t" and auth.token_file is None
    assert auth.cert_data == pem and auth.key_data == b"key" and auth.ca_data == pem


@pytest.mark.parametrize(
    ("users", "context", "cause"),
    [
        ({"dev": {"token": "t"}}, "ghost", "context not found (contexts: dev)"),
        ({"dev": {"auth-provider": {"name": "gcp"}}}, None, "auth-provider 'gcp' is not supported"),
        ({"dev": {"client-certificate": "/c"}}, None, "needs both a certificate and a key"),
        ({"dev": {"exec": {"command": "x", "apiVersion": "client.authentication.k8s.io/v1alpha1"}}}, None, "v1alpha1"),
        ({"dev": {"client-key-data": "%%%", "client-certificate-data": "%%%"}}, None, "not valid base64"),
    ],
)
def test_select_refuses_unusable_contexts_naming_context_and_cause(
    users: dict[str, Any], context: str | None, cause: str
) -> None:
    merged = kubeconfig.merge([("/home/u/.kube/config", kubeconfig_doc(users))])
    with pytest.raises(CredentialError) as info:
        kubeconfig.select(merged, context, "/home/u/.kube/config")
    text = str(info.value)
    assert text.startswith(f'kubeconfig context "{context or "dev"}" (/home/u/.kube/config): ')
    assert cause in text and "\n" not in text


def test_exec_stanza_and_in_cluster() -> None:
    doc = kubeconfig_doc(
        {
            "dev": {
                "exec": {
                    "apiVersion": "client.authentication.k8s.io/v1beta1",
                    "command": "./bin/login",
                    "args": ["--a", 1],
                    "env": [{"name": "K", "value": "v"}],
                    "provideClusterInfo": True,
                }
            }
        }
    )
    auth = kubeconfig.select(kubeconfig.merge([("/etc/kube/config", doc)]), None, "x")
    assert auth.exec == ExecConfig(
        command="/etc/kube/bin/login",
        args=("--a", "1"),
        env=(("K", "v"),),
        api_version="client.authentication.k8s.io/v1beta1",
        provide_cluster_info=True,
    )
    info = json.loads(kubeconfig.exec_info(auth.exec, auth))
    assert info["spec"] == {
        "interactive": False,
        "cluster": {"server": "https://127.0.0.1:6443", "insecure-skip-tls-verify": False},
    }
    pod = kubeconfig.in_cluster({"KUBERNETES_SERVICE_HOST": "fd00::1", "KUBERNETES_SERVICE_PORT": "443"}, "/sa")
    assert pod is not None and pod.server == "https://[fd00::1]:443"
    assert pod.token_file == "/sa/token" and pod.ca_file == "/sa/ca.crt"
    assert kubeconfig.in_cluster({}) is None


V1 = ExecConfig(command="x")


def exec_output(**status: Any) -> bytes:
    return json.dumps({"apiVersion": V1.api_version, "kind": "ExecCredential", "status": status}).encode()


def test_parse_exec_credential() -> None:
    result = kubeconfig.parse_exec_credential(exec_output(token="t", expirationTimestamp="2026-01-01T12:00:05Z"), V1)
    assert result.token == "t" and result.expiration == T0 + datetime.timedelta(seconds=5)
    certs = kubeconfig.parse_exec_credential(exec_output(clientCertificateData="C", clientKeyData="K"), V1)
    assert certs.cert_data == b"C" and certs.key_data == b"K" and certs.token is None


@pytest.mark.parametrize(
    ("raw", "cause"),
    [
        (b"Please log in at https://example/", "printed no ExecCredential JSON"),
        (b'{"kind": "Pod"}', "not an ExecCredential"),
        (
            json.dumps({"apiVersion": "client.authentication.k8s.io/v1beta1", "kind": "ExecCredential"}).encode(),
            "the kubeconfig asks for client.authentication.k8s.io/v1",
        ),
        (exec_output(), "neither token nor client certificate"),
        (exec_output(clientCertificateData="C"), "without clientKeyData"),
        (exec_output(token="t", expirationTimestamp="soon"), "invalid expirationTimestamp"),
    ],
)
def test_parse_exec_credential_refuses_garbage(raw: bytes, cause: str) -> None:
    with pytest.raises(ValueError) as info:
        kubeconfig.parse_exec_credential(raw, V1)
    assert cause in str(info.value)


# ----------------------------------------------------------------------------- decisions


def test_backoff_schedule_1s_to_60s() -> None:
    gen = kubeconfig.backoffs()
    assert [next(gen) for _ in range(9)] == [1, 2, 4, 8, 16, 32, 60, 60, 60]


def test_exec_due_before_expiry() -> None:
    five = T0 + datetime.timedelta(seconds=5)
    assert kubeconfig.exec_due(None, None, T0)
    assert not kubeconfig.exec_due(T0, None, T0 + datetime.timedelta(days=365))
    assert not kubeconfig.exec_due(T0, five, T0 + datetime.timedelta(seconds=4.4))
    assert kubeconfig.exec_due(T0, five, T0 + datetime.timedelta(seconds=4.5))  # a tenth of its life early
    hour = T0 + datetime.timedelta(hours=1)
    assert kubeconfig.exec_refresh_at(T0, hour) == hour - datetime.timedelta(seconds=60)  # at most 60 s early


def test_token_file_due_every_60s() -> None:
    assert kubeconfig.token_file_due(None, 0.0)
    assert not kubeconfig.token_file_due(100.0, 159.9)
    assert kubeconfig.token_file_due(100.0, 160.0)


def test_lockout_after_five_minutes_of_401s() -> None:
    lock = Lockout()
    assert [lock.unauthorized(t) for t in (10.0, 11.0, 13.0)] == [1, 2, 4]
    assert not lock.locked_out(309.9) and lock.locked_out(310.0)
    assert lock.locked_out_for(70.0) == 60.0
    lock.authenticated()
    assert not lock.locked_out(1000.0) and lock.unauthorized(1000.0) == 1  # the schedule starts again


# ----------------------------------------------------------------------------- the source (files, plugins)


class Clock:
    def __init__(self) -> None:
        self.mono = 1000.0
        self.wall = T0

    def advance(self, seconds: float) -> None:
        self.mono += seconds
        self.wall += datetime.timedelta(seconds=seconds)


def source_for(path: Path, clock: Clock, context: str | None = None) -> credentials.CredentialSource:
    auth = credentials.resolve(str(path), context, env={})
    source = credentials.CredentialSource(auth, env={"PATH": os.environ["PATH"]}, monotonic=lambda: clock.mono)
    source._utcnow = lambda: clock.wall  # type: ignore[method-assign]
    return source


def test_token_file_reread_every_60s_and_on_demand_by_contents(tmp_path: Path) -> None:
    # A projected token: ..data -> a dated directory, swapped by the kubelet.
    for gen, token in (("v1", "first"), ("v2", "second"), ("v3", "third")):
        (tmp_path / gen).mkdir()
        (tmp_path / gen / "token").write_text(token + "\n")
    (tmp_path / "..data").symlink_to("v1")
    (tmp_path / "token").symlink_to("..data/token")
    config = write(tmp_path / "config", kubeconfig_doc({"dev": {"tokenFile": str(tmp_path / "token")}}))
    clock = Clock()
    source = source_for(config, clock)
    first = source.current()
    assert first.token == "first" and first.authorization() == "Bearer first"

    def swap(target: str) -> None:
        (tmp_path / "..data.tmp").symlink_to(target)
        os.replace(tmp_path / "..data.tmp", tmp_path / "..data")

    swap("v2")
    clock.advance(59)
    assert source.current().token == "first"  # not due yet
    clock.advance(1)
    second = source.current()
    assert second.token == "second" and second.generation == first.generation + 1
    swap("v3")
    third = source.refresh(force=True, seen=second.generation)  # after a 401: at once
    assert third.token == "third" and third.generation == second.generation + 1
    # A request rejected with an older generation does not read again.
    assert source.refresh(force=True, seen=second.generation) is third
    assert source.refresh(force=True, seen=third.generation).generation == third.generation  # unchanged contents


def plugin(tmp_path: Path, body: str) -> Path:
    script = tmp_path / "plugin.py"
    script.write_text("#!/usr/bin/env python3\nimport json, os, sys\n" + body)
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    return script


def exec_kubeconfig(tmp_path: Path, script: Path, api: str = "client.authentication.k8s.io/v1") -> Path:
    user = {
        "exec": {"apiVersion": api, "command": str(script), "args": ["--n", "x"], "env": [{"name": "E", "value": "e"}]}
    }
    return write(tmp_path / "config", kubeconfig_doc({"dev": user}))


def test_exec_plugin_run_again_before_expiry(tmp_path: Path) -> None:
    counter = tmp_path / "runs"
    script = plugin(
        tmp_path,
        f"""
with open({str(counter)!r}, "a") as fh: fh.write("x")
n = len(open({str(counter)!r}).read())
info = json.loads(os.environ["KUBERNETES_EXEC_INFO"])
assert sys.argv[1:] == ["--n", "x"] and os.environ["E"] == "e" and info["spec"]["interactive"] is False
print(json.dumps({{"apiVersion": "client.authentication.k8s.io/v1", "kind": "ExecCredential",
  "status": {{"token": f"t{{n}}", "expirationTimestamp": "2026-01-01T12:00:10Z"}}}}))
""",
    )
    clock = Clock()
    source = source_for(exec_kubeconfig(tmp_path, script), clock)
    assert source.current().token == "t1"
    clock.advance(8.9)
    assert source.current().token == "t1" and not source.due()
    clock.advance(0.1)  # 9 s of 10: due
    assert source.due()
    creds = source.current()
    assert creds.token == "t2" and creds.expiration == T0 + datetime.timedelta(seconds=10)
    assert source.refresh(force=True).token == "t3"  # after a 401
    assert counter.read_text() == "xxx"


@pytest.mark.parametrize(
    ("body", "cause"),
    [
        (
            "sys.stderr.write('token expired, run login\\n'); sys.exit(3)",
            "failed with exit code 3: token expired, run login",
        ),
        ("print('<html>login</html>')", "printed no ExecCredential JSON"),
    ],
)
def test_load_refuses_a_failing_exec_plugin(tmp_path: Path, body: str, cause: str) -> None:
    config = exec_kubeconfig(tmp_path, plugin(tmp_path, body))
    with pytest.raises(CredentialError) as info:
        credentials.load(str(config))
    assert str(info.value).startswith(f'kubeconfig context "dev" ({config}): exec plugin ')
    assert cause in str(info.value)


def test_load_refuses_an_interactive_only_exec_plugin(tmp_path: Path) -> None:
    script = plugin(tmp_path, "print('never run')")
    user = {
        "exec": {"apiVersion": "client.authentication.k8s.io/v1", "command": str(script), "interactiveMode": "Always"}
    }
    config = write(tmp_path / "config", kubeconfig_doc({"dev": user}))
    with pytest.raises(CredentialError, match=r"needs a terminal \(interactiveMode: Always\)"):
        credentials.load(str(config))


def test_load_refuses_missing_files(tmp_path: Path) -> None:
    with pytest.raises(CredentialError, match=r'kubeconfig context "dev" \(.*/nope\): file not found'):
        credentials.load(str(tmp_path / "nope"), "dev")
    config = write(tmp_path / "config", kubeconfig_doc({"dev": {"tokenFile": str(tmp_path / "gone")}}))
    with pytest.raises(CredentialError, match=r"token file .*/gone does not exist"):
        credentials.load(str(config))
    missing = exec_kubeconfig(tmp_path, tmp_path / "no-such-plugin")
    with pytest.raises(CredentialError, match="exec plugin .*no-such-plugin' not found"):
        credentials.load(str(missing))


def test_kubernetes_configuration_follows_the_token_file(tmp_path: Path) -> None:
    token = tmp_path / "token"
    token.write_text("one")
    config = write(
        tmp_path / "config", kubeconfig_doc({"dev": {"tokenFile": str(token)}}, **{"insecure-skip-tls-verify": True})
    )
    clock = Clock()
    source = source_for(config, clock)
    conf = credentials.kubernetes_configuration(source)
    assert conf.host == "https://127.0.0.1:6443" and conf.verify_ssl is False
    assert conf.auth_settings()["BearerToken"]["value"] == "Bearer one"
    token.write_text("two")
    clock.advance(60)
    assert conf.auth_settings()["BearerToken"]["value"] == "Bearer two"


def test_in_cluster_projected_token(tmp_path: Path) -> None:
    from modelreg.devcluster import pki

    ca, _ = pki.make_ca()
    (tmp_path / "ca.crt").write_bytes(pki.cert_pem(ca))
    (tmp_path / "token").write_text("projected\n")
    env = {"KUBERNETES_SERVICE_HOST": "10.0.0.1", "KUBERNETES_SERVICE_PORT": "443", "HOME": str(tmp_path)}
    source = credentials.load(env=env, service_account_dir=str(tmp_path))
    assert source.auth.source == "in-cluster" and source.auth.server == "https://10.0.0.1:443"
    assert source.current().authorization() == "Bearer projected"
    assert "in-cluster service account" in source.where
    # A kubeconfig named explicitly wins over the pod's service account.
    config = write(tmp_path / "config", kubeconfig_doc({"dev": {"token": "t"}}))
    assert credentials.resolve(str(config), env=env, service_account_dir=str(tmp_path)).context == "dev"
