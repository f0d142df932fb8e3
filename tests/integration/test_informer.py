"""The operator's own snapshot informer against the real API server.

What it must tell the engine: every listed snapshot (across pages), every
watch event, and, after a watch that expired (410 Gone), the snapshots deleted
during the gap as deletions: a re-list alone would never report them.
"""

from __future__ import annotations

import asyncio
from collections.abc import Hashable
from typing import Any

import kopf
import pytest
from kubernetes import client

from modelreg import GROUP, VERSION
from modelreg.controller import informer as inf
from modelreg.controller.store import Store
from modelreg.kube.client import KubeClient
from tests.integration.kit import snapshot_body

PLURAL = "performancesnapshots"


class _Queue:
    def __init__(self) -> None:
        self.resumed = False

    def resume(self) -> None:
        self.resumed = True

    def schedule(self, key: Hashable, *, urgent: bool = False) -> None:
        pass


class RecordingEngine:
    """The informer's view of the engine: a store and the three entry points."""

    def __init__(self, kube_client: KubeClient) -> None:
        self.client = kube_client
        self.store = Store()
        self.queue = _Queue()
        self.events: list[tuple[str | None, str]] = []

    def on_model(self, event_type: str | None, body: dict[str, Any]) -> None:
        self.store.upsert_model(body)

    def on_incident(self, event_type: str | None, body: dict[str, Any]) -> None:
        self.store.upsert_incident(body)

    def on_snapshot(self, event_type: str | None, body: dict[str, Any]) -> None:
        meta = body["metadata"]
        self.events.append((event_type, meta["name"]))
        if event_type == "DELETED":
            self.store.delete_snapshot(meta["namespace"], meta["name"])
        else:
            self.store.upsert_snapshot(body)


def _names(engine: RecordingEngine, ns: str) -> set[str]:
    return {name for (n, name) in engine.store.snapshots if n == ns}


def test_list_watch_and_relist_after_410(
    kube: Any, custom: client.CustomObjectsApi, namespace: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KUBECONFIG", str(kube.kubeconfig))
    monkeypatch.setattr(inf, "PAGE", "2")  # three pages for five snapshots

    def create(name: str) -> None:
        custom.create_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, snapshot_body(name, "m-v1"))

    def delete(name: str) -> None:
        custom.delete_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, name)

    for i in range(5):
        create(f"s{i}")

    async def scenario() -> None:
        info = kopf.login_with_kubeconfig(settings=kopf.OperatorSettings())
        assert info is not None
        async with KubeClient(info) as kc:
            engine = RecordingEngine(kc)
            informer = inf.SnapshotInformer(engine, [namespace])  # type: ignore[arg-type]
            await informer.prelist()
            assert engine.queue.resumed, "the work queue must run once everything is listed"
            assert _names(engine, namespace) == {f"s{i}" for i in range(5)}, "every page listed"
            assert all(kind is None for kind, _ in engine.events), "listed objects come as type None"

            informer.start()
            await asyncio.to_thread(create, "s5")
            await asyncio.to_thread(delete, "s0")
            await _until(lambda: ("DELETED", "s0") in engine.events and ("ADDED", "s5") in engine.events)
            assert _names(engine, namespace) == {"s1", "s2", "s3", "s4", "s5"}
            await informer.stop()

            # A gap: deletions and a creation while not watching, then a resourceVersion
            # the API server no longer serves, so the watch ends in 410 Gone.
            await asyncio.to_thread(delete, "s1")
            await asyncio.to_thread(delete, "s2")
            await asyncio.to_thread(create, "s6")
            informer._rv[namespace] = "1"
            engine.events.clear()
            informer.start()
            await _until(lambda: informer.relists >= 1 and "s6" in _names(engine, namespace))
            await informer.stop()
            assert _names(engine, namespace) == {"s3", "s4", "s5", "s6"}
            assert ("DELETED", "s1") in engine.events and ("DELETED", "s2") in engine.events, engine.events

    asyncio.run(scenario())


async def _until(check: Any, timeout: float = 20.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not check():
        assert loop.time() < deadline, "the informer did not get there in time"
        await asyncio.sleep(0.05)
