"""An outcome that depends on I/O stops the pass; the queue runs the model again (issue 14).

An engine in this process, against the real API server, in a namespace the
session's operator leaves alone: its store still holds an Incident that was
deleted on the server. Counting the next breaching snapshot into it finds it
gone; the pass stops before any status write and schedules the model, and the
rerun opens the episode's new Incident, triggered by that snapshot.
"""

from __future__ import annotations

import asyncio
from typing import Any

import kopf
import pytest
from kubernetes import client

from modelreg import GROUP, VERSION
from modelreg.controller.engine import Engine, Settings
from modelreg.core.policy import Defaults
from modelreg.kube.client import KubeClient
from tests.integration.kit import Cluster, model_body, snapshot_body

BAD = {"errorRate": 0.3, "oodRate": 0.01}


def _listed(custom: client.CustomObjectsApi, ns: str, plural: str) -> list[dict[str, Any]]:
    kinds = {"registeredmodels": "RegisteredModel", "performancesnapshots": "PerformanceSnapshot"}
    items = custom.list_namespaced_custom_object(GROUP, VERSION, ns, plural)["items"]
    for item in items:
        item.setdefault("apiVersion", f"{GROUP}/{VERSION}")
        item.setdefault("kind", kinds.get(plural, "Incident"))
    return items


def test_an_incident_found_gone_stops_the_pass_and_the_rerun_opens_a_new_one(
    kube: Any, custom: client.CustomObjectsApi, iso_namespace: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    ns = iso_namespace
    k = Cluster(custom, ns)
    monkeypatch.setenv("KUBECONFIG", str(kube.kubeconfig))
    custom.create_namespaced_custom_object(GROUP, VERSION, ns, "registeredmodels", model_body("gn-1", "gn", "1.0.0"))

    async def scenario() -> None:
        info = kopf.login_with_kubeconfig(settings=kopf.OperatorSettings())
        assert info is not None
        async with KubeClient(info) as kc:
            engine = Engine(kc, Settings(defaults=Defaults(), identity="rerun-engine", builtin_healer=False))

            def seen(plural: str) -> None:
                for item in _listed(custom, ns, plural):
                    {
                        "registeredmodels": engine.store.upsert_model,
                        "performancesnapshots": engine.store.upsert_snapshot,
                    }.get(plural, engine.store.upsert_incident)(item)

            seen("registeredmodels")
            await engine.reconcile_model(ns, "gn")
            assert k.stage("gn-1") == "Production"
            custom.create_namespaced_custom_object(
                GROUP, VERSION, ns, "performancesnapshots", snapshot_body("gn-bad-1", "gn-1", metrics=BAD)
            )
            seen("performancesnapshots")
            await engine.reconcile_model(ns, "gn")
            first = k.incidents("gn-1")
            assert len(first) == 1, first
            # Deleted on the server; the engine has not heard of it yet.
            custom.delete_namespaced_custom_object(GROUP, VERSION, ns, "incidents", first[0]["metadata"]["name"])
            custom.create_namespaced_custom_object(
                GROUP, VERSION, ns, "performancesnapshots", snapshot_body("gn-bad-2", "gn-1", metrics=BAD)
            )
            seen("performancesnapshots")
            await engine.reconcile_model(ns, "gn")
            assert k.incidents("gn-1") == [], "the pass stopped where the Incident was found gone"
            assert "verdict" not in (k.get("performancesnapshots", "gn-bad-2").get("status") or {})
            assert ("model", ns, "gn") in engine.queue._queued, "the model is run again"
            await engine.reconcile_model(ns, "gn")  # the rerun the queue would make

    asyncio.run(scenario())
    incidents = k.incidents("gn-1")
    assert len(incidents) == 1, incidents
    assert incidents[0]["spec"]["trigger"]["snapshot"] == "gn-bad-2"
    assert (k.get("performancesnapshots", "gn-bad-2").get("status") or {}).get("verdict") == "Critical"
    assert k.rm("gn-1")["status"]["incident"]["name"] == incidents[0]["metadata"]["name"]
