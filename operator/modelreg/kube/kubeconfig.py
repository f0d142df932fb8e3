"""Kubeconfig and credential decisions, without I/O.

Everything here is a function of its arguments: choosing the context, cluster
and user of a kubeconfig (several files merged as kubectl merges them), reading
an exec plugin's ExecCredential, deciding when a token file or an exec
credential is due for a refresh, the backoff after a 401 and when a run of
401s means the operator is locked out. :mod:`modelreg.kube.credentials`
reads the files, runs the plugins and keeps the current credentials.
"""

from __future__ import annotations

import base64
import binascii
import datetime
import json
import os
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, cast

from modelreg.core import timefmt

EXEC_API_VERSIONS = ("client.authentication.k8s.io/v1", "client.authentication.k8s.io/v1beta1")
TOKEN_FILE_PERIOD = 60.0  # seconds between two reads of a token file (docs/deploy.md)
LOCKOUT_SECONDS = 300.0  # nothing but 401s for this long: the liveness endpoint fails
BACKOFF_FIRST, BACKOFF_MAX = 1.0, 60.0
IN_CLUSTER_DIR = "/var/run/secrets/kubernetes.io/serviceaccount"


class CredentialError(Exception):
    """Credentials that cannot be used: one line naming where they came from and why."""

    def __init__(self, where: str, cause: str) -> None:
        super().__init__(f"{where}: {cause}")
        self.where = where
        self.cause = cause


def context_label(context: str | None, source: str) -> str:
    """How an error names the credentials: ``kubeconfig context "dev" (/path)``."""
    if source == "in-cluster":
        return f"in-cluster service account ({IN_CLUSTER_DIR})"
    name = f'"{context}"' if context else "(current-context)"
    return f"kubeconfig context {name} ({source})"


@dataclass(frozen=True)
class ExecConfig:
    """A user's ``exec`` stanza."""

    command: str
    args: tuple[str, ...] = ()
    env: tuple[tuple[str, str], ...] = ()
    api_version: str = EXEC_API_VERSIONS[0]
    install_hint: str = ""
    provide_cluster_info: bool = False
    interactive_mode: str = "IfAvailable"


@dataclass(frozen=True)
class AuthConfig:
    """One context, resolved: where the API server is and how to log in to it."""

    context: str | None
    source: str  # the kubeconfig file(s), or "in-cluster"
    server: str
    ca_file: str | None = None
    ca_data: bytes | None = None  # PEM
    insecure: bool = False
    tls_server_name: str | None = None
    cert_file: str | None = None
    cert_data: bytes | None = None  # PEM
    key_file: str | None = None
    key_data: bytes | None = None  # PEM
    token: str | None = None
    token_file: str | None = None
    username: str | None = None
    password: str | None = None
    exec: ExecConfig | None = None
    namespace: str | None = None
    user: str | None = None  # the kubeconfig user's name

    @property
    def where(self) -> str:
        return context_label(self.context, self.source)


@dataclass(frozen=True)
class ExecResult:
    """What an exec plugin printed."""

    token: str | None
    cert_data: bytes | None
    key_data: bytes | None
    expiration: datetime.datetime | None  # aware, UTC


@dataclass
class Lockout:
    """Consecutive 401s: the backoff before the next try, and whether the operator is locked out.

    ``since`` is the monotonic time of the first 401 after the last authenticated
    answer (any answer but 401); ``count`` the 401s since then.
    """

    since: float | None = None
    count: int = 0
    threshold: float = LOCKOUT_SECONDS
    total: int = field(default=0)

    def unauthorized(self, now: float) -> float:
        """Record a 401 at ``now``; returns the delay before the next try."""
        if self.since is None:
            self.since = now
        self.count += 1
        self.total += 1
        return backoff(self.count)

    def authenticated(self) -> None:
        self.since, self.count = None, 0

    def locked_out_for(self, now: float) -> float:
        """Seconds of nothing but 401s (0 when the last answer was authenticated)."""
        return 0.0 if self.since is None else max(0.0, now - self.since)

    def locked_out(self, now: float) -> bool:
        return self.since is not None and now - self.since >= self.threshold


def backoff(attempt: int) -> float:
    """The delay after the ``attempt``-th 401 in a row: 1, 2, 4, ... s, at most 60 s."""
    return min(BACKOFF_MAX, cast(float, BACKOFF_FIRST * 2 ** max(0, attempt - 1)))


def backoffs() -> Iterator[float]:
    attempt = 0
    while True:
        attempt += 1
        yield backoff(attempt)


def token_file_due(last_read: float | None, now: float, period: float = TOKEN_FILE_PERIOD) -> bool:
    return last_read is None or now - last_read >= period


def exec_refresh_at(obtained: datetime.datetime, expiration: datetime.datetime) -> datetime.datetime:
    """When to run the plugin again: a tenth of the credential's life (at most 60 s) before it expires."""
    margin = min(datetime.timedelta(seconds=60), max(datetime.timedelta(0), (expiration - obtained) / 10))
    return expiration - margin


def exec_due(obtained: datetime.datetime | None, expiration: datetime.datetime | None, now: datetime.datetime) -> bool:
    """Whether an exec credential must be fetched (again): never fetched, or near its expiry."""
    if obtained is None:
        return True
    if expiration is None:
        return False  # valid until a 401 says otherwise
    return now >= exec_refresh_at(obtained, expiration)


# ----------------------------------------------------------------------------- kubeconfig


def _named(items: Any, what: str, where: str) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    if items is None:
        return out
    if not isinstance(items, list):
        raise CredentialError(where, f"{what} is not a list")
    for item in items:
        if not isinstance(item, dict) or not isinstance(item.get("name"), str):
            raise CredentialError(where, f"an entry of {what} has no name")
        out.setdefault(item["name"], item)  # the first file that names it wins, as kubectl
    return out


def _resolve(path: Any, base_dir: str) -> str | None:
    if not path:
        return None
    text = os.path.expanduser(str(path))
    return text if os.path.isabs(text) else os.path.normpath(os.path.join(base_dir, text))


def _b64(value: Any, what: str, where: str) -> bytes | None:
    if not value:
        return None
    try:
        return base64.b64decode(str(value), validate=True)
    except (binascii.Error, ValueError):
        raise CredentialError(where, f"{what} is not valid base64") from None


_PATH_FIELDS = {
    "cluster": ("certificate-authority",),
    "user": ("client-certificate", "client-key", "tokenFile"),
}


def merge(docs: Sequence[tuple[str, Mapping[str, Any]]]) -> dict[str, Any]:
    """Merge kubeconfig documents as kubectl does: for each name the first file wins,
    and so does the first ``current-context``. Relative paths are made absolute against
    the directory of the file that holds them. ``docs`` is ``[(path, document), ...]``."""
    merged: dict[str, Any] = {"clusters": {}, "users": {}, "contexts": {}, "current-context": None}
    for path, doc in docs:
        if doc is None:
            continue
        if not isinstance(doc, Mapping):
            raise CredentialError(f"kubeconfig {path}", "not a kubeconfig (not a YAML mapping)")
        base_dir = os.path.dirname(os.path.abspath(path))
        where = f"kubeconfig {path}"
        for section, key in (("clusters", "cluster"), ("users", "user"), ("contexts", "context")):
            for name, entry in _named(doc.get(section), section, where).items():
                if name in merged[section]:
                    continue
                body = dict(entry.get(key) or {})
                for fld in _PATH_FIELDS.get(key, ()):
                    if body.get(fld):
                        body[fld] = _resolve(body[fld], base_dir)
                if key == "user" and isinstance(body.get("exec"), dict):
                    command = body["exec"].get("command")
                    # A command with a slash is relative to the kubeconfig; a bare name is looked up in PATH.
                    if isinstance(command, str) and os.sep in command and not os.path.isabs(command):
                        body["exec"] = {**body["exec"], "command": _resolve(command, base_dir)}
                merged[section][name] = body
        if not merged["current-context"] and doc.get("current-context"):
            merged["current-context"] = str(doc["current-context"])
    return merged


def _exec_config(raw: Any, where: str) -> ExecConfig:
    if not isinstance(raw, dict) or not raw.get("command"):
        raise CredentialError(where, "exec plugin has no command")
    api_version = str(raw.get("apiVersion") or "")
    if api_version not in EXEC_API_VERSIONS:
        raise CredentialError(
            where, f"exec plugin apiVersion {api_version!r} is not supported (use {' or '.join(EXEC_API_VERSIONS)})"
        )
    env: list[tuple[str, str]] = []
    for item in raw.get("env") or []:
        if not isinstance(item, dict) or "name" not in item:
            raise CredentialError(where, "exec plugin env entries need a name and a value")
        env.append((str(item["name"]), str(item.get("value", ""))))
    args = raw.get("args") or []
    if not isinstance(args, list):
        raise CredentialError(where, "exec plugin args is not a list")
    return ExecConfig(
        command=str(raw["command"]),
        args=tuple(str(a) for a in args),
        env=tuple(env),
        api_version=api_version,
        install_hint=str(raw.get("installHint") or ""),
        provide_cluster_info=bool(raw.get("provideClusterInfo")),
        interactive_mode=str(raw.get("interactiveMode") or "IfAvailable"),
    )


def select(merged: Mapping[str, Any], context: str | None, source: str) -> AuthConfig:
    """The :class:`AuthConfig` of ``context`` (or the current context) of a merged kubeconfig."""
    name = context or merged.get("current-context")
    if not name:
        raise CredentialError(context_label(None, source), "no context given and no current-context set")
    where = context_label(name, source)
    ctx = merged["contexts"].get(name)
    if ctx is None:
        known = ", ".join(sorted(merged["contexts"])) or "none"
        raise CredentialError(where, f"context not found (contexts: {known})")
    cluster_name, user_name = ctx.get("cluster"), ctx.get("user")
    cluster = merged["clusters"].get(cluster_name)
    if cluster is None:
        raise CredentialError(where, f"cluster {cluster_name!r} not found")
    server = str(cluster.get("server") or "")
    if not server.startswith(("https://", "http://")):
        raise CredentialError(where, f"cluster {cluster_name!r} has no https:// server URL")
    user: dict[str, Any] = {}
    if user_name:
        if user_name not in merged["users"]:
            raise CredentialError(where, f"user {user_name!r} not found")
        user = merged["users"][user_name]
    if user.get("auth-provider"):
        provider = (user["auth-provider"] or {}).get("name") or "?"
        raise CredentialError(
            where,
            f"auth-provider {provider!r} is not supported; use an exec plugin instead "
            "(kubectl has removed its built-in auth providers)",
        )
    cert_data = _b64(user.get("client-certificate-data"), "client-certificate-data", where)
    key_data = _b64(user.get("client-key-data"), "client-key-data", where)
    has_cert = bool(cert_data or user.get("client-certificate"))
    has_key = bool(key_data or user.get("client-key"))
    if has_cert != has_key:
        raise CredentialError(where, "a client certificate needs both a certificate and a key")
    return AuthConfig(
        context=name,
        source=source,
        server=server.rstrip("/"),
        ca_file=cluster.get("certificate-authority"),
        ca_data=_b64(cluster.get("certificate-authority-data"), "certificate-authority-data", where),
        insecure=bool(cluster.get("insecure-skip-tls-verify")),
        tls_server_name=cluster.get("tls-server-name") or None,
        cert_file=None if cert_data else user.get("client-certificate"),
        cert_data=cert_data,
        key_file=None if key_data else user.get("client-key"),
        key_data=key_data,
        token=str(user["token"]) if user.get("token") else None,
        token_file=None if user.get("token") else user.get("tokenFile"),
        username=user.get("username"),
        password=user.get("password"),
        exec=_exec_config(user["exec"], where) if user.get("exec") else None,
        namespace=ctx.get("namespace") or None,
        user=user_name,
    )


def in_cluster(env: Mapping[str, str], directory: str = IN_CLUSTER_DIR) -> AuthConfig | None:
    """The in-cluster configuration, or None outside a pod (no KUBERNETES_SERVICE_HOST)."""
    host, port = env.get("KUBERNETES_SERVICE_HOST"), env.get("KUBERNETES_SERVICE_PORT")
    if not host or not port:
        return None
    if ":" in host:  # IPv6
        host = f"[{host}]"
    return AuthConfig(
        context=None,
        source="in-cluster",
        server=f"https://{host}:{port}",
        ca_file=os.path.join(directory, "ca.crt"),
        token_file=os.path.join(directory, "token"),
    )


# ----------------------------------------------------------------------------- exec plugins


def exec_info(config: ExecConfig, auth: AuthConfig) -> str:
    """The ``KUBERNETES_EXEC_INFO`` a plugin gets: never interactive (no terminal here)."""
    spec: dict[str, Any] = {"interactive": False}
    if config.provide_cluster_info:
        cluster: dict[str, Any] = {"server": auth.server, "insecure-skip-tls-verify": auth.insecure}
        if auth.ca_data:
            cluster["certificate-authority-data"] = base64.b64encode(auth.ca_data).decode()
        if auth.tls_server_name:
            cluster["tls-server-name"] = auth.tls_server_name
        spec["cluster"] = cluster
    return json.dumps({"apiVersion": config.api_version, "kind": "ExecCredential", "spec": spec})


def parse_exec_credential(raw: bytes, config: ExecConfig) -> ExecResult:
    """The plugin's stdout as an :class:`ExecResult`; ``ValueError`` with the cause if unusable."""
    try:
        doc = json.loads(raw)
    except ValueError:
        snippet = raw.decode("utf-8", "replace").strip().splitlines()
        raise ValueError(f"printed no ExecCredential JSON ({(snippet or [''])[0][:80]!r})") from None
    if not isinstance(doc, dict) or doc.get("kind") != "ExecCredential":
        raise ValueError("printed JSON that is not an ExecCredential")
    if doc.get("apiVersion") != config.api_version:
        raise ValueError(f"printed apiVersion {doc.get('apiVersion')!r}, the kubeconfig asks for {config.api_version}")
    status = doc.get("status")
    if not isinstance(status, dict):
        raise ValueError("printed an ExecCredential without status")
    token = status.get("token") or None
    cert = status.get("clientCertificateData") or None
    key = status.get("clientKeyData") or None
    if bool(cert) != bool(key):
        raise ValueError("printed clientCertificateData without clientKeyData (or the reverse)")
    if not token and not cert:
        raise ValueError("printed an ExecCredential with neither token nor client certificate")
    expiration = None
    if status.get("expirationTimestamp"):
        try:
            expiration = timefmt.parse(str(status["expirationTimestamp"])).astimezone(datetime.UTC)
        except ValueError:
            raise ValueError(f"printed an invalid expirationTimestamp {status['expirationTimestamp']!r}") from None
    return ExecResult(
        token=str(token) if token else None,
        cert_data=str(cert).encode() if cert else None,
        key_data=str(key).encode() if key else None,
        expiration=expiration,
    )
