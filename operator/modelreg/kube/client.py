"""A small async Kubernetes client on aiohttp for the operator's own writes.

It reuses Kopf's login (the same :class:`kopf.ConnectionInfo`), never blocks
the event loop, and identifies itself with a user agent so that the API
server's request metrics can be filtered by it.
"""

from __future__ import annotations

import asyncio
import base64
import logging
import ssl
import tempfile
from collections.abc import AsyncIterator, Mapping
from typing import Any
from urllib.parse import quote

import aiohttp
import kopf
import orjson

from modelreg import __version__

USER_AGENT = f"modelreg-operator/{__version__}"
FIELD_MANAGER = "modelreg"
log = logging.getLogger("modelreg.kube")

JSON = dict[str, Any]


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


def _ssl_context(info: kopf.ConnectionInfo) -> ssl.SSLContext | bool:
    if info.insecure:
        return False
    ctx = ssl.create_default_context()
    if info.ca_path:
        ctx.load_verify_locations(cafile=info.ca_path)
    elif info.ca_data:
        ctx.load_verify_locations(cadata=base64.b64decode(info.ca_data).decode("ascii"))
    if info.certificate_path and info.private_key_path:
        ctx.load_cert_chain(info.certificate_path, info.private_key_path)
    elif info.certificate_data and info.private_key_data:
        # ssl needs files for client certificates; keep them only as long as loading takes.
        with tempfile.NamedTemporaryFile() as cert, tempfile.NamedTemporaryFile() as key:
            cert.write(base64.b64decode(info.certificate_data))
            key.write(base64.b64decode(info.private_key_data))
            cert.flush()
            key.flush()
            ctx.load_cert_chain(cert.name, key.name)
    return ctx


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
    """Async JSON client: get, list, create, patch (merge / JSON / apply), delete."""

    def __init__(self, info: kopf.ConnectionInfo, *, timeout: float = 30.0) -> None:
        self._server = info.server.rstrip("/")
        headers = {"User-Agent": USER_AGENT, "Accept": "application/json"}
        if info.token:
            headers["Authorization"] = f"{info.scheme or 'Bearer'} {info.token}"
        elif info.username and info.password:
            creds = base64.b64encode(f"{info.username}:{info.password}".encode()).decode()
            headers["Authorization"] = f"Basic {creds}"
        self._headers = headers
        self._ssl = _ssl_context(info)
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        self._session: aiohttp.ClientSession | None = None

    async def __aenter__(self) -> KubeClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    def _get_session(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(
                headers=self._headers,
                timeout=self._timeout,
                connector=aiohttp.TCPConnector(ssl=self._ssl, limit=32),
            )
        return self._session

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()

    async def request(
        self,
        method: str,
        path: str,
        *,
        body: Any = None,
        params: Mapping[str, str] | None = None,
        content_type: str = "application/json",
    ) -> JSON:
        # orjson: decoding the API server's answers was about a tenth of the operator's CPU.
        data = None if body is None else orjson.dumps(body)
        headers = {"Content-Type": content_type} if data is not None else None
        async with self._get_session().request(
            method, self._server + path, data=data, params=params, headers=headers
        ) as resp:
            raw = await resp.read()
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
        """
        server_timeout = float(params.get("timeoutSeconds", "300"))
        timeout = aiohttp.ClientTimeout(total=None, sock_connect=30, sock_read=server_timeout + 30)
        query = {"watch": "1", **params}
        async with self._get_session().get(self._server + path, params=query, timeout=timeout) as resp:
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

    async def json_patch(self, path: str, ops: list[JSON]) -> JSON:
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
