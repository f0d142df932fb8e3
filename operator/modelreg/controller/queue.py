"""A coalescing work queue with per-key serialization and a timer wheel.

* ``schedule(key)`` asks for ``key`` to be processed; many asks before it runs
  coalesce into one run, an ask during a run causes exactly one more run.
* The same key never runs twice at once: decisions for one model are serialized.
* ``call_at(when, key)`` schedules a key at a wall-clock time (time-only gates,
  staleness, TTLs) without a Kubernetes timer, so nothing is written to do it.
"""

from __future__ import annotations

import asyncio
import heapq
import logging
import time
from collections.abc import Awaitable, Callable, Hashable
from datetime import UTC, datetime

log = logging.getLogger("modelreg.queue")

Handler = Callable[[Hashable], Awaitable[None]]


class WorkQueue:
    def __init__(self, handler: Handler, *, workers: int = 8, retry_delay: float = 1.0) -> None:
        self._handler = handler
        self._workers = workers
        self._retry_delay = retry_delay
        self._queue: asyncio.Queue[Hashable] = asyncio.Queue()
        self._queued: set[Hashable] = set()
        self._running: set[Hashable] = set()
        self._dirty: set[Hashable] = set()
        self._timers: list[tuple[float, int, Hashable]] = []
        self._timer_seq = 0
        self._timer_wakeup = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self._idle = asyncio.Event()
        self._idle.set()
        self.failures: dict[Hashable, int] = {}

    def start(self) -> None:
        loop = asyncio.get_running_loop()
        self._tasks = [loop.create_task(self._worker(i)) for i in range(self._workers)]
        self._tasks.append(loop.create_task(self._timer_loop()))

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks = []

    def schedule(self, key: Hashable) -> None:
        if key in self._running:
            self._dirty.add(key)
            return
        if key in self._queued:
            return
        self._queued.add(key)
        self._idle.clear()
        self._queue.put_nowait(key)

    def call_at(self, when: datetime, key: Hashable) -> None:
        delay = (when - datetime.now(UTC)).total_seconds()
        self.call_later(max(delay, 0.0), key)

    def call_later(self, delay: float, key: Hashable) -> None:
        self._timer_seq += 1
        heapq.heappush(self._timers, (time.monotonic() + delay, self._timer_seq, key))
        self._timer_wakeup.set()

    @property
    def depth(self) -> int:
        return len(self._queued) + len(self._running)

    async def wait_idle(self, timeout: float | None = None) -> None:
        await asyncio.wait_for(self._idle.wait(), timeout)

    async def _timer_loop(self) -> None:
        while True:
            self._timer_wakeup.clear()
            now = time.monotonic()
            while self._timers and self._timers[0][0] <= now:
                _, _, key = heapq.heappop(self._timers)
                self.schedule(key)
            timeout = self._timers[0][0] - now if self._timers else None
            try:
                await asyncio.wait_for(self._timer_wakeup.wait(), timeout)
            except TimeoutError:
                pass

    async def _worker(self, index: int) -> None:
        while True:
            key = await self._queue.get()
            self._queued.discard(key)
            self._running.add(key)
            try:
                await self._handler(key)
                self.failures.pop(key, None)
            except asyncio.CancelledError:
                raise
            except Exception as err:
                count = self.failures.get(key, 0) + 1
                self.failures[key] = count
                delay = min(self._retry_delay * 2 ** min(count - 1, 6), 60.0)
                if count <= 3 or count % 10 == 0:
                    log.warning("processing %s failed (attempt %d), retrying in %.1fs: %s", key, count, delay, err)
                self.call_later(delay, key)
            finally:
                self._running.discard(key)
                if key in self._dirty:
                    self._dirty.discard(key)
                    self.schedule(key)
                if not self._queued and not self._running:
                    self._idle.set()
