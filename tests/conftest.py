"""Shared fixtures: a real API server for `cluster`-marked tests.

By default the session uses the local control plane from ``modelreg.devcluster`` (reusing one
that is already running; tearing it down at the end only if this session started it and
``MODELREG_KEEP_CLUSTER`` is not ``1``).

``MODELREG_TEST_USE_EXISTING_CLUSTER=1`` opts into the cluster of ``$KUBECONFIG``'s current
context instead, which must look like a disposable test cluster (``kind-*``, ``k3d-*``,
``minikube*``, ``modelreg-*``, ``docker-desktop*`` or ``$MODELREG_TEST_ALLOWED_CONTEXT``).

Deselect cluster tests with ``-m "not cluster"``.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from kubernetes import client, config
from kubernetes.client.rest import ApiException

from modelreg.devcluster import DevCluster, DevClusterError

INTEGRATION_DIR = Path(__file__).parent / "integration"
TEST_CONTEXT_PREFIXES = ("kind-", "k3d-", "minikube", "modelreg-", "docker-desktop")
CLUSTER_FIXTURES = {"kube", "cluster", "api_client", "namespace"}


@dataclass
class KubeTarget:
    """The cluster under test."""

    kubeconfig: Path
    context: str
    # The local control plane driver (None when testing against an opted-in existing cluster);
    # fault-injection tests use it to kill/restart components.
    devcluster: DevCluster | None = None
    started_here: bool = False

    @property
    def is_devcluster(self) -> bool:
        return self.devcluster is not None

    def api_client(self) -> client.ApiClient:
        """A new ApiClient for this cluster (the caller closes it)."""
        return config.new_client_from_config(config_file=str(self.kubeconfig), context=self.context)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Everything under tests/integration/ (or using a cluster fixture) is a `cluster` test."""
    for item in items:
        in_integration = item.path.is_relative_to(INTEGRATION_DIR)
        uses_cluster = bool(CLUSTER_FIXTURES.intersection(getattr(item, "fixturenames", ())))
        if (in_integration or uses_cluster) and item.get_closest_marker("cluster") is None:
            item.add_marker(pytest.mark.cluster)


def _existing_cluster() -> KubeTarget:
    raw = os.environ.get("KUBECONFIG") or str(Path.home() / ".kube" / "config")
    if os.pathsep in raw:
        pytest.exit(
            f"MODELREG_TEST_USE_EXISTING_CLUSTER=1 needs KUBECONFIG to name a single file, got {raw!r}",
            returncode=2,
        )
    path = Path(raw).expanduser()
    try:
        _, active = config.list_kube_config_contexts(config_file=str(path))
    except (config.ConfigException, OSError) as exc:
        pytest.exit(f"MODELREG_TEST_USE_EXISTING_CLUSTER=1 but {path} is unusable: {exc}", returncode=2)
    name = str((active or {}).get("name") or "")
    allowed = os.environ.get("MODELREG_TEST_ALLOWED_CONTEXT")
    if not (name.startswith(TEST_CONTEXT_PREFIXES) or (allowed and name == allowed)):
        pytest.exit(
            f"refusing to run cluster tests against context {name!r} from {path}: it does not look like a "
            f"test cluster (expected a name starting with {', '.join(TEST_CONTEXT_PREFIXES)}, or set "
            "MODELREG_TEST_ALLOWED_CONTEXT to exactly this context name)",
            returncode=2,
        )
    return KubeTarget(kubeconfig=path, context=name)


@pytest.fixture(scope="session")
def kube(request: pytest.FixtureRequest) -> Iterator[KubeTarget]:
    """The cluster under test (see the module docstring)."""
    if os.environ.get("MODELREG_TEST_USE_EXISTING_CLUSTER") == "1":
        yield _existing_cluster()
        return

    def progress(msg: str) -> None:
        print(f"[dev-cluster] {msg}", file=sys.stderr, flush=True)

    dev = DevCluster(progress=progress)
    capman = request.config.pluginmanager.getplugin("capturemanager")
    # Let progress (and a first-time binary build, which takes a while) reach the terminal.
    passthrough = capman.global_and_fixture_disabled() if capman else contextlib.nullcontext()
    try:
        with passthrough:
            info = dev.up()
    except DevClusterError as exc:
        pytest.fail(f"could not start the local control plane: {exc}", pytrace=False)
    target = KubeTarget(
        kubeconfig=info.kubeconfig, context="modelreg-dev", devcluster=dev, started_here=not info.reused
    )
    yield target
    if target.started_here and os.environ.get("MODELREG_KEEP_CLUSTER") != "1":
        dev.down()


@pytest.fixture(scope="session")
def cluster(kube: KubeTarget) -> KubeTarget:
    """Alias of `kube`."""
    return kube


@pytest.fixture(scope="session")
def api_client(kube: KubeTarget) -> Iterator[client.ApiClient]:
    """A session-wide ApiClient for the cluster under test."""
    api = kube.api_client()
    yield api
    api.close()


@pytest.fixture
def namespace(api_client: client.ApiClient) -> Iterator[str]:
    """A fresh namespace ``t-<random>``, deleted (without waiting) after the test."""
    core = client.CoreV1Api(api_client)
    name = f"t-{secrets.token_hex(4)}"
    core.create_namespace(
        client.V1Namespace(metadata=client.V1ObjectMeta(name=name, labels={"modelreg.io/test": "true"}))
    )
    yield name
    try:
        core.delete_namespace(name, propagation_policy="Background")
    except ApiException as exc:
        if exc.status != 404:
            raise
