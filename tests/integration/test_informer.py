"""The operator's own informers against the real API server.

What they must tell the engine: every listed object (across pages), every
watch event, and, after a watch that expired (410 Gone), the objects deleted
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
from tests.integration.kit import model_body, snapshot_body

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
        meta = body["metadata"]
        if event_type == "DELETED":
            self.store.delete_model(meta["namespace"], meta["name"])
        else:
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
    for name in ("m-v1", "m-v2"):
        body = model_body(name, "m", name[-2:].replace("v", "1.0."))
        custom.create_namespaced_custom_object(GROUP, VERSION, namespace, "registeredmodels", body)

    async def scenario() -> None:
        info = kopf.login_with_kubeconfig(settings=kopf.OperatorSettings())
        assert info is not None
        async with KubeClient(info) as kc:
            engine = RecordingEngine(kc)
            informers = inf.Informers(engine, [namespace])  # type: ignore[arg-type]
            await informers.prelist()
            assert engine.queue.resumed, "the work queue must run once everything is listed"
            assert _names(engine, namespace) == {f"s{i}" for i in range(5)}, "every page listed"
            assert set(engine.store.models) == {(namespace, "m-v1"), (namespace, "m-v2")}
            assert all(kind is None for kind, _ in engine.events), "listed objects come as type None"

            informers.start()
            await asyncio.to_thread(create, "s5")
            await asyncio.to_thread(delete, "s0")
            await _until(lambda: ("DELETED", "s0") in engine.events and ("ADDED", "s5") in engine.events)
            assert _names(engine, namespace) == {"s1", "s2", "s3", "s4", "s5"}
            await informers.stop()

            # A gap: deletions and a creation while not watching, then a resourceVersion
            # the API server no longer serves, so the watch ends in 410 Gone.
            await asyncio.to_thread(delete, "s1")
            await asyncio.to_thread(delete, "s2")
            await asyncio.to_thread(create, "s6")
            await asyncio.to_thread(
                custom.delete_namespaced_custom_object, GROUP, VERSION, namespace, "registeredmodels", "m-v2"
            )
            informers.snapshots._rv[namespace] = "1"
            informers.models._rv[namespace] = "1"
            engine.events.clear()
            informers.start()
            await _until(
                lambda: (
                    informers.snapshots.relists >= 1
                    and informers.models.relists >= 1
                    and "s6" in _names(engine, namespace)
                    and (namespace, "m-v2") not in engine.store.models
                )
            )
            await informers.stop()
            assert _names(engine, namespace) == {"s3", "s4", "s5", "s6"}
            assert ("DELETED", "s1") in engine.events and ("DELETED", "s2") in engine.events, engine.events
            assert set(engine.store.models) == {(namespace, "m-v1")}, "a model deleted in the gap is forgotten"

    asyncio.run(scenario())


async def _until(check: Any, timeout: float = 20.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not check():
        assert loop.time() < deadline, "the informer did not get there in time"
        await asyncio.sleep(0.05)
