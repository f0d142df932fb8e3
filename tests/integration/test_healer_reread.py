"""The healer re-reads the model before it acts (README "Two healers act once"; issue 19).

An engine (in this process, against the real API server, in a namespace the
session's operator leaves alone) whose store has not yet heard of a sibling that
another writer archived a moment ago: without a re-read, its healer would find no
version to restore and fail the Incident (NoRestoreTarget). With the re-read it
notices the model moved, starts over on what is stored now, and restores that
sibling.
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
KINDS = {"registeredmodels": "RegisteredModel", "performancesnapshots": "PerformanceSnapshot", "incidents": "Incident"}


def _listed(custom: client.CustomObjectsApi, ns: str, plural: str) -> list[dict[str, Any]]:
    items = custom.list_namespaced_custom_object(GROUP, VERSION, ns, plural)["items"]
    for item in items:
        item.setdefault("apiVersion", f"{GROUP}/{VERSION}")
        item.setdefault("kind", KINDS[plural])
    return items


def _engine(kc: KubeClient, identity: str) -> Engine:
    return Engine(kc, Settings(defaults=Defaults(), identity=identity))


def test_healer_rereads_the_model_before_acting(
    kube: Any, custom: client.CustomObjectsApi, iso_namespace: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    ns = iso_namespace
    k = Cluster(custom, ns)
    monkeypatch.setenv("KUBECONFIG", str(kube.kubeconfig))
    auto = {"mode": "Automatic"}
    custom.create_namespaced_custom_object(
        GROUP, VERSION, ns, "registeredmodels", model_body("rr-1", "rr", "1.0.0", rollbackPolicy=auto)
    )

    async def scenario() -> None:
        info = kopf.login_with_kubeconfig(settings=kopf.OperatorSettings())
        assert info is not None
        async with KubeClient(info) as kc:
            # "Another writer": an engine that sees everything promotes rr-1, then rr-2 over it.
            other = _engine(kc, "other-writer")
            for item in _listed(custom, ns, "registeredmodels"):
                other.store.upsert_model(item)
            await other.reconcile_model(ns, "rr")
            assert k.stage("rr-1") == "Production"
            custom.create_namespaced_custom_object(
                GROUP, VERSION, ns, "registeredmodels", model_body("rr-2", "rr", "2.0.0", rollbackPolicy=auto)
            )
            for item in _listed(custom, ns, "registeredmodels"):
                other.store.upsert_model(item)
            await other.reconcile_model(ns, "rr")
            assert (k.stage("rr-1"), k.stage("rr-2")) == ("Archived", "Production")

            # The healer under test has heard of rr-2 and of a breaching snapshot, not yet of rr-1.
            custom.create_namespaced_custom_object(
                GROUP, VERSION, ns, "performancesnapshots", snapshot_body("rr-2-bad", "rr-2", metrics=BAD)
            )
            healer = _engine(kc, "reread-healer")
            for item in _listed(custom, ns, "registeredmodels"):
                if item["metadata"]["name"] == "rr-2":
                    healer.store.upsert_model(item)
            for item in _listed(custom, ns, "performancesnapshots"):
                healer.store.upsert_snapshot(item)
            await healer.reconcile_model(ns, "rr")
            incs = k.incidents("rr-2")
            assert len(incs) == 1, incs
            st = incs[0].get("status") or {}
            # It claimed, re-read, saw rr-1 and stopped before acting on its stale view.
            assert (st.get("phase"), st.get("claimedBy"), st.get("reason")) == (
                "Remediating",
                "reread-healer",
                None,
            ), st
            assert (k.stage("rr-1"), k.stage("rr-2")) == ("Archived", "Production")
            assert (ns, "rr-1") in healer.store.models, "the re-read did not bring rr-1 into the store"
            # Its next pass (the one it scheduled) acts on what is stored now.
            for item in _listed(custom, ns, "incidents"):
                healer.store.upsert_incident(item)
            await healer.reconcile_model(ns, "rr")

    asyncio.run(scenario())
    assert (k.stage("rr-1"), k.stage("rr-2")) == ("Production", "RolledBack")
    inc = k.incidents("rr-2")[0]
    st = inc["status"]
    assert st["phase"] == "Remediated", st
    assert [a["action"] for a in st["actions"]].count("RolledBack") == 1, st["actions"]
    assert k.rm("rr-2")["status"]["rolledBackTo"] == "1.0.0"
