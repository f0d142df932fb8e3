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

from tests.integration.kit import OperatorProcess  # noqa: E402


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
