"""Credentials for the operator and the CLI: one loader, one source of the current login.

:func:`load` finds the configuration as controller-runtime does (``--kubeconfig``,
``$KUBECONFIG``, the in-cluster service account, ``~/.kube/config``), resolves the
context (:mod:`modelreg.kube.kubeconfig`, pure) and fetches the first credentials,
so an unusable kubeconfig fails at start with one line naming the context and the
cause (:class:`CredentialError`).

:class:`CredentialSource` keeps the current credentials: a token file (in a pod, the
projected service-account token) is read again every 60 s and whenever asked after a
401, and a change of its contents (not of its path: the kubelet swaps a symlink) is a
new generation; an exec plugin is run again before its ``expirationTimestamp`` and
after a 401. The operator's :class:`~modelreg.kube.client.KubeClient`, Kopf's login
handler (``controller.auth``) and the CLI's ``kubernetes`` client
(:func:`kubernetes_api_client`) all read it.
"""

from __future__ import annotations

import atexit
import datetime
import logging
import os
import shutil
import ssl
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from modelreg.kube.kubeconfig import (
    AuthConfig,
    CredentialError,
    ExecResult,
    Lockout,
    context_label,
    exec_due,
    exec_info,
    exec_refresh_at,
    in_cluster,
    merge,
    parse_exec_credential,
    select,
    token_file_due,
)

if TYPE_CHECKING:
    import kopf
    from kubernetes import client as k8s

__all__ = ["CredentialError", "CredentialSource", "Credentials", "kubernetes_api_client", "load"]

log = logging.getLogger("modelreg.credentials")
EXEC_TIMEOUT = 60.0


def _utcnow() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


@dataclass(frozen=True)
class Credentials:
    """One login: a bearer token and/or a client certificate (PEM), or basic auth."""

    token: str | None = None
    cert_pem: bytes | None = None
    key_pem: bytes | None = None
    username: str | None = None
    password: str | None = None
    expiration: datetime.datetime | None = None  # exec credentials only
    generation: int = 0

    def authorization(self) -> str | None:
        if self.token:
            return f"Bearer {self.token}"
        if self.username and self.password:
            import base64

            return "Basic " + base64.b64encode(f"{self.username}:{self.password}".encode()).decode()
        return None

    def same_login(self, other: Credentials | None) -> bool:
        return other is not None and (self.token, self.cert_pem, self.key_pem, self.username, self.password) == (
            other.token,
            other.cert_pem,
            other.key_pem,
            other.username,
            other.password,
        )


def _read(path: str, what: str, where: str) -> bytes:
    try:
        return Path(path).read_bytes()
    except FileNotFoundError:
        raise CredentialError(where, f"{what} {path} does not exist") from None
    except OSError as err:
        raise CredentialError(where, f"cannot read {what} {path}: {err.strerror or err}") from None


class CredentialSource:
    """The current credentials of one :class:`AuthConfig`, refreshed when due (thread-safe)."""

    def __init__(
        self,
        auth: AuthConfig,
        *,
        env: Mapping[str, str] | None = None,
        monotonic: Callable[[], float] = time.monotonic,
        utcnow: Callable[[], datetime.datetime] = _utcnow,
    ) -> None:
        self.auth = auth
        self.lockout = Lockout()
        self._env = dict(os.environ if env is None else env)
        self._monotonic = monotonic
        self._utcnow = utcnow
        self._lock = threading.Lock()
        self._current: Credentials | None = None
        self._files_read_at: float | None = None
        self._file_token: str | None = None
        self._file_cert: tuple[bytes | None, bytes | None] = (None, None)
        self._exec: ExecResult | None = None
        self._exec_obtained: datetime.datetime | None = None
        self.exec_runs = 0

    # --- reading -------------------------------------------------------------------------------

    @property
    def where(self) -> str:
        return self.auth.where

    def due(self) -> bool:
        """Whether :meth:`current` would read a file or run a plugin (cheap, no I/O)."""
        if self._current is None:
            return True
        if self._has_files() and token_file_due(self._files_read_at, self._monotonic()):
            return True
        return self.auth.exec is not None and exec_due(
            self._exec_obtained, self._exec.expiration if self._exec else None, self._utcnow()
        )

    def current(self) -> Credentials:
        """The credentials to send now, read again first if due."""
        creds = self._current
        if creds is not None and not self.due():
            return creds
        return self.refresh()

    def refresh(self, *, force: bool = False, seen: int | None = None) -> Credentials:
        """Read what is due (everything with ``force``) and return the credentials.

        ``seen``: the generation a request was rejected with; when another caller has
        already moved past it, its credentials are returned without reading again.
        Raises :class:`CredentialError` when no credentials can be had.
        """
        with self._lock:
            current = self._current
            if force and seen is not None and current is not None and current.generation != seen:
                return current
            initial = current is None
            now = self._monotonic()
            if self._has_files() and (force or token_file_due(self._files_read_at, now)):
                self._read_files(initial)
                self._files_read_at = now
            if self.auth.exec is not None and (
                force or exec_due(self._exec_obtained, self._exec.expiration if self._exec else None, self._utcnow())
            ):
                self._run_exec()
            return self._update(current)

    def _has_files(self) -> bool:
        return bool(self.auth.token_file or self.auth.cert_file or self.auth.key_file)

    def _read_files(self, initial: bool) -> None:
        auth = self.auth
        try:
            if auth.token_file:
                token = _read(auth.token_file, "token file", self.where).decode("utf-8", "replace").strip()
                if not token:
                    raise CredentialError(self.where, f"token file {auth.token_file} is empty")
                if self._file_token is not None and token != self._file_token:
                    log.info("token file %s changed: using the new token", auth.token_file)
                self._file_token = token
            if auth.cert_file and auth.key_file:
                self._file_cert = (
                    _read(auth.cert_file, "client certificate", self.where),
                    _read(auth.key_file, "client key", self.where),
                )
        except CredentialError:
            if initial:
                raise
            # A file swapped out from under us mid-rotation: keep what was read last.
            log.warning("credentials of %s could not be read again; keeping the last ones", self.where, exc_info=True)

    def _run_exec(self) -> None:
        config = self.auth.exec
        assert config is not None
        argv = [config.command, *config.args]
        env = {**self._env, **dict(config.env), "KUBERNETES_EXEC_INFO": exec_info(config, self.auth)}
        name = os.path.basename(config.command)
        if config.interactive_mode == "Always":
            raise CredentialError(
                self.where,
                f"exec plugin {name!r} needs a terminal (interactiveMode: Always); it is never run interactively",
            )
        self.exec_runs += 1
        try:
            proc = subprocess.run(
                argv, env=env, stdin=subprocess.DEVNULL, capture_output=True, timeout=EXEC_TIMEOUT, check=False
            )
        except FileNotFoundError:
            hint = f" ({' '.join(config.install_hint.split())})" if config.install_hint else ""
            raise CredentialError(self.where, f"exec plugin {config.command!r} not found{hint}") from None
        except PermissionError:
            raise CredentialError(self.where, f"exec plugin {config.command!r} is not executable") from None
        except subprocess.TimeoutExpired:
            raise CredentialError(self.where, f"exec plugin {name!r} did not finish in {EXEC_TIMEOUT:.0f} s") from None
        if proc.returncode != 0:
            lines = proc.stderr.decode("utf-8", "replace").strip().splitlines()
            detail = f": {lines[-1].strip()[:200]}" if lines else ""
            raise CredentialError(self.where, f"exec plugin {name!r} failed with exit code {proc.returncode}{detail}")
        try:
            result = parse_exec_credential(proc.stdout, config)
        except ValueError as err:
            raise CredentialError(self.where, f"exec plugin {name!r} {err}") from None
        obtained = self._utcnow()
        if result.expiration is not None and result.expiration <= obtained:
            raise CredentialError(self.where, f"exec plugin {name!r} printed a credential that has already expired")
        self._exec, self._exec_obtained = result, obtained
        if result.expiration is not None:
            log.debug("exec plugin %s: credential until %s", name, result.expiration.isoformat())

    def _update(self, before: Credentials | None) -> Credentials:
        auth = self.auth
        token, cert, key = auth.token or self._file_token, auth.cert_data, auth.key_data
        if auth.cert_file:
            cert, key = self._file_cert
        expiration = None
        if self._exec is not None:
            token = self._exec.token or token
            if self._exec.cert_data:
                cert, key = self._exec.cert_data, self._exec.key_data
            expiration = self._exec.expiration
        creds = Credentials(
            token=token,
            cert_pem=cert,
            key_pem=key,
            username=auth.username,
            password=auth.password,
            expiration=expiration,
            generation=before.generation if before is not None else 0,
        )
        if before is None or not creds.same_login(before):
            creds = Credentials(**{**creds.__dict__, "generation": creds.generation + (before is not None)})
        self._current = creds
        return creds

    # --- consumers -----------------------------------------------------------------------------

    def ssl_context(self, creds: Credentials) -> ssl.SSLContext | bool:
        """An SSL context for aiohttp: the cluster's CA and the client certificate of ``creds``."""
        auth = self.auth
        if auth.insecure and not (creds.cert_pem and creds.key_pem):
            return False
        try:
            ctx = ssl.create_default_context(
                cafile=auth.ca_file, cadata=auth.ca_data.decode("ascii") if auth.ca_data else None
            )
        except (OSError, ssl.SSLError, ValueError) as err:
            raise CredentialError(self.where, f"cannot load the cluster's CA certificate: {err}") from None
        if auth.insecure:
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
        if creds.cert_pem and creds.key_pem:
            # ssl needs files for client certificates; keep them only as long as loading takes.
            with tempfile.TemporaryDirectory() as tmp:
                cert, key = Path(tmp, "tls.crt"), Path(tmp, "tls.key")
                cert.write_bytes(creds.cert_pem)
                key.touch(mode=0o600)
                key.write_bytes(creds.key_pem)
                try:
                    ctx.load_cert_chain(cert, key)
                except (ssl.SSLError, ValueError) as err:
                    raise CredentialError(self.where, f"cannot load the client certificate: {err}") from None
        return ctx

    def kopf_info(self, creds: Credentials, *, priority: int = 0) -> kopf.ConnectionInfo:
        """The same login for Kopf. ``expiration`` makes Kopf log in again before an exec
        credential expires; the caller varies ``priority`` so that Kopf never takes a fresh
        login for one of the few it remembers as rejected."""
        import kopf

        auth = self.auth
        expiration = None
        if creds.expiration is not None and self._exec_obtained is not None:
            expiration = exec_refresh_at(self._exec_obtained, creds.expiration)
        return kopf.ConnectionInfo(
            server=auth.server,
            ca_path=auth.ca_file,
            ca_data=auth.ca_data,
            insecure=auth.insecure or None,
            username=creds.username if not creds.token else None,
            password=creds.password if not creds.token else None,
            scheme="Bearer" if creds.token else None,
            token=creds.token,
            certificate_data=creds.cert_pem,
            private_key_data=creds.key_pem,
            default_namespace=auth.namespace,
            priority=priority,
            expiration=expiration,
        )


# ----------------------------------------------------------------------------- loading


def _kubeconfig_paths(kubeconfig: str | None, env: Mapping[str, str]) -> list[str] | None:
    if kubeconfig:
        return [os.path.expanduser(kubeconfig)]
    if env.get("KUBECONFIG"):
        return [os.path.expanduser(p) for p in env["KUBECONFIG"].split(os.pathsep) if p]
    return None


def resolve(
    kubeconfig: str | None = None,
    context: str | None = None,
    *,
    env: Mapping[str, str] | None = None,
    service_account_dir: str | None = None,
    in_cluster_first: bool = True,
) -> AuthConfig:
    """Find and resolve the configuration: ``kubeconfig``, ``$KUBECONFIG``, in-cluster, ``~/.kube/config``
    (``in_cluster_first=False``: ``~/.kube/config`` before in-cluster, as kubectl)."""
    env = os.environ if env is None else env
    paths = _kubeconfig_paths(kubeconfig, env)
    home = os.path.expanduser("~/.kube/config")
    if paths is None and context is None and (in_cluster_first or not os.path.exists(home)):
        pod = in_cluster(env, *([service_account_dir] if service_account_dir else []))
        if pod is not None and pod.token_file and os.path.exists(pod.token_file):
            return pod
    if paths is None:
        paths = [home]
    source = os.pathsep.join(paths)
    docs: list[tuple[str, Any]] = []
    for path in paths:
        try:
            text = Path(path).read_text(encoding="utf-8")
        except FileNotFoundError:
            continue  # kubectl skips missing files of a list
        except OSError as err:
            raise CredentialError(context_label(context, path), f"cannot read it: {err.strerror or err}") from None
        try:
            docs.append((path, yaml.safe_load(text)))
        except yaml.YAMLError as err:
            cause = " ".join(str(err).split())
            raise CredentialError(context_label(context, path), f"not valid YAML ({cause[:200]})") from None
    if not docs:
        raise CredentialError(context_label(context, source), "file not found")
    return select(merge(docs), context, source)


def load(
    kubeconfig: str | None = None,
    context: str | None = None,
    *,
    env: Mapping[str, str] | None = None,
    service_account_dir: str | None = None,
    in_cluster_first: bool = True,
) -> CredentialSource:
    """A :class:`CredentialSource` with its first credentials fetched (see the module docstring)."""
    auth = resolve(
        kubeconfig, context, env=env, service_account_dir=service_account_dir, in_cluster_first=in_cluster_first
    )
    source = CredentialSource(auth, env=env)
    creds = source.refresh()
    if auth.ca_file and not os.path.exists(auth.ca_file):
        raise CredentialError(auth.where, f"certificate-authority {auth.ca_file} does not exist")
    source.ssl_context(creds)  # a broken CA or client certificate fails here, not at the first request
    return source


# ----------------------------------------------------------------------------- kubernetes package

_TMP: list[str] = []


def _private_dir() -> str:
    if not _TMP:
        _TMP.append(tempfile.mkdtemp(prefix="modelreg-creds-"))
        atexit.register(shutil.rmtree, _TMP[0], True)
    return _TMP[0]


def _write_private(name: str, data: bytes) -> str:
    path = os.path.join(_private_dir(), name)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)
    return path


def kubernetes_configuration(source: CredentialSource) -> k8s.Configuration:
    """A ``kubernetes`` package Configuration that takes its token from ``source`` on every
    request (a refresh hook), so the CLI follows token files and exec plugins the same way."""
    from kubernetes import client as k

    auth = source.auth
    creds = source.current()
    conf = k.Configuration()
    conf.host = auth.server
    conf.verify_ssl = not auth.insecure
    conf.ssl_ca_cert = auth.ca_file
    if auth.ca_data:
        conf.ssl_ca_cert = _write_private(f"ca-{id(source)}.crt", auth.ca_data)
    conf.tls_server_name = auth.tls_server_name
    if creds.cert_pem and creds.key_pem:
        conf.cert_file = _write_private(f"client-{id(source)}.crt", creds.cert_pem)
        conf.key_file = _write_private(f"client-{id(source)}.key", creds.key_pem)

    def refresh(configuration: Any) -> None:
        header = source.current().authorization()
        if header:
            configuration.api_key["authorization"] = header
        else:
            configuration.api_key.pop("authorization", None)

    if creds.authorization():
        conf.api_key["authorization"] = creds.authorization()  # type: ignore[assignment]  # truthy just above
        conf.refresh_api_key_hook = refresh  # type: ignore[assignment]  # the client types this attribute as None
    return conf


def kubernetes_api_client(source: CredentialSource) -> k8s.ApiClient:
    """A ``kubernetes`` ApiClient on :func:`kubernetes_configuration` that, when a request is
    answered 401, reads the credentials again at once and, if they changed, sends it once more
    (a CLI command fails rather than wait; the operator's own client backs off and retries)."""
    from kubernetes import client as k

    class ApiClient(k.ApiClient):
        def call_api(self, method: str, url: str, header_params: Any = None, *args: Any, **kwargs: Any) -> Any:
            response = super().call_api(method, url, header_params, *args, **kwargs)
            if response.status != 401 or header_params is None:
                return response
            before = source.current()
            try:
                fresh = source.refresh(force=True, seen=before.generation)
            except CredentialError:
                return response
            header = fresh.authorization()
            if fresh.generation == before.generation or not header:
                return response
            for key in [key for key in header_params if key.lower() == "authorization"]:
                del header_params[key]
            header_params["Authorization"] = header
            return super().call_api(method, url, header_params, *args, **kwargs)

    return ApiClient(kubernetes_configuration(source))
