"""A coalescing work queue with per-key serialization and a timer wheel.

* ``schedule(key)`` asks for ``key`` to be processed; many asks before it runs
  coalesce into one run, an ask during a run causes exactly one more run.
* The same key never runs twice at once: decisions for one model are serialized.
* ``schedule(key, urgent=True)`` puts the key in the urgent lane, which
  workers drain before the normal one: a breaching snapshot is not kept
  waiting behind a backlog of healthy bookkeeping (a key already queued in
  the normal lane is moved).
* ``call_at(when, key)`` schedules a key at a wall-clock time (time-only gates,
  staleness, TTLs) without a Kubernetes timer, so nothing is written to do it.
"""

from __future__ import annotations

import asyncio
import heapq
import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable, Hashable
from datetime import UTC, datetime

log = logging.getLogger("modelreg.queue")

Handler = Callable[[Hashable], Awaitable[None]]


class WorkQueue:
    def __init__(self, handler: Handler, *, workers: int = 8, retry_delay: float = 1.0, paused: bool = False) -> None:
        self._handler = handler
        self._gate = asyncio.Event()  # workers take keys only while it is set
        if not paused:
            self._gate.set()
        self._workers = workers
        self._retry_delay = retry_delay
        # Two FIFO lanes; ``_queued`` maps each waiting key to its lane. An entry whose lane
        # no longer matches (the key was moved to the urgent lane) is skipped when popped.
        self._lanes: tuple[deque[Hashable], deque[Hashable]] = (deque(), deque())
        self._queued: dict[Hashable, int] = {}
        self._tokens: asyncio.Queue[None] = asyncio.Queue()  # one per waiting key
        self._urgent_ready = asyncio.Event()  # the urgent lane may hold a key
        self._running: set[Hashable] = set()
        self._dirty: dict[Hashable, bool] = {}  # asked again while running (value: urgent)
        self._timers: list[tuple[float, int, Hashable]] = []
        self._due: dict[Hashable, float] = {}  # the live (earliest) wake-up of each key
        self._timer_seq = 0
        self._timer_wakeup = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self._idle = asyncio.Event()
        self._idle.set()
        self.failures: dict[Hashable, int] = {}

    def start(self) -> None:
        loop = asyncio.get_running_loop()
        self._tasks = [loop.create_task(self._worker(i)) for i in range(self._workers)]
        self._tasks.append(loop.create_task(self._urgent_worker()))
        self._tasks.append(loop.create_task(self._timer_loop()))

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks = []

    @property
    def paused(self) -> bool:
        return not self._gate.is_set()

    def resume(self) -> None:
        """Let the workers take keys (keys scheduled while paused are kept)."""
        self._gate.set()

    def schedule(self, key: Hashable, *, urgent: bool = False) -> None:
        if key in self._running:
            self._dirty[key] = self._dirty.get(key, False) or urgent
            return
        lane = 0 if urgent else 1
        current = self._queued.get(key)
        if current is not None and current <= lane:
            return
        self._queued[key] = lane
        self._lanes[lane].append(key)
        if lane == 0:
            self._urgent_ready.set()
        self._idle.clear()
        if current is None:
            self._tokens.put_nowait(None)

    def _pop(self, lanes: int = 2) -> Hashable | None:
        for lane, entries in enumerate(self._lanes[:lanes]):
            while entries:
                key = entries.popleft()
                if self._queued.get(key) == lane:
                    del self._queued[key]
                    return key
        return None

    @property
    def urgent_depth(self) -> int:
        return sum(1 for lane in self._queued.values() if lane == 0)

    def call_at(self, when: datetime, key: Hashable) -> None:
        delay = (when - datetime.now(UTC)).total_seconds()
        self.call_later(max(delay, 0.0), key)

    def call_later(self, delay: float, key: Hashable) -> None:
        """Schedule ``key`` after ``delay`` seconds; one pending wake-up per key, the earliest.

        A later ask for a key that already has an earlier wake-up is dropped: that run
        recomputes and re-arms whatever it still needs. So the heap holds about one entry
        per key, not one per snapshot (each re-arms the staleness check of its version).
        """
        due = time.monotonic() + delay
        pending = self._due.get(key)
        if pending is not None and pending <= due:
            return
        self._due[key] = due
        self._timer_seq += 1
        heapq.heappush(self._timers, (due, self._timer_seq, key))
        self._timer_wakeup.set()

    @property
    def timers(self) -> int:
        return len(self._due)

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
                due, _, key = heapq.heappop(self._timers)
                if self._due.get(key) != due:
                    continue  # superseded by an earlier wake-up of the same key
                del self._due[key]
                self.schedule(key)
            timeout = self._timers[0][0] - now if self._timers else None
            try:
                await asyncio.wait_for(self._timer_wakeup.wait(), timeout)
            except TimeoutError:
                pass

    async def _worker(self, index: int) -> None:
        while True:
            await self._tokens.get()
            await self._gate.wait()
            key = self._pop()
            if key is None:  # the urgent worker took it (it consumes no token)
                continue
            await self._run(key)

    async def _urgent_worker(self) -> None:
        """Takes only urgent keys, so one never waits for a busy worker to finish."""
        while True:
            await self._urgent_ready.wait()
            await self._gate.wait()
            key = self._pop(lanes=1)
            if key is None:
                self._urgent_ready.clear()
                continue
            await self._run(key)

    async def _run(self, key: Hashable) -> None:
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
                self.schedule(key, urgent=self._dirty.pop(key))
            if not self._queued and not self._running:
                self._idle.set()
