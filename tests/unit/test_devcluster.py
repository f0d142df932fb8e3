"""The local control plane's pure parts: each component's command line, the state file's
layout and round trip, the kubeconfig, and reading errors out of a component's log."""

from __future__ import annotations

import base64
import json
import stat
from pathlib import Path

import pytest
import yaml

from modelreg.devcluster import process
from modelreg.devcluster.binaries import Binaries
from modelreg.devcluster.components import (
    COMPONENTS,
    APIServer,
    ControllerManager,
    Etcd,
    plane,
)
from modelreg.devcluster.kubeconfig import kubeconfig_dict, write_kubeconfig
from modelreg.devcluster.state import (
    ClusterPaths,
    ClusterState,
    Ports,
    ProcessState,
    UnreadableState,
    load_state,
    save_state,
)

D = Path("/state")
PATHS = ClusterPaths(D)
PORTS = Ports(etcd_client=20001, etcd_peer=20002, apiserver=20003, controller_manager=20004)
BINS = Binaries(
    k8s_version="v1.37.2",
    etcd_version="v3.6.16",
    kube_apiserver=Path("/cache/k8s/kube-apiserver"),
    kube_controller_manager=Path("/cache/k8s/kube-controller-manager"),
    kubectl=Path("/cache/k8s/kubectl"),
    etcd=Path("/cache/etcd/etcd"),
)


def test_etcd_command_line() -> None:
    assert Etcd(PATHS, PORTS).argv(BINS, ["--auto-compaction-retention=5m"]) == [
        "/cache/etcd/etcd",
        "--name=default",
        "--data-dir=/state/etcd-data",
        "--listen-client-urls=http://127.0.0.1:20001",
        "--advertise-client-urls=http://127.0.0.1:20001",
        "--listen-peer-urls=http://127.0.0.1:20002",
        "--initial-advertise-peer-urls=http://127.0.0.1:20002",
        "--initial-cluster=default=http://127.0.0.1:20002",
        "--initial-cluster-state=new",
        "--unsafe-no-fsync=true",
        f"--quota-backend-bytes={4 * 1024**3}",
        "--log-level=warn",
        "--auto-compaction-retention=5m",
    ]


def test_apiserver_command_line() -> None:
    assert APIServer(PATHS, PORTS).argv(BINS, ["--audit-log-path=/tmp/audit.log"]) == [
        "/cache/k8s/kube-apiserver",
        "--etcd-servers=http://127.0.0.1:20001",
        "--cert-dir=/state/pki",
        "--tls-cert-file=/state/pki/apiserver.crt",
        "--tls-private-key-file=/state/pki/apiserver.key",
        "--client-ca-file=/state/pki/ca.crt",
        "--secure-port=20003",
        "--bind-address=127.0.0.1",
        "--advertise-address=127.0.0.1",
        "--endpoint-reconciler-type=none",
        "--service-cluster-ip-range=10.0.0.0/24",
        "--allow-privileged=true",
        "--authorization-mode=RBAC",
        "--service-account-issuer=https://127.0.0.1:20003/",
        "--service-account-key-file=/state/pki/sa.pub",
        "--service-account-signing-key-file=/state/pki/sa.key",
        "--audit-log-path=/tmp/audit.log",
    ]


def test_controller_manager_command_line() -> None:
    assert ControllerManager(PATHS, PORTS).argv(BINS) == [
        "/cache/k8s/kube-controller-manager",
        "--kubeconfig=/state/kube-controller-manager.kubeconfig",
        "--controllers=*",
        "--service-account-private-key-file=/state/pki/sa.key",
        "--root-ca-file=/state/pki/ca.crt",
        "--leader-elect=false",
        "--use-service-account-credentials=false",
        "--bind-address=127.0.0.1",
        "--secure-port=20004",
    ]


def test_plane_is_the_three_components_in_start_order() -> None:
    components = plane(PATHS, PORTS)
    assert tuple(components) == COMPONENTS == ("etcd", "kube-apiserver", "kube-controller-manager")
    assert [c.log_file for c in components.values()] == [D / "logs" / f"{name}.log" for name in COMPONENTS]
    assert {c.readiness for c in components.values()} == {
        "etcd /health",
        "kube-apiserver /readyz",
        "kube-controller-manager /healthz",
    }


def test_a_component_without_a_pid_is_not_alive_and_stopping_it_does_nothing() -> None:
    proc = ProcessState(argv=["/cache/etcd/etcd"], log="/state/logs/etcd.log")
    etcd = Etcd(PATHS, PORTS)
    assert not etcd.alive(proc)
    etcd.stop(proc)
    assert proc.pid is None


# A state.json exactly as the first release wrote it (format 1): clusters it started on a
# machine must be read (reused, stopped) by this one.
FORMAT_1 = {
    "cold_start_seconds": 5.318,
    "components": {
        "etcd": {"argv": ["/c/etcd", "--name=default"], "log": "/s/logs/etcd.log", "pid": 19305, "started_at": 1.5},
        "kube-apiserver": {"argv": ["/c/kube-apiserver"], "log": "/s/logs/kube-apiserver.log", "pid": 19306},
        "kube-controller-manager": {"argv": ["/c/kcm"], "log": "/s/logs/kube-controller-manager.log", "pid": None},
    },
    "created_at": 1764468000.25,
    "etcd_version": "v3.6.16",
    "extra_args": {"etcd": [], "kube-apiserver": ["--audit-log-path=/a"], "kube-controller-manager": []},
    "format": 1,
    "k8s_bin_dir": "/c/k8s",
    "k8s_version": "v1.37.2",
    "kubectl": "/c/k8s/kubectl",
    "ports": {"apiserver": 26471, "controller_manager": 26472, "etcd_client": 26473, "etcd_peer": 26474},
    "server": "https://127.0.0.1:26471",
}


def test_format_1_state_is_read_and_written_back_unchanged() -> None:
    state = ClusterState.from_json(FORMAT_1)
    assert state.ports == Ports(etcd_client=26473, etcd_peer=26474, apiserver=26471, controller_manager=26472)
    assert state.ports.server == state.server
    assert state.pids() == {"etcd": 19305, "kube-apiserver": 19306, "kube-controller-manager": None}
    assert state.components["etcd"].exe == "/c/etcd"
    assert state.extra_args["kube-apiserver"] == ["--audit-log-path=/a"]
    assert state.cold_start_seconds == 5.318
    assert state.to_json() == FORMAT_1


def test_state_round_trips_through_its_file(tmp_path: Path) -> None:
    path = tmp_path / "state.json"
    assert load_state(path) is None
    state = ClusterState.from_json(FORMAT_1)
    state.cold_start_seconds = None
    state.components["kube-controller-manager"].pid = 42
    save_state(path, state)
    assert load_state(path) == state
    on_disk = json.loads(path.read_text())
    assert "cold_start_seconds" not in on_disk  # added once the cluster is ready, as before
    assert on_disk["components"]["kube-controller-manager"]["pid"] == 42
    assert [p.name for p in tmp_path.iterdir()] == ["state.json"]  # no temporary file left


@pytest.mark.parametrize(
    "text",
    [
        "{not json",
        "[]",
        json.dumps({**FORMAT_1, "format": 2}),
        json.dumps({k: v for k, v in FORMAT_1.items() if k != "format"}),
        json.dumps({k: v for k, v in FORMAT_1.items() if k != "ports"}),
        json.dumps({**FORMAT_1, "ports": {"apiserver": "x"}}),
    ],
)
def test_a_state_file_of_another_layout_is_unreadable_not_a_crash(tmp_path: Path, text: str) -> None:
    path = tmp_path / "state.json"
    path.write_text(text)
    with pytest.raises(UnreadableState):
        load_state(path)


def test_kubeconfig_embeds_the_credentials_under_one_context(tmp_path: Path) -> None:
    doc = kubeconfig_dict("https://127.0.0.1:1", b"CA", "alice", b"CERT", b"KEY")
    assert doc["current-context"] == "modelreg-dev"
    assert doc["contexts"] == [{"name": "modelreg-dev", "context": {"cluster": "modelreg-dev", "user": "alice"}}]
    cluster = doc["clusters"][0]["cluster"]
    assert cluster["server"] == "https://127.0.0.1:1"
    assert base64.b64decode(cluster["certificate-authority-data"]) == b"CA"
    user = doc["users"][0]
    assert user["name"] == "alice"
    assert base64.b64decode(user["user"]["client-certificate-data"]) == b"CERT"
    assert base64.b64decode(user["user"]["client-key-data"]) == b"KEY"

    path = write_kubeconfig(tmp_path / "kc", "https://127.0.0.1:1", b"CA", "alice", b"CERT", b"KEY")
    assert yaml.safe_load(path.read_text()) == doc
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_last_error_reads_only_the_latest_run(tmp_path: Path) -> None:
    log = tmp_path / "etcd.log"
    assert process.last_error(log) is None
    log.write_text(
        "==== 2026-01-01 starting: etcd\n"
        "E0101 old failure\n"
        "==== 2026-01-02 starting: etcd\n"
        "I0102 fine\n"
        '{"level":"fatal","msg":"listen tcp: address already in use"}\n'
        "I0102 shutting down\n"
    )
    assert process.last_error(log) == '{"level":"fatal","msg":"listen tcp: address already in use"}'
    assert process.tail(log, lines=1) == "I0102 shutting down"
