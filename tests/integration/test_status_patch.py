"""A user writing its own condition cannot starve the operator's status writes.

CI of 2026-11-30 (the fault suite's two healers and a user writing every 20 ms):
every resourceVersion-checked status write of the operator conflicted with the
user's latest write, five times in a row, every pass, for 30 s; the promotion
never landed. Here the user writes just before each of the operator's
resourceVersion-checked writes, so every one of them conflicts: the write must
still land (by the guarded JSON patch of ``core/statuspatch.py``), keep the
user's condition, and refuse to overwrite a field someone else changed.

An engine in this process, against the real API server, in a namespace the
session's operator leaves alone.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from typing import Any

import kopf
import pytest
from kubernetes import client

from modelreg import GROUP, VERSION
from modelreg.api.models import RegisteredModelStatus
from modelreg.controller.engine import Engine, Settings
from modelreg.core.passplan import WriteIncident
from modelreg.core.policy import Defaults
from modelreg.core.statuspatch import guarded_status_ops
from modelreg.kube.client import ApiError, KubeClient
from tests.integration.kit import Cluster, apply_user_condition, model_body


def _user_applies(custom: client.CustomObjectsApi, ns: str, plural: str, name: str, ctype: str) -> Callable[[], int]:
    """A user's tool server-side-applying its own condition; each call writes ``n=<count>``."""
    n = 0

    def write() -> int:
        nonlocal n
        n += 1
        apply_user_condition(custom, ns, plural, name, ctype, f"n={n}")
        return n

    return write


def _user_condition(body: dict[str, Any], ctype: str) -> str | None:
    for c in (body.get("status") or {}).get("conditions") or []:
        if c.get("type") == ctype:
            return str(c.get("message"))
    return None


@contextlib.asynccontextmanager
async def _engine() -> AsyncIterator[Engine]:
    """An engine in this process (no healer), on the kubeconfig in KUBECONFIG."""
    info = kopf.login_with_kubeconfig(settings=kopf.OperatorSettings())
    assert info is not None
    async with KubeClient(info) as kc:
        yield Engine(kc, Settings(defaults=Defaults(), identity="status-patch", builtin_healer=False))


def test_a_user_writing_before_every_write_does_not_starve_the_version_status(
    kube: Any, custom: client.CustomObjectsApi, iso_namespace: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    ns = iso_namespace
    k = Cluster(custom, ns)
    monkeypatch.setenv("KUBECONFIG", str(kube.kubeconfig))
    custom.create_namespaced_custom_object(GROUP, VERSION, ns, "registeredmodels", model_body("st-1", "st", "1.0.0"))
    user = _user_applies(custom, ns, "registeredmodels", "st-1", "ExternalCheck")
    user()
    read = k.rm("st-1")  # the operator's read: status holds only the user's condition

    async def scenario() -> None:
        async with _engine() as engine:
            kc = engine.client
            checked: list[str] = []
            merge_patch = kc.merge_patch

            async def contended(path: str, body: dict[str, Any]) -> dict[str, Any]:
                # The user gets in first, before every resourceVersion-checked write.
                checked.append(path)
                user()
                return await merge_patch(path, body)

            monkeypatch.setattr(kc, "merge_patch", contended)
            new = RegisteredModelStatus.model_validate(
                {"stage": "Development", "observedGeneration": 1, "consecutiveBreaches": 0}
            )
            assert await engine.applier.write_version_status(ns, "st-1", [read], new)
            assert len(checked) == 1, "one resourceVersion-checked try, then the guarded patch"

    asyncio.run(scenario())
    after = k.rm("st-1")
    assert after["status"]["stage"] == "Development"
    assert _user_condition(after, "ExternalCheck") == "n=2", "the user's latest condition is kept"


def test_the_guarded_patch_refuses_a_field_changed_since_the_read(
    kube: Any, custom: client.CustomObjectsApi, iso_namespace: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    ns = iso_namespace
    k = Cluster(custom, ns)
    monkeypatch.setenv("KUBECONFIG", str(kube.kubeconfig))
    custom.create_namespaced_custom_object(GROUP, VERSION, ns, "registeredmodels", model_body("sr-1", "sr", "1.0.0"))
    custom.patch_namespaced_custom_object_status(
        GROUP, VERSION, ns, "registeredmodels", "sr-1", {"status": {"stage": "Development"}}
    )
    _user_applies(custom, ns, "registeredmodels", "sr-1", "ExternalCheck")()
    read = k.rm("sr-1")
    # Another writer moves the stage after the read.
    custom.patch_namespaced_custom_object_status(
        GROUP, VERSION, ns, "registeredmodels", "sr-1", {"status": {"stage": "Sandbox"}}
    )
    ops = guarded_status_ops(read, {"stage": "Production"}, lambda c: c.get("type") == "Ready", add_absent=True)
    assert ops is not None and {"op": "test", "path": "/status/stage", "value": "Development"} in ops

    async def scenario() -> ApiError:
        async with _engine() as engine:
            with pytest.raises(ApiError) as caught:
                await engine.client.json_patch(
                    f"/apis/{GROUP}/{VERSION}/namespaces/{ns}/registeredmodels/sr-1/status", ops
                )
            return caught.value

    err = asyncio.run(scenario())
    assert err.status == 422, err
    after = k.rm("sr-1")
    assert after["status"]["stage"] == "Sandbox", "the other writer's stage stands"
    assert _user_condition(after, "ExternalCheck") == "n=1"


def _incident(name: str) -> dict[str, Any]:
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "Incident",
        "metadata": {"name": name},
        "spec": {
            "severity": "high",
            "summary": "ic 1.0.0: errorRate 0.3 > 0.05",
            "modelRef": {"name": "ic-1", "modelName": "ic", "version": "1.0.0"},
            "stage": "Production",
            "trigger": {"snapshot": "s0", "breaches": [{"criterion": "errorRate", "value": 0.3, "threshold": 0.05}]},
            "playbook": "model_rollback",
            "dedupKey": f"x/ic/1.0.0/{name}",
        },
    }


def test_a_user_acknowledging_before_every_write_does_not_starve_the_count(
    kube: Any, custom: client.CustomObjectsApi, iso_namespace: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A count after the first: tested on the stored count, so it lands and never counts twice."""
    ns = iso_namespace
    k = Cluster(custom, ns)
    monkeypatch.setenv("KUBECONFIG", str(kube.kubeconfig))
    custom.create_namespaced_custom_object(GROUP, VERSION, ns, "incidents", _incident("ic-inc"))
    user = _user_applies(custom, ns, "incidents", "ic-inc", "Acknowledged")
    user()
    now = datetime.now(UTC)

    async def scenario() -> None:
        async with _engine() as engine:
            kc = engine.client
            body = k.get("incidents", "ic-inc")
            body.update(apiVersion=f"{GROUP}/{VERSION}", kind="Incident")
            engine.store.upsert_incident(body)
            assert await engine.applier.write_incident(ns, WriteIncident("ic-1", "uid", "ic-inc", None, ("s1",)), now)
            merge_patch = kc.merge_patch
            tries: list[str] = []

            async def contended(path: str, patch: dict[str, Any]) -> dict[str, Any]:
                tries.append(path)
                user()
                return await merge_patch(path, patch)

            monkeypatch.setattr(kc, "merge_patch", contended)
            # The store's copy is older than the user's next write: every checked write conflicts.
            for snap in ("s2", "s3", "s2"):
                count = WriteIncident("ic-1", "uid", "ic-inc", None, (snap,))
                assert await engine.applier.write_incident(ns, count, now)
            assert len(tries) == 2, "one resourceVersion-checked try per new count, then the guarded patch"

    asyncio.run(scenario())
    status = k.get("incidents", "ic-inc")["status"]
    assert status["occurrences"] == 4 and status["snapshots"] == ["s0", "s1", "s2", "s3"]
    assert _user_condition(k.get("incidents", "ic-inc"), "Acknowledged") == "n=3"
