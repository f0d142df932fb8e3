"""The local control plane behaves like a real cluster (minus kubelet and scheduler)."""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from kubernetes import client
from kubernetes.client.rest import ApiException

from modelreg.devcluster import pinned_versions

pytestmark = pytest.mark.cluster

DEADLINE_SECONDS = 60.0


def wait_until(what: str, check: Callable[[], bool], timeout: float = DEADLINE_SECONDS) -> None:
    """Poll ``check`` (with a short, growing interval) until it is true or the deadline passes."""
    deadline = time.monotonic() + timeout
    delay = 0.05
    while not check():
        if time.monotonic() >= deadline:
            pytest.fail(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(delay)
        delay = min(delay * 1.5, 1.0)


def gone(read: Callable[[], object]) -> Callable[[], bool]:
    def check() -> bool:
        try:
            read()
        except ApiException as exc:
            if exc.status == 404:
                return True
            raise
        return False

    return check


def test_server_version_is_pinned(kube, api_client: client.ApiClient) -> None:
    if not kube.is_devcluster:
        pytest.skip("an opted-in existing cluster runs its own version")
    info = client.VersionApi(api_client).get_code()
    assert info.git_version == pinned_versions().k8s


def test_service_account_token_request(api_client: client.ApiClient, namespace: str) -> None:
    core = client.CoreV1Api(api_client)
    core.create_namespaced_service_account(
        namespace, client.V1ServiceAccount(metadata=client.V1ObjectMeta(name="robot"))
    )
    request = client.AuthenticationV1TokenRequest(spec=client.V1TokenRequestSpec(audiences=[], expiration_seconds=600))
    issued = core.create_namespaced_service_account_token("robot", namespace, request)
    token = issued.status.token
    assert token and token.count(".") == 2  # a JWT

    review = client.AuthenticationV1Api(api_client).create_token_review(
        client.V1TokenReview(spec=client.V1TokenReviewSpec(token=token))
    )
    assert review.status.authenticated, review.status.error
    assert review.status.user.username == f"system:serviceaccount:{namespace}:robot"


def test_default_service_account_and_root_ca_appear(api_client: client.ApiClient, namespace: str) -> None:
    """kube-controller-manager's serviceaccount and root-ca-cert-publisher controllers run."""
    core = client.CoreV1Api(api_client)

    def has(read: Callable[[], object]) -> Callable[[], bool]:
        return lambda: not gone(read)()

    wait_until("the default ServiceAccount", has(lambda: core.read_namespaced_service_account("default", namespace)))
    wait_until("kube-root-ca.crt", has(lambda: core.read_namespaced_config_map("kube-root-ca.crt", namespace)))


@pytest.mark.parametrize("propagation", ["Background", "Foreground"])
def test_garbage_collection(api_client: client.ApiClient, namespace: str, propagation: str) -> None:
    core = client.CoreV1Api(api_client)
    owner = core.create_namespaced_config_map(
        namespace, client.V1ConfigMap(metadata=client.V1ObjectMeta(name="owner"), data={"role": "owner"})
    )
    ref = client.V1OwnerReference(
        api_version="v1",
        kind="ConfigMap",
        name=owner.metadata.name,
        uid=owner.metadata.uid,
        block_owner_deletion=True,
    )
    core.create_namespaced_config_map(
        namespace,
        client.V1ConfigMap(metadata=client.V1ObjectMeta(name="dependent", owner_references=[ref])),
    )

    core.delete_namespaced_config_map("owner", namespace, propagation_policy=propagation)

    wait_until(
        "the dependent ConfigMap to be garbage-collected",
        gone(lambda: core.read_namespaced_config_map("dependent", namespace)),
    )
    wait_until("the owner ConfigMap to be deleted", gone(lambda: core.read_namespaced_config_map("owner", namespace)))


def test_deployment_creates_pods(api_client: client.ApiClient, namespace: str) -> None:
    """The deployment and replicaset controllers run (pods stay Pending: there is no kubelet)."""
    apps = client.AppsV1Api(api_client)
    core = client.CoreV1Api(api_client)
    labels = {"app": "web"}
    apps.create_namespaced_deployment(
        namespace,
        client.V1Deployment(
            metadata=client.V1ObjectMeta(name="web"),
            spec=client.V1DeploymentSpec(
                replicas=2,
                selector=client.V1LabelSelector(match_labels=labels),
                template=client.V1PodTemplateSpec(
                    metadata=client.V1ObjectMeta(labels=labels),
                    spec=client.V1PodSpec(containers=[client.V1Container(name="web", image="example.invalid/web")]),
                ),
            ),
        ),
    )
    wait_until(
        "two pods from the deployment",
        lambda: len(core.list_namespaced_pod(namespace, label_selector="app=web").items) == 2,
    )


def test_namespace_deletion_completes(api_client: client.ApiClient) -> None:
    core = client.CoreV1Api(api_client)
    name = f"t-del-{secrets.token_hex(3)}"
    core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=name)))
    core.create_namespaced_config_map(name, client.V1ConfigMap(metadata=client.V1ObjectMeta(name="data")))
    core.create_namespaced_service_account(name, client.V1ServiceAccount(metadata=client.V1ObjectMeta(name="sa")))

    core.delete_namespace(name)

    wait_until(f"namespace {name} to be deleted", gone(lambda: core.read_namespace(name)))


def test_issued_client_kubeconfig_is_subject_to_rbac(kube, tmp_path: Path) -> None:
    if not kube.is_devcluster:
        pytest.skip("needs the local control plane's CA")
    path = kube.devcluster.issue_client_kubeconfig("alice", ["modelreg-testers"], tmp_path / "alice.kubeconfig")
    from kubernetes import config

    api = config.new_client_from_config(config_file=str(path))
    try:
        review = client.AuthenticationV1Api(api).create_self_subject_review(client.V1SelfSubjectReview())
        assert review.status.user_info.username == "alice"
        assert "modelreg-testers" in review.status.user_info.groups
        with pytest.raises(ApiException) as denied:
            client.CoreV1Api(api).list_namespace()
        assert denied.value.status == 403
    finally:
        api.close()


def test_apiserver_and_etcd_restart_keep_data(kube, api_client: client.ApiClient, namespace: str) -> None:
    """The fault-injection helpers: state survives restarting kube-apiserver and killing etcd."""
    if not kube.is_devcluster:
        pytest.skip("needs the local control plane")
    dev = kube.devcluster
    core = client.CoreV1Api(api_client)
    core.create_namespaced_config_map(
        namespace, client.V1ConfigMap(metadata=client.V1ObjectMeta(name="survivor"), data={"k": "v"})
    )

    dev.restart_apiserver()
    assert core.read_namespaced_config_map("survivor", namespace).data == {"k": "v"}

    dev.kill_etcd()
    assert not dev.status().running
    dev.start_etcd()  # waits for etcd /health and then kube-apiserver /readyz
    assert core.read_namespaced_config_map("survivor", namespace).data == {"k": "v"}
    assert dev.status().running
