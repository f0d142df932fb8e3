"""Model cards rendered by the operator into ConfigMaps (docs/observability.md)."""

from __future__ import annotations

import pytest
from kubernetes import client

from tests.integration.kit import Cluster, wait_for

pytestmark = pytest.mark.usefixtures("operator")

DESCRIPTION = "Détecteur de fraude — 检测欺诈交易 🕵️ «quoted» | pipe"


def card(k: Cluster, name: str) -> client.V1ConfigMap:
    return client.CoreV1Api(k.custom.api_client).read_namespaced_config_map(f"{name}-model-card", k.ns)


def test_card_rendered_owned_utf8_and_not_per_healthy_snapshot(k: Cluster) -> None:
    created = k.model("card-1", model_name="card", description=DESCRIPTION, license="Apache-2.0")
    k.wait_stage("card-1", "Production")
    cm = wait_for(lambda: card(k, "card-1"), what="model card ConfigMap")
    text = cm.data["model-card.md"]
    assert text.startswith("---\n")
    assert DESCRIPTION in text  # verbatim, UTF-8 through the API server
    assert "## Stage history" in text and "Production" in text
    owner = cm.metadata.owner_references[0]
    assert (owner.kind, owner.name, owner.uid) == ("RegisteredModel", "card-1", created["metadata"]["uid"])
    status = wait_for(lambda: k.rm("card-1")["status"].get("modelCard"))
    assert status["configMap"] == "card-1-model-card"

    # The first healthy snapshot changes health (Unknown → Healthy): one re-render.
    k.snapshot("card-s1", "card-1", window={"end": "2026-11-20T10:01:00Z"})
    wait_for(lambda: k.rm("card-1")["status"].get("health") == "Healthy")
    cm = wait_for(lambda: (c := card(k, "card-1")) and "Healthy" in c.data["model-card.md"] and c)
    rv = cm.metadata.resource_version
    # Further healthy snapshots: inputs unchanged, the card is not rewritten.
    for i in range(2, 5):
        k.snapshot(f"card-s{i}", "card-1", window={"end": f"2026-11-20T10:0{i}:00Z"})
    # The card of a pass is applied before that pass writes the version's status: once the
    # status shows card-s4, every pass that folded card-s2..s4 in has had its chance to render.
    wait_for(lambda: k.rm("card-1")["status"].get("lastSnapshot", {}).get("name") == "card-s4")
    assert card(k, "card-1").metadata.resource_version == rv

    # A spec change re-renders.
    k.patch("registeredmodels", "card-1", {"spec": {"intendedUse": "Nouvel usage ✓"}})
    wait_for(lambda: "Nouvel usage ✓" in card(k, "card-1").data["model-card.md"], what="re-render on spec change")
