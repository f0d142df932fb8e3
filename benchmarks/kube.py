"""A minimal asyncio Kubernetes client for the benchmark: aiohttp, no framework.

The benchmark's one API client: its driver (CRDs, bulk set-up, paced snapshot
creation, watches that timestamp what the operator writes, the API server's
/metrics on a shared cluster) and the bare client of the two floors.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import ssl
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any, cast
from urllib.parse import quote

import aiohttp
import yaml

GROUP, VERSION = "modelreg.io", "v1alpha1"
API_VERSION = f"{GROUP}/{VERSION}"
USER_AGENT = "modelreg-bench/0.1"
WRITE_METHODS = {"POST", "PUT", "PATCH", "DELETE"}

JSON = dict[str, Any]
# handler(event_type, object, monotonic receive time)
WatchHandler = Callable[[str, JSON, float], None]


class ApiError(Exception):
    def __init__(self, status: int, reason: str, message: str) -> None:
        super().__init__(f"{status} {reason}: {message}")
        self.status = status
        self.reason = reason
        self.message = message


def path(
    plural: str, ns: str | None = None, name: str | None = None, *, group: str = GROUP, version: str = VERSION
) -> str:
    base = f"/api/{version}" if group == "" else f"/apis/{group}/{version}"
    if ns is not None:
        base += f"/namespaces/{quote(ns)}"
    base += f"/{plural}"
    if name is not None:
        base += f"/{quote(name)}"
    return base


def _ssl_from_kubeconfig(kubeconfig: Path) -> tuple[str, ssl.SSLContext]:
    cfg = yaml.safe_load(kubeconfig.read_text())
    ctx_name = cfg.get("current-context")
    ctx = next(c["context"] for c in cfg["contexts"] if c["name"] == ctx_name)
    cluster = next(c["cluster"] for c in cfg["clusters"] if c["name"] == ctx["cluster"])
    user = next(u["user"] for u in cfg["users"] if u["name"] == ctx["user"])
    sslctx = ssl.create_default_context()
    if "certificate-authority-data" in cluster:
        sslctx.load_verify_locations(cadata=base64.b64decode(cluster["certificate-authority-data"]).decode())
    elif "certificate-authority" in cluster:
        sslctx.load_verify_locations(cafile=cluster["certificate-authority"])
    if "client-certificate-data" in user:
        with tempfile.NamedTemporaryFile() as cert, tempfile.NamedTemporaryFile() as key:
            cert.write(base64.b64decode(user["client-certificate-data"]))
            key.write(base64.b64decode(user["client-key-data"]))
            cert.flush()
            key.flush()
            sslctx.load_cert_chain(cert.name, key.name)
    elif "client-certificate" in user:
        sslctx.load_cert_chain(user["client-certificate"], user["client-key"])
    return str(cluster["server"]).rstrip("/"), sslctx


class Kube:
    """JSON verbs over one aiohttp session, plus resilient watches on a second one."""

    def __init__(self, kubeconfig: Path, *, limit: int = 64, user_agent: str = USER_AGENT) -> None:
        self.server, self._ssl = _ssl_from_kubeconfig(kubeconfig)
        self._limit = limit
        self._headers = {"User-Agent": user_agent, "Accept": "application/json"}
        self._session: aiohttp.ClientSession | None = None
        self._watch_session: aiohttp.ClientSession | None = None
        self.writes: Counter[str] = Counter()  # our own write requests, by method
        self.requests = 0

    async def __aenter__(self) -> Kube:
        self._session = aiohttp.ClientSession(
            headers=self._headers,
            timeout=aiohttp.ClientTimeout(total=60),
            connector=aiohttp.TCPConnector(ssl=self._ssl, limit=self._limit),
        )
        self._watch_session = aiohttp.ClientSession(
            headers=self._headers,
            timeout=aiohttp.ClientTimeout(total=None, sock_connect=10),
            connector=aiohttp.TCPConnector(ssl=self._ssl, limit=0),
        )
        return self

    async def __aexit__(self, *exc: object) -> None:
        for s in (self._session, self._watch_session):
            if s is not None:
                await s.close()

    @property
    def own_writes(self) -> int:
        return sum(self.writes.values())

    async def request(
        self,
        method: str,
        p: str,
        *,
        body: Any = None,
        params: dict[str, str] | None = None,
        content_type: str = "application/json",
        text: bool = False,
    ) -> Any:
        assert self._session is not None
        data = None if body is None else json.dumps(body, separators=(",", ":"))
        headers = {"Content-Type": content_type} if data is not None else None
        self.requests += 1
        if method in WRITE_METHODS:
            self.writes[method] += 1
        for attempt in range(6):
            try:
                async with self._session.request(
                    method, self.server + p, data=data, params=params, headers=headers
                ) as resp:
                    raw = await resp.text()
                    if resp.status == 429 or (resp.status >= 500 and attempt < 5):
                        await asyncio.sleep(0.2 * 2**attempt)
                        continue
                    if text:
                        if resp.status >= 400:
                            raise ApiError(resp.status, resp.reason or "", raw[:300])
                        return raw
                    payload = json.loads(raw) if raw else {}
                    if resp.status >= 400:
                        raise ApiError(
                            resp.status, str(payload.get("reason", resp.reason)), str(payload.get("message", raw[:300]))
                        )
                    return payload
            except (TimeoutError, aiohttp.ClientConnectionError):
                if attempt == 5:
                    raise
                await asyncio.sleep(0.2 * 2**attempt)
        raise ApiError(599, "Retries", f"{method} {p} kept failing")

    async def get(self, p: str, **params: str) -> JSON:
        return cast(JSON, await self.request("GET", p, params=params or None))

    async def create(self, p: str, body: JSON, *, exist_ok: bool = False) -> JSON:
        try:
            return cast(JSON, await self.request("POST", p, body=body))
        except ApiError as err:
            if exist_ok and err.status == 409:
                return {}
            raise

    async def merge_patch(self, p: str, body: JSON) -> JSON:
        return cast(JSON, await self.request("PATCH", p, body=body, content_type="application/merge-patch+json"))

    async def delete(self, p: str, **params: str) -> None:
        with contextlib.suppress(ApiError):
            await self.request("DELETE", p, params=params or None)

    async def list_all(self, p: str, **params: str) -> list[JSON]:
        items: list[JSON] = []
        cont = ""
        while True:
            q = {"limit": "2000", **params}
            if cont:
                q["continue"] = cont
            out = await self.get(p, **q)
            items.extend(out.get("items") or [])
            cont = (out.get("metadata") or {}).get("continue") or ""
            if not cont:
                return items

    async def watch(
        self, p: str, handler: WatchHandler, *, ready: asyncio.Event | None = None, params: dict[str, str] | None = None
    ) -> None:
        """Watch ``p`` from now on (no initial list), forever; reconnects on expiry."""
        assert self._watch_session is not None
        rv = ""
        while True:
            if not rv:
                listed = await self.get(p, limit="1", **(params or {}))
                rv = listed["metadata"]["resourceVersion"]
            q = {
                "watch": "1",
                "resourceVersion": rv,
                "allowWatchBookmarks": "true",
                "timeoutSeconds": "1800",
                **(params or {}),
            }
            try:
                async with self._watch_session.get(self.server + p, params=q) as resp:
                    if resp.status >= 400:
                        raise ApiError(resp.status, resp.reason or "", await resp.text())
                    if ready is not None:
                        ready.set()
                    buf = b""
                    expired = False
                    async for chunk in resp.content.iter_any():
                        t = time.monotonic()
                        buf += chunk
                        *lines, buf = buf.split(b"\n")
                        for line in lines:
                            if not line.strip():
                                continue
                            ev = json.loads(line)
                            typ, obj = ev.get("type"), ev.get("object") or {}
                            if typ == "ERROR":
                                expired = obj.get("code") == 410
                                break
                            rv = (obj.get("metadata") or {}).get("resourceVersion") or rv
                            if typ != "BOOKMARK":
                                handler(typ, obj, t)
                        if expired:
                            rv = ""  # too old: the events in between are lost
                            break
            except (TimeoutError, aiohttp.ClientError):
                await asyncio.sleep(0.5)
