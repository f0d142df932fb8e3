"""The work queue's retry schedule and its log cadence (README "Retries"; issue 19).

Work on a model that fails is retried 1 s doubling to 60 s, with a log line on the
1st-3rd and every 10th failure (so revoked RBAC does not flood the logs); a success
starts the schedule over.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Hashable

import pytest

from modelreg.controller.queue import WorkQueue


def test_retry_delays_double_from_one_second_to_sixty_and_log_on_1_to_3_and_every_10th(
    caplog: pytest.LogCaptureFixture,
) -> None:
    failures = 25

    async def main() -> tuple[list[float], list[int]]:
        calls = 0

        async def handle(key: Hashable) -> None:
            nonlocal calls
            calls += 1
            if calls <= failures:
                raise RuntimeError(f"forbidden #{calls}")

        q = WorkQueue(handle, workers=1)  # the production default: retry_delay 1 s
        delays: list[float] = []
        q.call_later = lambda delay, key: delays.append(delay)  # type: ignore[method-assign]
        for _ in range(failures):
            await q._run("ns/m")  # one failed attempt each; the retry's wake-up is recorded
        await q._run("ns/m")  # the 26th succeeds ...
        calls = 0
        await q._run("ns/m")  # ... so the next failure starts the schedule over
        return delays, list(q.failures.values())

    with caplog.at_level(logging.WARNING, logger="modelreg.queue"):
        delays, left = asyncio.run(main())
    assert delays[:8] == [1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 60.0, 60.0]
    assert delays[8:failures] == [60.0] * (failures - 8)
    assert delays[failures:] == [1.0] and left == [1]
    attempts = [r.args[1] for r in caplog.records if r.name == "modelreg.queue"]  # type: ignore[index]
    assert attempts == [1, 2, 3, 10, 20, 1]
    assert "forbidden #10" in caplog.records[3].getMessage()
    assert "retrying in 60.0s" in caplog.records[3].getMessage()
