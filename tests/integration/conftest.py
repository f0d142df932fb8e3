"""Fixtures for tests against the real API server."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from kubernetes import client

from modelreg.kube.crds import install_crds

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def api(kube) -> Iterator[client.ApiClient]:
    with kube.api_client() as api_client:
        yield api_client


@pytest.fixture(scope="session")
def crds(api: client.ApiClient) -> list[str]:
    """The CRDs as committed in crds/, installed and Established."""
    return install_crds(api, REPO / "crds")


@pytest.fixture()
def custom(api: client.ApiClient, crds: list[str]) -> client.CustomObjectsApi:
    return client.CustomObjectsApi(api)


# --------------------------------------------------------------------------- the operator under test

import os  # noqa: E402
import socket  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import urllib.request  # noqa: E402
from dataclasses import dataclass  # noqa: E402

from tests.integration.kit import wait_operator_live  # noqa: E402


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class OperatorProcess:
    """`modelreg run` as a separate process, as in production."""

    kubeconfig: Path
    log_path: Path
    identity: str
    extra_args: tuple[str, ...] = ()
    proc: subprocess.Popen[bytes] | None = None
    metrics_port: int = 0
    liveness_port: int = 0

    def start(self, timeout: float = 60.0) -> OperatorProcess:
        self.metrics_port, self.liveness_port = free_port(), free_port()
        env = {**os.environ, "KUBECONFIG": str(self.kubeconfig), "PYTHONUNBUFFERED": "1"}
        log = self.log_path.open("ab")
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "modelreg.cli.main",
                "run",
                "--metrics-port",
                str(self.metrics_port),
                "--liveness-port",
                str(self.liveness_port),
                "--identity",
                self.identity,
                *self.extra_args,
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
        )
        wait_operator_live(self.proc, self.liveness_port, timeout, self.log_tail, interval=0.2)
        return self

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(5)

    def metrics(self) -> str:
        with urllib.request.urlopen(f"http://127.0.0.1:{self.metrics_port}/metrics", timeout=5) as resp:
            return resp.read().decode()

    def log_tail(self, lines: int = 60) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


@pytest.fixture(scope="session")
def operator(kube, crds: list[str], tmp_path_factory: pytest.TempPathFactory) -> Iterator[OperatorProcess]:
    """One operator (with the built-in healer) watching all namespaces for the whole session."""
    op = OperatorProcess(
        kubeconfig=Path(kube.kubeconfig),
        log_path=tmp_path_factory.mktemp("operator") / "operator.log",
        identity=f"modelreg-test-{os.getpid()}",
        # Namespaces named iso-* are left to operators a test runs itself (e.g. under a
        # restricted identity), so that what they prove is theirs alone.
        extra_args=("--exclude-namespace", "iso-*"),
    ).start()
    yield op
    op.stop()


@pytest.fixture()
def iso_namespace(api: client.ApiClient) -> Iterator[str]:
    """A fresh namespace the session's operator does not watch."""
    import secrets

    core = client.CoreV1Api(api)
    name = f"iso-{secrets.token_hex(4)}"
    core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=name)))
    yield name
    core.delete_namespace(name, propagation_policy="Background")


@pytest.fixture()
def k(custom: client.CustomObjectsApi, namespace: str):
    from tests.integration.kit import Cluster

    return Cluster(custom, namespace)
