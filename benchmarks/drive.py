"""How the benchmark drives load: bounded bulk work, paced creation, waiting on what the watches saw."""

from __future__ import annotations

import asyncio
import sys
import time
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any


@dataclass
class Drive:
    concurrency: int
    t_start: float = field(default_factory=time.monotonic)

    def log(self, phase: str, msg: str) -> None:
        print(f"[{time.monotonic() - self.t_start:7.1f}s] {phase}: {msg}", file=sys.stderr, flush=True)

    async def wait_for(self, phase: str, what: str, pred: Callable[[], tuple[bool, str]], timeout: float) -> bool:
        """Until ``pred()`` says done (its state logged every 3 s); False on timeout."""
        deadline = time.monotonic() + timeout
        next_report = time.monotonic() + 3
        while True:
            done, state = pred()
            if done:
                return True
            now = time.monotonic()
            if now >= deadline:
                self.log(phase, f"timed out waiting for {what}: {state}")
                return False
            if now >= next_report:
                self.log(phase, f"waiting for {what}: {state}")
                next_report = now + 3
            await asyncio.sleep(0.05)

    async def bulk(self, phase: str, what: str, coros: list[Callable[[], Awaitable[Any]]]) -> float:
        """Run the factories with bounded concurrency; progress every 3 s. Returns seconds."""
        sem = asyncio.Semaphore(self.concurrency)
        done = 0
        t0 = time.monotonic()
        last = [t0]

        async def one(f: Callable[[], Awaitable[Any]]) -> None:
            nonlocal done
            async with sem:
                await f()
            done += 1
            if time.monotonic() - last[0] >= 3:
                last[0] = time.monotonic()
                self.log(phase, f"{what}: {done}/{len(coros)}")

        await asyncio.gather(*(one(f) for f in coros))
        took = time.monotonic() - t0
        self.log(phase, f"{what}: {len(coros)} in {took:.1f}s")
        return took

    async def paced(
        self,
        rate: float,
        make: Callable[[int], Coroutine[Any, Any, Any]],
        *,
        duration: float | None = None,
        count: int | None = None,
        stop: asyncio.Event | None = None,
    ) -> tuple[int, float]:
        """Start ``make(i)`` at ``rate`` per second (bounded in flight). Returns (count, seconds)."""
        sem = asyncio.Semaphore(self.concurrency)
        tasks: list[asyncio.Task[Any]] = []
        start = time.monotonic()
        i = 0
        while True:
            if count is not None and i >= count:
                break
            if stop is not None and stop.is_set():
                break
            target = start + i / rate
            if duration is not None and target - start >= duration:
                break
            delay = target - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            await sem.acquire()
            task = asyncio.create_task(make(i))
            task.add_done_callback(lambda _t: sem.release())
            tasks.append(task)
            i += 1
        sent_for = time.monotonic() - start
        await asyncio.gather(*tasks)
        return i, sent_for
