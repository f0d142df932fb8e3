"""A small async Kubernetes client on aiohttp for the operator's own writes.

Its credentials come from :mod:`modelreg.kube.credentials` (the same source
as Kopf's login), read again when due and after a 401; it never blocks
the event loop, and identifies itself with a user agent so that the API
server's request metrics can be filtered by it.
"""

from __future__ import annotations

import asyncio
import base64
import builtins
import logging
import time
from collections.abc import AsyncIterator, Callable, Mapping
from types import SimpleNamespace
from typing import Any
from urllib.parse import quote

import aiohttp
import kopf
import orjson
from prometheus_client import Counter

from modelreg import __version__
from modelreg.kube.credentials import CredentialError, Credentials, CredentialSource
from modelreg.kube.kubeconfig import AuthConfig

USER_AGENT = f"modelreg-operator/{__version__}"
FIELD_MANAGER = "modelreg"
log = logging.getLogger("modelreg.kube")

JSON = dict[str, Any]
unauthorized = Counter(
    "modelreg_api_unauthorized_total", "API requests of the operator answered 401, or not sent for want of credentials"
)


async def _run_guard(_session: aiohttp.ClientSession, ctx: SimpleNamespace, _params: object) -> None:
    """Run the request's ``guard`` (see :meth:`KubeClient.request`) once its connection is ready."""
    guard = getattr(ctx.trace_request_ctx, "guard", None)
    if guard is not None:
        guard()


def _guard_trace() -> aiohttp.TraceConfig:
    """A trace that runs a request's guard after the connection is taken (new or reused).

    Nothing is awaited between those signals and the request's first bytes being written,
    so a guard run there sees the state of the world as of the send, however long the
    request waited before (a credential refresh, a full pool, a process frozen with SIGSTOP).
    """
    trace = aiohttp.TraceConfig()
    trace.on_connection_create_end.append(_run_guard)
    trace.on_connection_reuseconn.append(_run_guard)
    return trace


class ApiError(Exception):
    """A non-2xx answer from the API server."""

    def __init__(self, status: int, reason: str, message: str, body: JSON | None = None) -> None:
        super().__init__(f"{status} {reason}: {message}")
        self.status = status
        self.reason = reason
        self.message = message
        self.body = body or {}

    @property
    def not_found(self) -> bool:
        return self.status == 404

    @property
    def conflict(self) -> bool:
        return self.status == 409 and self.reason != "AlreadyExists"

    @property
    def already_exists(self) -> bool:
        return self.status == 409 and self.reason == "AlreadyExists"

    @property
    def forbidden(self) -> bool:
        return self.status == 403


def _source_of(info: kopf.ConnectionInfo) -> CredentialSource:
    """A fixed :class:`CredentialSource` from a Kopf login (tests and embedders)."""

    def pem(data: str | bytes | None) -> bytes | None:
        if not data:
            return None
        raw = data.encode() if isinstance(data, str) else data
        return raw if raw.startswith(b"-----BEGIN ") else base64.b64decode(raw)

    auth = AuthConfig(
        context=None,
        source="kopf login",
        server=info.server.rstrip("/"),
        ca_file=str(info.ca_path) if info.ca_path else None,
        ca_data=pem(info.ca_data),
        insecure=bool(info.insecure),
        cert_file=str(info.certificate_path) if info.certificate_path else None,
        cert_data=pem(info.certificate_data),
        key_file=str(info.private_key_path) if info.private_key_path else None,
        key_data=pem(info.private_key_data),
        token=info.token,
        username=info.username,
        password=info.password,
    )
    return CredentialSource(auth)


def _api_error(resp: aiohttp.ClientResponse, raw: bytes) -> ApiError:
    """The API server's error answer (a Status object, or whatever text came back)."""
    try:
        payload = orjson.loads(raw) if raw else {}
    except ValueError:
        payload = None
    if not isinstance(payload, dict):
        payload = {"message": raw.decode("utf-8", "replace")[:500]}
    return ApiError(
        resp.status,
        str(payload.get("reason", resp.reason or "")),
        str(payload.get("message", "")),
        payload,
    )


def path_for(group: str, version: str, plural: str, namespace: str | None = None, name: str | None = None) -> str:
    base = f"/api/{version}" if group == "" else f"/apis/{group}/{version}"
    if namespace is not None:
        base += f"/namespaces/{quote(namespace)}"
    base += f"/{plural}"
    if name is not None:
        base += f"/{quote(name)}"
    return base


class KubeClient:
    """Async JSON client: get, list, create, patch (merge / JSON / apply), delete.

    Credentials come from a :class:`~modelreg.kube.credentials.CredentialSource` and are
    read again when due (token file every 60 s, exec plugin before its expiry). A 401 is
    never an answer to the caller: the credentials are read again at once, and the
    request (or the watch) is tried again with them, backing off 1 s to 60 s and
    reading again before each try, for as long as it takes; the source's ``lockout``
    tells the liveness probe how long nothing but 401s came back.
    """

    def __init__(self, source: CredentialSource | kopf.ConnectionInfo, *, timeout: float = 30.0) -> None:
        if not isinstance(source, CredentialSource):
            source = _source_of(source)
        self.credentials = source
        self._server = source.auth.server.rstrip("/")
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        self._session: aiohttp.ClientSession | None = None
        self._session_cert: tuple[bytes | None, bytes | None] | None = None
        self._old_sessions: list[aiohttp.ClientSession] = []
        self._guarded = False  # see enable_guards()
        self._refresh_lock: asyncio.Lock | None = None

    async def __aenter__(self) -> KubeClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # --- credentials ---------------------------------------------------------------------

    async def _refresh(self, *, force: bool = False, seen: int | None = None) -> Credentials:
        """The source's credentials, read again (in a thread: files, plugins) when due or forced."""
        source = self.credentials
        if self._refresh_lock is None:
            self._refresh_lock = asyncio.Lock()
        while True:
            try:
                if not force and not source.due():
                    return source.current()
                async with self._refresh_lock:
                    if force:
                        return await asyncio.to_thread(source.refresh, force=True, seen=seen)
                    return await asyncio.to_thread(source.current)
            except CredentialError as err:
                delay = source.lockout.unauthorized(time.monotonic())
                unauthorized.inc()
                log.error("no usable credentials: %s; trying again in %.0f s", err, delay)
                await asyncio.sleep(delay)
                force = True

    async def _unauthorized(self, creds: Credentials, what: str, err: ApiError) -> None:
        """After a 401: read the credentials again; unless they changed, back off and read them again."""
        source = self.credentials
        delay = source.lockout.unauthorized(time.monotonic())
        unauthorized.inc()
        fresh = await self._refresh(force=True, seen=creds.generation)
        if fresh.generation != creds.generation:
            log.warning(
                "%s: 401 Unauthorized (%s); retrying at once with the credentials read again", what, err.message
            )
            return
        log.warning(
            "%s: 401 Unauthorized (%s); retrying in %.0f s with credentials read again (nothing but 401s for %.0f s)",
            what,
            err.message,
            delay,
            source.lockout.locked_out_for(time.monotonic()),
        )
        await asyncio.sleep(delay)
        await self._refresh(force=True, seen=fresh.generation)

    def _get_session(self, creds: Credentials) -> aiohttp.ClientSession:
        cert = (creds.cert_pem, creds.key_pem)
        if self._session is not None and not self._session.closed and self._session_cert != cert:
            # A new client certificate (exec plugin): new connections; requests in flight finish on the old ones.
            self._old_sessions.append(self._session)
            self._session = None
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(
                headers={"User-Agent": USER_AGENT, "Accept": "application/json"},
                timeout=self._timeout,
                connector=aiohttp.TCPConnector(ssl=self.credentials.ssl_context(creds), limit=32),
                # aiohttp fires every trace signal of a traced session, guard or not: only when asked.
                trace_configs=[_guard_trace()] if self._guarded else None,
            )
            self._session_cert = cert
        return self._session

    def enable_guards(self) -> None:
        """Make the ``guard`` argument of :meth:`request` take effect (the leader's fence calls
        this). Without it a guard is never run, and requests carry no tracing cost."""
        if self._guarded:
            return
        self._guarded = True
        if self._session is not None:  # new connections from now on, with the trace
            self._old_sessions.append(self._session)
            self._session = None

    @staticmethod
    def _auth_headers(creds: Credentials, extra: Mapping[str, str] | None = None) -> dict[str, str]:
        headers = dict(extra or {})
        header = creds.authorization()
        if header:
            headers["Authorization"] = header
        return headers

    async def close(self) -> None:
        for session in [*self._old_sessions, self._session]:
            if session is not None:
                await session.close()
        self._old_sessions = []

    async def request(
        self,
        method: str,
        path: str,
        *,
        body: Any = None,
        params: Mapping[str, str] | None = None,
        content_type: str = "application/json",
        guard: Callable[[], None] | None = None,
    ) -> JSON:
        """One request, answered as JSON (an :class:`ApiError` for a non-2xx answer).

        ``guard``, if given (and guards enabled, :meth:`enable_guards`), runs at the last moment
        before the request is written (its connection taken, nothing awaited after it) and may
        raise to keep it from being sent: the leader's fence
        (:func:`modelreg.controller.leader.fence`) re-checks its lease there.
        """
        # orjson: decoding the API server's answers was about a tenth of the operator's CPU.
        data = None if body is None else orjson.dumps(body)
        extra = {"Content-Type": content_type} if data is not None else None
        while True:
            creds = await self._refresh()
            async with self._get_session(creds).request(
                method,
                self._server + path,
                data=data,
                params=params,
                headers=self._auth_headers(creds, extra),
                trace_request_ctx=None if guard is None else SimpleNamespace(guard=guard),
            ) as resp:
                raw = await resp.read()
                if resp.status == 401:
                    await self._unauthorized(creds, f"{method} {path}", _api_error(resp, raw))
                    continue
                self.credentials.lockout.authenticated()
                if resp.status >= 400:
                    raise _api_error(resp, raw)
                try:
                    return orjson.loads(raw) if raw else {}
                except ValueError:
                    return {"message": raw.decode("utf-8", "replace")[:500]}

    async def watch(self, path: str, **params: str) -> AsyncIterator[JSON]:
        """Stream a watch: one decoded event per line until the server ends it.

        Lines are split on the raw byte stream, so an object of any size is one
        event (aiohttp's ``readline`` refuses lines over 128 KiB). The read timeout
        is the server's ``timeoutSeconds`` plus a margin, never the client's 30 s.
        A watch answered 401 reads the credentials again and starts again (see
        :meth:`request`) before anything is yielded.
        """
        server_timeout = float(params.get("timeoutSeconds", "300"))
        timeout = aiohttp.ClientTimeout(total=None, sock_connect=30, sock_read=server_timeout + 30)
        query = {"watch": "1", **params}
        while True:
            creds = await self._refresh()
            async with self._get_session(creds).get(
                self._server + path, params=query, timeout=timeout, headers=self._auth_headers(creds)
            ) as resp:
                if resp.status == 401:
                    await self._unauthorized(creds, f"watch {path}", _api_error(resp, await resp.read()))
                    continue
                self.credentials.lockout.authenticated()
                if resp.status >= 400:
                    raise _api_error(resp, await resp.read())
                buffer = b""
                async for chunk in resp.content.iter_any():
                    buffer += chunk
                    *lines, buffer = buffer.split(b"\n")
                    for line in lines:
                        if line.strip():
                            yield orjson.loads(line)
                if buffer.strip():
                    yield orjson.loads(buffer)
                return

    # --- verbs ---------------------------------------------------------------------------

    async def get(self, path: str) -> JSON:
        return await self.request("GET", path)

    async def list(self, path: str, **params: str) -> JSON:
        return await self.request("GET", path, params=params or None)

    async def create(self, path: str, body: JSON) -> tuple[JSON, bool]:
        """Create; AlreadyExists is success. Returns (object, created_now)."""
        try:
            return await self.request("POST", path, body=body, params={"fieldManager": FIELD_MANAGER}), True
        except ApiError as err:
            if not err.already_exists:
                raise
            name = body["metadata"]["name"]
            return await self.get(f"{path}/{quote(name)}"), False

    async def merge_patch(self, path: str, body: JSON) -> JSON:
        """JSON merge patch. Put ``metadata.resourceVersion`` in ``body`` for an optimistic-lock write."""
        return await self.request(
            "PATCH",
            path,
            body=body,
            params={"fieldManager": FIELD_MANAGER},
            content_type="application/merge-patch+json",
        )

    async def json_patch(self, path: str, ops: builtins.list[JSON]) -> JSON:  # `list` is a method here
        return await self.request(
            "PATCH",
            path,
            body=ops,
            params={"fieldManager": FIELD_MANAGER},
            content_type="application/json-patch+json",
        )

    async def apply(self, path: str, body: JSON, *, force: bool = True) -> JSON:
        """Server-side apply under field manager ``modelreg``."""
        params = {"fieldManager": FIELD_MANAGER, "force": "true" if force else "false"}
        return await self.request("PATCH", path, body=body, params=params, content_type="application/apply-patch+yaml")

    async def delete(self, path: str, *, precondition_uid: str | None = None, **params: str) -> JSON | None:
        """Delete; NotFound is success (returns None)."""
        body = {"preconditions": {"uid": precondition_uid}} if precondition_uid else None
        try:
            return await self.request("DELETE", path, body=body, params=params or None)
        except ApiError as err:
            if err.not_found:
                return None
            if err.status == 409 and precondition_uid:
                return None  # a newer object of the same name: not ours to delete
            raise


async def retry_transient(coro_factory: Any, *, attempts: int = 5, base_delay: float = 0.2) -> Any:
    """Run ``coro_factory()`` again on 429/5xx and connection errors, with backoff."""
    delay = base_delay
    for attempt in range(attempts):
        try:
            return await coro_factory()
        except ApiError as err:
            if err.status not in (429, 500, 502, 503, 504) or attempt == attempts - 1:
                raise
        except (TimeoutError, aiohttp.ClientError):
            if attempt == attempts - 1:
                raise
        await asyncio.sleep(delay)
        delay = min(delay * 2, 5.0)
    raise RuntimeError("unreachable")
