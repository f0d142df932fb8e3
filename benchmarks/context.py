"""What every phase is given: sizes, options, the cluster, the client, the operator and the run's state."""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from pathlib import Path

from benchmarks import cluster as clu
from benchmarks.drive import Drive
from benchmarks.kube import JSON, Kube
from benchmarks.observe import Observed
from benchmarks.opproc import OperatorProc, proc_cpu_seconds, proc_sched
from benchmarks.report import Report
from benchmarks.sizes import Sizes


@dataclass(frozen=True)
class Options:
    workers: int  # the operator's --workers
    concurrency: int  # client requests in flight
    operator_module: str
    profile: bool
    skip: frozenset[str]


@dataclass(frozen=True)
class Namespaces:
    rid: str
    count: int

    @property
    def main(self) -> list[str]:
        return [f"bench-{self.rid}-{k}" for k in range(self.count)]

    @property
    def rem(self) -> str:
        return f"bench-{self.rid}-rem"

    @property
    def floor(self) -> str:
        return f"bench-{self.rid}-floor"

    @property
    def big(self) -> list[str]:
        return [f"bench-{self.rid}-big-{k}" for k in range(self.count)]

    def created_up_front(self, big: bool) -> list[str]:
        return [*self.main, self.rem, self.floor, *(self.big if big else [])]

    def every(self) -> list[str]:
        return [*self.main, self.rem, self.floor, *self.big]


@dataclass
class Fleet:
    """The objects the setup phase created, which the later phases load."""

    versions: list[tuple[str, str, str]] = field(default_factory=list)  # (ns, rm name, modelName)
    pairs: list[tuple[str, str, str, str]] = field(default_factory=list)  # (modelName, v1, v2, deployment)

    @property
    def total(self) -> int:
        return len(self.versions) + 2 * len(self.pairs)


@dataclass
class Floors:
    """What a bare client achieved against the same API server, earlier in the same run."""

    incident_p99: float | None = None  # seconds, snapshot created -> Incident seen
    writes_per_s: float | None = None  # snapshots/s with create + 2 status patches + retention delete


@dataclass
class Window:
    t0: float  # epoch
    t1: float = 0.0
    snapshots: int = 0
    own_writes0: int = 0
    own_writes1: int = 0
    server_writes0: float = 0.0
    server_writes1: float = 0.0
    cpu0: dict[str, float] = field(default_factory=dict)
    cpu: dict[str, float] = field(default_factory=dict)  # CPU seconds used during the window
    load: float = 0.0  # 1-minute load average at the end
    extra: JSON = field(default_factory=dict)


@dataclass
class Context:
    sizes: Sizes
    options: Options
    ns: Namespaces
    cluster: clu.BenchCluster
    kube: Kube
    report: Report
    seen: Observed
    drive: Drive
    work_dir: Path
    t_start_epoch: float = field(default_factory=time.time)
    fleet: Fleet = field(default_factory=Fleet)
    floors: Floors = field(default_factory=Floors)
    windows: dict[str, Window] = field(default_factory=dict)
    _op: OperatorProc | None = None

    @property
    def op(self) -> OperatorProc:
        assert self._op is not None, "the operator is not started"
        return self._op

    def namespaces_up_front(self) -> list[str]:
        return self.ns.created_up_front(big=self.sizes.big_versions > 0 and "big" not in self.options.skip)

    def log(self, phase: str, msg: str) -> None:
        self.drive.log(phase, msg)

    async def create_snapshot(self, ns: str, rm: str, metrics: JSON) -> str:
        return await self.seen.create_snapshot(self.kube, ns, rm, metrics)

    async def start_operator(self) -> None:
        extra: tuple[str, ...] = ()
        if not self.cluster.private:
            # On the shared cluster, never touch other people's namespaces.
            for ns in self.namespaces_up_front():
                extra += ("--namespace", ns)
        self._op = OperatorProc(
            self.cluster.operator_kubeconfig,
            self.work_dir / "operator.log",
            self.options.workers,
            extra=extra,
            module=self.options.operator_module,
        )
        t0 = self._op.start()
        t1 = await self._op.wait_live()
        self.log("operator", f"pid {self._op.pid} live in {t1 - t0:.2f}s (log {self._op.log_path})")

    def operator_running(self) -> bool:
        return self._op is not None and self._op.alive()

    def operator_died(self) -> bool:
        return self._op is not None and not self._op.alive()

    def stop_operator(self) -> None:
        if self._op is not None:
            self._op.stop()

    # --- measurement windows (the API cost phases read the audit log between their ends) -

    async def server_writes(self) -> float:
        """Every client's writes so far (shared cluster: no audit log of our own)."""
        return clu.apiserver_writes(await self.kube.request("GET", "/metrics", text=True))

    async def open_window(self, name: str) -> Window:
        w = Window(t0=time.time(), own_writes0=self.kube.own_writes, cpu0=self.cpu())
        if not self.cluster.private:
            w.server_writes0 = await self.server_writes()
        self.windows[name] = w
        return w

    async def close_window(self, name: str, snapshots: int = 0, **extra: object) -> Window:
        w = self.windows[name]
        w.t1 = time.time()
        w.snapshots = snapshots
        w.extra.update(extra)
        w.own_writes1 = self.kube.own_writes
        after = self.cpu()
        w.cpu = {k: round(after.get(k, 0.0) - v, 2) for k, v in w.cpu0.items()}
        w.load = os.getloadavg()[0]
        if not self.cluster.private:
            w.server_writes1 = await self.server_writes()
        return w

    def cpu(self) -> dict[str, float]:
        """CPU seconds so far: the operator (and its wait for a CPU), this process, each component."""
        running = self.operator_running()
        out = {
            "operator": self.op.cpu_seconds() if running else 0.0,
            "operator_cpu_wait": proc_sched(self.op.pid)[1] if running else 0.0,
            "bench": sum(os.times()[:2]),
        }
        for comp, pid in clu.component_pids(self.cluster).items():
            out[comp] = proc_cpu_seconds(pid)
        return out

    def cpu_delta(self, before: dict[str, float], seconds: float) -> dict[str, float]:
        """Cores used since ``before`` (over ``seconds``), per process."""
        after = self.cpu()
        return {k: round((after.get(k, 0) - v) / seconds, 2) for k, v in before.items() if seconds > 0}
