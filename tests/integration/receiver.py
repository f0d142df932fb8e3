"""A real webhook receiver for notifier tests: an aiohttp server on 127.0.0.1 in a thread.

Answers follow a script (``answers``: HTTP statuses, consumed one per request; 200 when it
runs out). ``hold`` makes the next requests wait until :meth:`Receiver.release` (or the
client goes away), to cut a delivery off mid-flight.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web


@dataclass
class Received:
    key: str
    auth: str
    body: dict[str, Any]
    answered: int | None = None


@dataclass
class Receiver:
    port: int = 0
    answers: list[int] = field(default_factory=list)
    hold: int = 0  # hold this many of the next requests until release()
    requests: list[Received] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _loop: asyncio.AbstractEventLoop | None = None
    _released: asyncio.Event | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"

    def keys(self) -> list[str]:
        with self._lock:
            return [r.key for r in self.requests]

    def by_phase(self, phase: str) -> list[Received]:
        with self._lock:
            return [r for r in self.requests if r.body.get("phase") == phase]

    def release(self) -> None:
        assert self._loop is not None and self._released is not None
        self._loop.call_soon_threadsafe(self._released.set)

    async def _handle(self, request: web.Request) -> web.Response:
        body = json.loads(await request.read())
        rec = Received(request.headers.get("Idempotency-Key", ""), request.headers.get("Authorization", ""), body)
        with self._lock:
            self.requests.append(rec)
            held = self.hold > 0
            if held:
                self.hold -= 1
            status = self.answers.pop(0) if self.answers else 200
        if held:
            assert self._released is not None
            await self._released.wait()
        rec.answered = status
        return web.json_response({"ok": status < 300}, status=status)

    def wait(self, what: str, predicate: Any, timeout: float = 30.0) -> Any:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            value = predicate()
            if value:
                return value
            time.sleep(0.05)
        raise AssertionError(f"receiver: timed out waiting for {what}; got {self.keys()}")


@contextmanager
def receiver(**kw: Any) -> Iterator[Receiver]:
    rec = Receiver(**kw)
    ready = threading.Event()
    stop: dict[str, Any] = {}

    def serve() -> None:
        loop = asyncio.new_event_loop()
        rec._loop = loop

        async def main() -> None:
            rec._released = asyncio.Event()
            app = web.Application()
            app.router.add_post("/hook", rec._handle)
            runner = web.AppRunner(app, access_log=None)
            await runner.setup()
            site = web.TCPSite(runner, "127.0.0.1", 0)
            await site.start()
            rec.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
            done = asyncio.Event()
            stop["done"] = done
            ready.set()
            await done.wait()
            await runner.cleanup()

        loop.run_until_complete(main())
        loop.close()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    assert ready.wait(10), "receiver did not start"
    try:
        yield rec
    finally:
        assert rec._loop is not None
        rec._loop.call_soon_threadsafe(rec._released.set)  # type: ignore[union-attr]
        rec._loop.call_soon_threadsafe(stop["done"].set)
        thread.join(10)
