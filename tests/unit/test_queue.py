"""The work queue: coalescing, per-key serialization and the urgent lane (no cluster)."""

from __future__ import annotations

import asyncio
from collections.abc import Hashable

import pytest

from modelreg.controller.queue import WorkQueue


def run(coro):  # type: ignore[no-untyped-def]
    return asyncio.run(coro)


def test_urgent_keys_run_before_the_backlog() -> None:
    async def main() -> list[Hashable]:
        order: list[Hashable] = []
        gate = asyncio.Event()

        async def handle(key: Hashable) -> None:
            if key == "first":
                await gate.wait()
            order.append(key)

        q = WorkQueue(handle, workers=1)
        q.start()
        q.schedule("first")
        await asyncio.sleep(0)
        for i in range(5):
            q.schedule(f"healthy-{i}")
        q.schedule("breach", urgent=True)
        q.schedule("healthy-3", urgent=True)  # moved from the normal lane, runs once
        await asyncio.sleep(0.05)
        gate.set()
        await q.wait_idle(5)
        await q.stop()
        return order

    order = run(main())
    # The only worker is busy with "first": the urgent keys run on the urgent worker meanwhile.
    assert order[:3] == ["breach", "healthy-3", "first"]
    assert sorted(order[3:]) == ["healthy-0", "healthy-1", "healthy-2", "healthy-4"]
    assert len(order) == len(set(order))


def test_asks_coalesce_and_an_ask_while_running_runs_once_more() -> None:
    async def main() -> dict[Hashable, int]:
        runs: dict[Hashable, int] = {}
        gate = asyncio.Event()

        async def handle(key: Hashable) -> None:
            runs[key] = runs.get(key, 0) + 1
            if runs[key] == 1:
                await gate.wait()

        q = WorkQueue(handle, workers=4)
        q.start()
        for _ in range(10):
            q.schedule("a")
        await asyncio.sleep(0.01)
        assert q.depth == 1
        for _ in range(3):
            q.schedule("a", urgent=True)  # while running: exactly one more run
        gate.set()
        await q.wait_idle(5)
        await q.stop()
        return runs

    assert run(main()) == {"a": 2}


def test_a_key_never_runs_twice_at_once() -> None:
    async def main() -> int:
        active: set[Hashable] = set()
        overlaps = 0

        async def handle(key: Hashable) -> None:
            nonlocal overlaps
            if key in active:
                overlaps += 1
            active.add(key)
            await asyncio.sleep(0.001)
            active.discard(key)

        q = WorkQueue(handle, workers=8)
        q.start()
        for i in range(300):
            q.schedule(i % 7, urgent=i % 3 == 0)
            if i % 10 == 0:
                await asyncio.sleep(0)
        await q.wait_idle(10)
        await q.stop()
        return overlaps

    assert run(main()) == 0


@pytest.mark.parametrize("fail_times", [1, 2])
def test_a_failing_key_is_retried_with_backoff(fail_times: int) -> None:
    async def main() -> int:
        calls = 0

        async def handle(key: Hashable) -> None:
            nonlocal calls
            calls += 1
            if calls <= fail_times:
                raise RuntimeError("transient")

        q = WorkQueue(handle, workers=1, retry_delay=0.01)
        q.start()
        q.schedule("k")
        for _ in range(200):
            await asyncio.sleep(0.01)
            if calls > fail_times and q.depth == 0:
                break
        await q.stop()
        return calls

    assert run(main()) == fail_times + 1


def test_one_stage_and_one_health_series_per_version() -> None:
    from prometheus_client import generate_latest

    from modelreg import metrics

    def series(model: str) -> list[str]:
        text = generate_latest().decode()
        return sorted(
            line.split("{", 1)[1].split("}")[0]
            for line in text.splitlines()
            if line.startswith(("modelreg_model_stage{", "modelreg_model_health{")) and f'model="{model}"' in line
        )

    metrics.set_version_series("ns", "m-unit", "1.0.0", "Sandbox", "Healthy")
    metrics.set_version_series("ns", "m-unit", "1.0.0", "Production", "Critical")
    got = series("m-unit")
    assert len(got) == 2
    assert any('stage="Production"' in s for s in got) and any('health="Critical"' in s for s in got)
    metrics.forget_version("ns", "m-unit", "1.0.0")
    assert series("m-unit") == []


def test_a_paused_queue_keeps_its_keys_until_resumed() -> None:
    async def main() -> tuple[list[Hashable], list[Hashable]]:
        done: list[Hashable] = []

        async def handle(key: Hashable) -> None:
            done.append(key)

        q = WorkQueue(handle, workers=2, paused=True)
        q.start()
        q.schedule("a")
        q.schedule("b", urgent=True)
        await asyncio.sleep(0.05)
        before = list(done)
        q.resume()
        await q.wait_idle(5)
        await q.stop()
        return before, done

    before, after = run(main())
    assert before == [] and after == ["b", "a"]


def test_one_pending_wake_up_per_key_the_earliest() -> None:
    async def main() -> tuple[int, list[Hashable]]:
        done: list[Hashable] = []

        async def handle(key: Hashable) -> None:
            done.append(key)

        q = WorkQueue(handle, workers=1)
        q.start()
        for i in range(1000):  # every snapshot re-arms its version's staleness check
            q.call_later(0.2 + i / 1000, "model")
        q.call_later(0.05, "model")  # an earlier one replaces them
        q.call_later(0.1, "other")
        pending = q.timers
        await asyncio.sleep(0.5)
        await q.wait_idle(5)
        await q.stop()
        return pending, done

    pending, done = run(main())
    assert pending == 2
    assert done == ["model", "other"]
