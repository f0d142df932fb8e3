"""What the benchmark's watches saw, timestamped on arrival (monotonic), and the snapshots it sent."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from benchmarks.kube import JSON, Kube, path
from benchmarks.objects import snapshot_body

Handler = Callable[[str, JSON, float], None]


@dataclass
class Observed:
    """The watches' view of the run's namespaces (``bench-<rid>-*``)."""

    rid: str
    seq: int = 0
    sent: dict[str, float] = field(default_factory=dict)  # snapshot -> time its create was sent
    evaluated: dict[str, float] = field(default_factory=dict)  # snapshot -> time seen evaluated
    live_snaps: set[tuple[str, str]] = field(default_factory=set)
    incident_of: dict[str, tuple[str, float]] = field(default_factory=dict)  # trigger snapshot -> (incident, seen)
    remediated: dict[str, float] = field(default_factory=dict)  # incident -> time seen Remediated
    stage: dict[tuple[str, str], str] = field(default_factory=dict)
    env: dict[tuple[str, str], tuple[str, float]] = field(default_factory=dict)  # deployment -> (MODEL_URI, since)

    def next_name(self, rm: str) -> str:
        self.seq += 1
        return f"{rm}-{self.seq}"

    async def create_snapshot(self, kube: Kube, ns: str, rm: str, metrics: JSON) -> str:
        name = self.next_name(rm)
        body = snapshot_body(name, rm, metrics)
        self.sent[name] = time.monotonic()
        await kube.create(path("performancesnapshots", ns), body)
        return name

    def evaluated_of(self, names: list[str]) -> tuple[bool, str]:
        n = sum(s in self.evaluated for s in names)
        return n == len(names), f"{n}/{len(names)}"

    def in_production(self, keys: list[tuple[str, str]]) -> tuple[bool, str]:
        n = sum(self.stage.get(k) == "Production" for k in keys)
        return n == len(keys), f"{n}/{len(keys)} in Production"

    def served(self, ns: str, want: dict[str, str]) -> tuple[bool, str]:
        """Whether each deployment's MODEL_URI is the URI wanted for it."""
        n = sum(self.env.get((ns, d), ("", 0))[0] == uri for d, uri in want.items())
        return n == len(want), f"{n}/{len(want)} deployments"

    # --- watch handlers ---------------------------------------------------------------

    def on_snapshot(self, typ: str, obj: JSON, t: float) -> None:
        meta = obj["metadata"]
        key = (meta["namespace"], meta["name"])
        if typ == "DELETED":
            self.live_snaps.discard(key)
            return
        self.live_snaps.add(key)
        if (obj.get("status") or {}).get("evaluatedAt") and key[1] not in self.evaluated and key[1] in self.sent:
            self.evaluated[key[1]] = t

    def on_incident(self, typ: str, obj: JSON, t: float) -> None:
        if typ == "DELETED":
            return
        name = obj["metadata"]["name"]
        trig = ((obj.get("spec") or {}).get("trigger") or {}).get("snapshot")
        if trig and trig not in self.incident_of:
            self.incident_of[trig] = (name, t)
        if (obj.get("status") or {}).get("phase") == "Remediated" and name not in self.remediated:
            self.remediated[name] = t

    def on_model(self, typ: str, obj: JSON, t: float) -> None:
        meta = obj["metadata"]
        key = (meta["namespace"], meta["name"])
        if typ == "DELETED":
            self.stage.pop(key, None)
            return
        self.stage[key] = (obj.get("status") or {}).get("stage") or ""

    def on_deployment(self, typ: str, obj: JSON, t: float) -> None:
        if typ == "DELETED":
            return
        meta = obj["metadata"]
        key = (meta["namespace"], meta["name"])
        containers = obj.get("spec", {}).get("template", {}).get("spec", {}).get("containers") or []
        value = next(
            (
                e.get("value")
                for c in containers
                if c.get("name") == "server"
                for e in c.get("env") or []
                if e.get("name") == "MODEL_URI"
            ),
            None,
        )
        if value is not None and (key not in self.env or self.env[key][0] != value):
            self.env[key] = (str(value), t)

    async def start_watches(
        self, kube: Kube, deployments_ns: str, log: Callable[[str, str], None]
    ) -> list[asyncio.Task[Any]]:
        """Open the four watches (each from now on); returns their tasks once all are open."""
        specs: list[tuple[str, Handler]] = [
            (path("performancesnapshots"), self.on_snapshot),
            (path("incidents"), self.on_incident),
            (path("registeredmodels"), self.on_model),
            (path("deployments", deployments_ns, group="apps", version="v1"), self.on_deployment),
        ]
        tasks = []
        for p, handler in specs:
            ready = asyncio.Event()
            tasks.append(asyncio.create_task(kube.watch(p, self._guard(handler, log), ready=ready)))
            await asyncio.wait_for(ready.wait(), 30)
        return tasks

    def _guard(self, handler: Handler, log: Callable[[str, str], None]) -> Handler:
        def call(typ: str, obj: JSON, t: float) -> None:
            ns = (obj.get("metadata") or {}).get("namespace", "")
            if not ns.startswith(f"bench-{self.rid}-"):
                return
            try:
                handler(typ, obj, t)
            except Exception as err:  # a bug here must not kill the watch
                log("watch", f"handler error: {err!r}")

        return call
