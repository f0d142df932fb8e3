"""The CLI's connection to the API server: the official synchronous ``kubernetes`` client.

:func:`connect` builds a :class:`Kube` from ``--kubeconfig``/``--context``/``--namespace``
(credentials as the operator's, from ``modelreg.kube.credentials``); its methods read and
write the custom objects as plain dicts.
"""

from __future__ import annotations

import argparse
import builtins
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, cast

from modelreg import GROUP, VERSION
from modelreg.cli.errors import CliError, api_body, singular

if TYPE_CHECKING:
    from kubernetes import client

RMODELS = "registeredmodels"
SNAPSHOTS = "performancesnapshots"
INCIDENTS = "incidents"
FIELD_MANAGER = "modelreg-cli"

Obj = dict[str, Any]


class _CustomObjects(Protocol):
    """The calls used from ``kubernetes.client.CustomObjectsApi``, whose generated methods are
    typed to return ``object``: custom objects come back as JSON dicts."""

    def get_namespaced_custom_object(self, *args: Any, **kwargs: Any) -> Obj: ...
    def list_cluster_custom_object(self, *args: Any, **kwargs: Any) -> Obj: ...
    def list_namespaced_custom_object(self, *args: Any, **kwargs: Any) -> Obj: ...
    def patch_namespaced_custom_object(self, *args: Any, **kwargs: Any) -> Obj: ...
    def patch_namespaced_custom_object_status(self, *args: Any, **kwargs: Any) -> Obj: ...
    def create_namespaced_custom_object(self, *args: Any, **kwargs: Any) -> Obj: ...


@dataclass
class Kube:
    """A connection: the ApiClient and the namespace the command works in."""

    api: client.ApiClient
    namespace: str
    context_namespace: str
    kubeconfig_user: str | None
    timeout: float

    def custom(self) -> _CustomObjects:
        from kubernetes import client as k

        return cast(_CustomObjects, k.CustomObjectsApi(self.api))

    def core(self) -> client.CoreV1Api:
        from kubernetes import client as k

        return k.CoreV1Api(self.api)

    # --- custom objects (plain dicts) ----------------------------------------------------------

    def get(self, plural: str, name: str, namespace: str | None = None) -> Obj:
        from kubernetes.client.exceptions import ApiException

        ns = namespace or self.namespace
        try:
            return self.custom().get_namespaced_custom_object(
                GROUP, VERSION, ns, plural, name, _request_timeout=self.timeout
            )
        except ApiException as err:
            if err.status == 404 and (api_body(err).get("details") or {}).get("name"):
                raise CliError(f"{singular(plural)} {name} not found in namespace {ns}") from None
            raise

    def list(self, plural: str, namespace: str | None = None) -> list[Obj]:
        """Items in one namespace (``namespace=""`` lists across all namespaces)."""
        api = self.custom()
        items: list[Obj] = []
        token: str | None = None
        while True:
            kwargs: dict[str, Any] = {"limit": 500, "_request_timeout": self.timeout}
            if token:
                kwargs["_continue"] = token
            if namespace == "":
                page = api.list_cluster_custom_object(GROUP, VERSION, plural, **kwargs)
            else:
                page = api.list_namespaced_custom_object(GROUP, VERSION, namespace or self.namespace, plural, **kwargs)
            items.extend(page.get("items") or [])
            token = (page.get("metadata") or {}).get("continue")
            if not token:
                return items

    def merge_patch(self, plural: str, name: str, body: Obj) -> Obj:
        return self.custom().patch_namespaced_custom_object(
            GROUP,
            VERSION,
            self.namespace,
            plural,
            name,
            body,
            field_manager=FIELD_MANAGER,
            _request_timeout=self.timeout,
        )

    def json_patch(self, plural: str, name: str, ops: builtins.list[Obj]) -> Obj:  # `list` is a method here
        return self.custom().patch_namespaced_custom_object(
            GROUP,
            VERSION,
            self.namespace,
            plural,
            name,
            ops,
            field_manager=FIELD_MANAGER,
            _content_type="application/json-patch+json",
            _request_timeout=self.timeout,
        )

    def patch_status(self, plural: str, name: str, body: Obj) -> Obj:
        return self.custom().patch_namespaced_custom_object_status(
            GROUP,
            VERSION,
            self.namespace,
            plural,
            name,
            body,
            field_manager=FIELD_MANAGER,
            _request_timeout=self.timeout,
        )

    def create(self, plural: str, body: Obj) -> Obj:
        return self.custom().create_namespaced_custom_object(
            GROUP,
            VERSION,
            self.namespace,
            plural,
            body,
            field_manager=FIELD_MANAGER,
            _request_timeout=self.timeout,
        )

    # --- identity ------------------------------------------------------------------------------

    def current_user(self) -> str:
        """The user the API server sees (SelfSubjectReview), else the kubeconfig user name."""
        from kubernetes import client as k
        from kubernetes.client.exceptions import ApiException

        try:
            review = k.AuthenticationV1Api(self.api).create_self_subject_review(
                k.V1SelfSubjectReview(api_version="authentication.k8s.io/v1", kind="SelfSubjectReview"),
                _request_timeout=self.timeout,
            )
            username = getattr(getattr(getattr(review, "status", None), "user_info", None), "username", None)
            if username:
                return str(username)
        except ApiException as err:
            if err.status in (0, None):
                raise
        if self.kubeconfig_user:
            return self.kubeconfig_user
        raise CliError("cannot tell who you are: no SelfSubjectReview and no user in the kubeconfig context")


SERVICE_ACCOUNT_NS = Path("/var/run/secrets/kubernetes.io/serviceaccount/namespace")


def _quiet_urllib3() -> None:
    # urllib3 logs each retry as a warning; the CLI reports the final failure itself.
    logging.getLogger("urllib3.connectionpool").setLevel(logging.ERROR)


def connect(args: argparse.Namespace, namespace: str | None = None) -> Kube:
    """An ApiClient from ``--kubeconfig``/``--context`` (or in-cluster), and the namespace to use.

    Credentials come from ``modelreg.kube.credentials``, as the operator's: client
    certificates, tokens, token files, exec plugins and the pod's service account.
    """
    from modelreg.kube import credentials

    _quiet_urllib3()
    kubeconfig: str | None = getattr(args, "kubeconfig", None)
    context: str | None = getattr(args, "context", None)
    timeout = float(getattr(args, "request_timeout", 30.0) or 30.0)
    try:
        # As kubectl: a kubeconfig when there is one, else the pod's service account.
        source = credentials.load(kubeconfig, context, in_cluster_first=False)
    except credentials.CredentialError as err:
        raise CliError(str(err)) from None
    auth = source.auth
    if auth.source == "in-cluster":
        try:
            ctx_ns = SERVICE_ACCOUNT_NS.read_text(encoding="utf-8").strip() or "default"
        except OSError:
            ctx_ns = "default"
    else:
        ctx_ns = auth.namespace or "default"
    api = credentials.kubernetes_api_client(source)
    ns = namespace or ctx_ns
    args.resolved_namespace = ns
    return Kube(api=api, namespace=ns, context_namespace=ctx_ns, kubeconfig_user=auth.user, timeout=timeout)
