"""The operator under test: ``python -m modelreg.cli.main run`` as a separate process, and /proc readings."""

from __future__ import annotations

import asyncio
import os
import re
import subprocess
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from tests.integration.kit import OperatorProcess

CLK_TCK = os.sysconf("SC_CLK_TCK")


def proc_mem_kib(pid: int) -> tuple[int, int]:
    """(VmRSS, VmHWM) in KiB."""
    rss = hwm = 0
    with open(f"/proc/{pid}/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                rss = int(line.split()[1])
            elif line.startswith("VmHWM:"):
                hwm = int(line.split()[1])
    return rss, hwm


def proc_cpu_seconds(pid: int) -> float:
    try:
        with open(f"/proc/{pid}/stat") as fh:
            fields = fh.read().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / CLK_TCK  # utime + stime


def proc_sched(pid: int) -> tuple[float, float]:
    """(seconds on CPU, seconds runnable but waiting for a CPU), summed over the process's threads."""
    on = wait = 0.0
    try:
        tasks = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return 0.0, 0.0
    for tid in tasks:
        try:
            with open(f"/proc/{pid}/task/{tid}/schedstat") as fh:
                a, b, _ = fh.read().split()
        except (OSError, ValueError):
            continue
        on += int(a) / 1e9
        wait += int(b) / 1e9
    return on, wait


METRICS_QUERY = (
    "/metrics?name[]=modelreg_queue_depth&name[]=modelreg_reconcile_seconds_count&name[]=modelreg_reconcile_seconds"
)
_METRIC = re.compile(r"^(?P<name>[a-zA-Z_:][\w:]*)(?:\{[^}]*\})? (?P<value>\S+)$")


@dataclass
class OperatorProc:
    """The shared :class:`OperatorProcess` launcher, plus what the benchmark reads from it:
    start and live times, its work queue (metrics), memory and CPU (/proc)."""

    kubeconfig: Path
    log_path: Path
    workers: int
    identity: str = "bench-operator"
    extra: tuple[str, ...] = ()
    module: str = "modelreg.cli.main"
    process: OperatorProcess = field(init=False)
    started_at: float = 0.0
    starts: list[float] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.process = OperatorProcess(
            kubeconfig=self.kubeconfig,
            log_path=self.log_path,
            identity=self.identity,
            extra_args=("--workers", str(self.workers), *self.extra),
            module=self.module,
        )

    @property
    def proc(self) -> subprocess.Popen[bytes] | None:
        return self.process.proc

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    @property
    def metrics_port(self) -> int:
        return self.process.metrics_port

    @property
    def liveness_port(self) -> int:
        return self.process.liveness_port

    def start(self) -> float:
        self.started_at = time.monotonic()
        self.process.spawn()
        self.starts.append(self.started_at)
        return self.started_at

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def _get(self, port: int, p: str, timeout: float = 2.0) -> tuple[int, str]:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}{p}", timeout=timeout) as resp:
                return resp.status, resp.read().decode()
        except OSError:
            return 0, ""

    async def live(self) -> bool:
        status, _ = await asyncio.to_thread(self._get, self.liveness_port, "/healthz")
        return status == 200

    async def wait_live(self, timeout: float = 60.0) -> float:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self.alive():
                raise RuntimeError(f"operator exited:\n{self.log_tail()}")
            if await self.live():
                return time.monotonic()
            await asyncio.sleep(0.05)
        raise TimeoutError(f"operator not live after {timeout}s:\n{self.log_tail()}")

    async def metrics(self) -> dict[str, float]:
        # Only the two series we read: a full scrape renders every per-version series (9 per
        # version), which at 10,000 versions costs the operator seconds of CPU and memory.
        status, text = await asyncio.to_thread(self._get, self.metrics_port, METRICS_QUERY, 60.0)
        out: dict[str, float] = {}
        if status != 200:
            return out
        for line in text.splitlines():
            m = _METRIC.match(line)
            if m and m.group("name") in ("modelreg_queue_depth", "modelreg_reconcile_seconds_count"):
                out[m.group("name")] = float(m.group("value"))
        return out

    async def wait_settled(
        self,
        *,
        min_reconciles: float = 0,
        quiet: float = 0.3,
        timeout: float = 600.0,
        progress: Callable[[str], None] | None = None,
    ) -> float:
        """Until the work queue is empty: depth 0, or (depth <= 1 and no reconcile for ``quiet`` s).

        ``modelreg_queue_depth`` is set inside a run, before its key leaves the running set, so
        after the last run it reads 1 instead of 0; an unchanged reconcile count over ``quiet``
        seconds tells that apart from real work.
        """
        deadline = time.monotonic() + timeout
        last_count = -1.0
        last_change = time.monotonic()
        next_report = time.monotonic() + 5
        while time.monotonic() < deadline:
            m = await self.metrics()
            count = m.get("modelreg_reconcile_seconds_count", 0.0)
            depth = m.get("modelreg_queue_depth", 0.0)
            now = time.monotonic()
            if count != last_count:
                last_count, last_change = count, now
            if m and count >= min_reconciles:
                if depth == 0 or (depth <= 1 and now - last_change >= quiet):
                    return last_change if depth <= 1 and now - last_change >= quiet else now
            if progress is not None and now >= next_report:
                progress(f"waiting for the operator's queue: depth {depth:.0f}, reconciles {count:.0f}")
                next_report = now + 5
            await asyncio.sleep(0.2)  # a scrape renders every series: keep the operator's cost low
        raise TimeoutError("operator queue not drained")

    def mem_mib(self) -> tuple[float, float]:
        rss, hwm = proc_mem_kib(self.pid)
        return rss / 1024, hwm / 1024

    def cpu_seconds(self) -> float:
        return proc_cpu_seconds(self.pid)

    def stop(self) -> None:
        self.process.stop()

    def log_tail(self, lines: int = 40) -> str:
        return self.process.log_tail(lines)
