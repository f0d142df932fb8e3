"""IncidentNotifier end to end: a real HTTP receiver, the local API server, the operator (docs/healing.md)."""

from __future__ import annotations

import os
import secrets
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client
from kubernetes.client.rest import ApiException

from tests.integration.kit import GROUP, VERSION, Cluster, OperatorProcess, condition, wait_for
from tests.integration.receiver import receiver

pytestmark = pytest.mark.usefixtures("operator")

BAD_METRICS = {"errorRate": 0.0668, "oodRate": 0.2167}


def incident_doc(name: str, playbook: str = "page_oncall", severity: str = "high") -> dict[str, Any]:
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "Incident",
        "metadata": {"name": name, "labels": {"modelreg.io/model-name": "fraud", "modelreg.io/version": "2.0.0"}},
        "spec": {
            "type": "ModelPerformanceDegradation",
            "severity": severity,
            "summary": "fraud 2.0.0: errorRate 0.0668 > 0.05",
            "modelRef": {"name": "fraud-2", "modelName": "fraud", "version": "2.0.0"},
            "stage": "Production",
            "trigger": {
                "snapshot": "fraud-2-bad",
                "breaches": [{"criterion": "errorRate", "value": 0.0668, "threshold": 0.05}],
            },
            "playbook": playbook,
            "dedupKey": f"x/fraud/2.0.0/{name}",
        },
    }


def create(k: Cluster, plural: str, doc: dict[str, Any]) -> dict[str, Any]:
    return k.custom.create_namespaced_custom_object(GROUP, VERSION, k.ns, plural, doc)


def notifier_doc(name: str, webhook: dict[str, Any], **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "IncidentNotifier",
        "metadata": {"name": name},
        "spec": {"webhook": webhook, **spec},
    }


def deliveries(k: Cluster, name: str) -> list[dict[str, Any]]:
    return (k.get("incidentnotifiers", name).get("status") or {}).get("deliveries") or []


def wait_delivery(k: Cluster, notifier: str, phase: str, incident: str, timeout: float = 30.0) -> dict[str, Any]:
    return wait_for(
        lambda: next(
            (d for d in deliveries(k, notifier) if d["phase"] == phase and d["incident"] == incident),
            None,
        ),
        timeout,
        what=f"{notifier}: delivery of {incident} {phase}",
    )


def test_each_phase_is_delivered_once_even_when_the_watch_skips_one(k: Cluster) -> None:
    with receiver() as hook:
        create(k, "incidentnotifiers", notifier_doc("oncall", {"url": hook.url}, severities=["medium", "high"]))
        inc = create(k, "incidents", incident_doc("fraud-2-aaaa"))
        create(k, "incidents", incident_doc("fraud-2-low", severity="low"))  # not selected
        uid = inc["metadata"]["uid"]
        opened = wait_delivery(k, "oncall", "Open", "fraud-2-aaaa")
        assert opened["result"] == "Succeeded" and opened["attempts"] == 1
        # A healer claims, acts and closes in one status write: the watch never shows Remediating.
        k.patch_status(
            "incidents",
            "fraud-2-aaaa",
            {
                "status": {
                    "phase": "Remediated",
                    "claimedBy": "someone",
                    "actions": [
                        {
                            "playbook": "page_oncall",
                            "action": "Paged",
                            "at": "2026-11-20T10:00:00Z",
                            "result": "Succeeded",
                        }
                    ],
                }
            },
        )
        wait_delivery(k, "oncall", "Remediated", "fraud-2-aaaa")
        status = k.get("incidentnotifiers", "oncall")["status"]
        assert [(d["phase"], d["result"]) for d in status["deliveries"]] == [
            ("Open", "Succeeded"),
            ("Remediating", "Succeeded"),
            ("Remediated", "Succeeded"),
        ]
        assert status["delivered"] == [
            {
                "uid": uid,
                "incident": "fraud-2-aaaa",
                "phases": ["Open", "Remediating", "Remediated"],
                "closed": True,
                "created": inc["metadata"]["creationTimestamp"],
            }
        ]
        assert condition(k.get("incidentnotifiers", "oncall"), "Ready")["status"] == "True"
        assert hook.keys() == [f"{uid}/Open", f"{uid}/Remediating", f"{uid}/Remediated"]
        body = hook.by_phase("Remediated")[0].body
        assert (body["name"], body["namespace"], body["model"], body["version"], body["severity"]) == (
            "fraud-2-aaaa",
            k.ns,
            "fraud",
            "2.0.0",
            "high",
        )
        assert body["breaches"][0]["criterion"] == "errorRate" and body["actions"][0]["action"] == "Paged"
        assert body["text"].startswith(f"[high] Incident {k.ns}/fraud-2-aaaa is Remediated")
        # Never written into the Incident, whose status belongs to its healer.
        assert "notified" not in str(k.get("incidents", "fraud-2-aaaa")["status"]).lower()


def test_retried_with_backoff_after_the_receiver_fails_twice(k: Cluster) -> None:
    with receiver(answers=[500, 503]) as hook:
        create(k, "incidentnotifiers", notifier_doc("retry", {"url": hook.url}, phases=["Open"]))
        inc = create(k, "incidents", incident_doc("fraud-2-bbbb"))
        done = wait_delivery(k, "retry", "Open", "fraud-2-bbbb")
        assert (done["result"], done["attempts"], done["code"]) == ("Succeeded", 3, 200)
        assert hook.keys() == [f"{inc['metadata']['uid']}/Open"] * 3
        assert [r.answered for r in hook.requests] == [500, 503, 200]


def test_a_4xx_is_recorded_and_not_retried(k: Cluster) -> None:
    with receiver(answers=[404]) as hook:
        create(k, "incidentnotifiers", notifier_doc("gone", {"url": hook.url}, phases=["Open"]))
        create(k, "incidents", incident_doc("fraud-2-cccc"))
        done = wait_delivery(k, "gone", "Open", "fraud-2-cccc")
        assert (done["result"], done["attempts"], done["code"]) == ("Failed", 1, 404)
        assert "HTTP 404" in done["message"] and "not retried" in done["message"]
        ready = condition(k.get("incidentnotifiers", "gone"), "Ready")
        assert (ready["status"], ready["reason"]) == ("False", "HTTPError")
        # A second Incident is still delivered (to the same receiver, now answering 200):
        # the first one's failure is final, so exactly one request carried its key.
        create(k, "incidents", incident_doc("fraud-2-cccd"))
        wait_delivery(k, "gone", "Open", "fraud-2-cccd")
        assert len(hook.requests) == 2


def test_missing_secret_is_a_clear_failed_delivery(k: Cluster) -> None:
    create(k, "incidentnotifiers", notifier_doc("nosecret", {"urlSecretRef": {"name": "slack", "key": "url"}}))
    create(k, "incidents", incident_doc("fraud-2-dddd"))
    done = wait_delivery(k, "nosecret", "Open", "fraud-2-dddd")
    assert done["result"] == "Failed" and "Secret slack not found" in done["message"]
    assert condition(k.get("incidentnotifiers", "nosecret"), "Ready")["reason"] == "SecretNotFound"


def test_url_and_token_from_a_secret(k: Cluster) -> None:
    core = client.CoreV1Api(k.custom.api_client)
    with receiver() as hook:
        core.create_namespaced_secret(
            k.ns,
            {"metadata": {"name": "hook"}, "stringData": {"url": hook.url, "token": "s3cr3t"}},
        )
        webhook = {
            "urlSecretRef": {"name": "hook", "key": "url"},
            "bearerTokenSecretRef": {"name": "hook", "key": "token"},
        }
        create(k, "incidentnotifiers", notifier_doc("fromsecret", webhook, phases=["Open"]))
        create(k, "incidents", incident_doc("fraud-2-eeee"))
        assert wait_delivery(k, "fromsecret", "Open", "fraud-2-eeee")["result"] == "Succeeded"
        assert hook.requests[0].auth == "Bearer s3cr3t"


@pytest.mark.parametrize(
    ("webhook", "message"),
    [
        ({"url": "ftp://hooks.example.com/x"}, "spec.webhook.url"),
        ({"url": "https://a", "urlSecretRef": {"name": "s", "key": "url"}}, "exactly one of url or urlSecretRef"),
        ({}, "exactly one of url or urlSecretRef"),
        ({"url": "https://a", "timeout": "0s"}, "timeout must be in (0, 60s]"),
        ({"url": "https://a", "timeout": "61s"}, "timeout must be in (0, 60s]"),
    ],
)
def test_the_api_server_rejects_a_bad_webhook(k: Cluster, webhook: dict[str, Any], message: str) -> None:
    with pytest.raises(ApiException) as err:
        create(k, "incidentnotifiers", notifier_doc("bad", webhook))
    assert err.value.status == 422 and message in str(err.value.body)


def test_a_rollback_is_never_delayed_by_a_hanging_receiver(k: Cluster) -> None:
    with receiver(hold=100) as hook:  # the receiver never answers during the test
        create(k, "incidentnotifiers", notifier_doc("slow", {"url": hook.url, "timeout": "60s"}))
        k.model("fraud-1", version="1.0.0", rollbackPolicy={"mode": "Automatic"})
        k.wait_stage("fraud-1", "Production")
        k.model("fraud-2", version="2.0.0", rollbackPolicy={"mode": "Automatic"})
        k.wait_stage("fraud-2", "Production")
        k.wait_stage("fraud-1", "Archived")
        k.snapshot("fraud-2-bad", "fraud-2", metrics=BAD_METRICS)
        hook.wait("the Open delivery to arrive", lambda: hook.by_phase("Open"))
        k.wait_stage("fraud-2", "RolledBack", timeout=10)
        inc = wait_for(
            lambda: (i := k.incidents("fraud-2")) and (i[0].get("status") or {}).get("phase") == "Remediated"
        )
        assert inc


def test_sigkill_mid_delivery_repeats_at_most_once_with_the_same_key(
    kube: Any, crds: list[str], iso_namespace: str, custom: client.CustomObjectsApi, tmp_path: Path
) -> None:
    k = Cluster(custom, iso_namespace)
    args = ("--namespace", iso_namespace)
    ident = f"modelreg-kill-{os.getpid()}-{secrets.token_hex(2)}"
    first = OperatorProcess(Path(kube.kubeconfig), tmp_path / "first.log", ident, args).start()
    with receiver(hold=1) as hook:
        try:
            create(k, "incidentnotifiers", notifier_doc("kill", {"url": hook.url, "timeout": "60s"}, phases=["Open"]))
            uid = create(k, "incidents", incident_doc("fraud-2-ffff"))["metadata"]["uid"]
            hook.wait("the first delivery to be in flight", lambda: hook.keys())
            first.kill()  # SIGKILL while the receiver holds the request
        finally:
            first.kill()
        hook.release()
        second = OperatorProcess(Path(kube.kubeconfig), tmp_path / "second.log", ident, args).start()
        try:
            done = wait_delivery(k, "kill", "Open", "fraud-2-ffff")
            assert done["result"] == "Succeeded"
            assert hook.keys() == [f"{uid}/Open", f"{uid}/Open"]  # one repeat, the same key
        finally:
            second.stop()


def test_a_secret_not_granted_by_name_is_forbidden_and_named(k: Cluster, kube: Any, monkeypatch: Any) -> None:
    """The operator's view through a Role like the chart's (resourceNames): only the granted Secret."""
    import asyncio
    import dataclasses

    import kopf

    from modelreg.api.models import IncidentNotifierSpec
    from modelreg.controller.notifier import Notifiers
    from modelreg.core.notify import ConfigError
    from modelreg.kube.client import KubeClient

    api = k.custom.api_client
    core, rbac = client.CoreV1Api(api), client.RbacAuthorizationV1Api(api)
    for name in ("granted", "other"):
        core.create_namespaced_secret(
            k.ns, {"metadata": {"name": name}, "stringData": {"url": "https://hooks.example/x"}}
        )
    core.create_namespaced_service_account(k.ns, {"metadata": {"name": "op"}})
    rbac.create_namespaced_role(
        k.ns,
        {
            "metadata": {"name": "op-secrets"},
            "rules": [{"apiGroups": [""], "resources": ["secrets"], "resourceNames": ["granted"], "verbs": ["get"]}],
        },
    )
    rbac.create_namespaced_role_binding(
        k.ns,
        {
            "metadata": {"name": "op-secrets"},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "op-secrets"},
            "subjects": [{"kind": "ServiceAccount", "name": "op", "namespace": k.ns}],
        },
    )
    token = core.create_namespaced_service_account_token("op", k.ns, {"spec": {"expirationSeconds": 600}}).status.token
    monkeypatch.setenv("KUBECONFIG", str(kube.kubeconfig))

    def spec(secret: str) -> IncidentNotifierSpec:
        return IncidentNotifierSpec.model_validate({"webhook": {"urlSecretRef": {"name": secret, "key": "url"}}})

    async def scenario() -> None:
        admin = kopf.login_with_kubeconfig(settings=kopf.OperatorSettings())
        assert admin is not None
        info = dataclasses.replace(
            admin,
            token=token,
            certificate_path=None,
            certificate_data=None,
            private_key_path=None,
            private_key_data=None,
        )
        async with KubeClient(info) as kc:
            notifiers = Notifiers(kc, [k.ns])
            for _ in range(40):  # the RoleBinding reaches the authorizer's cache within moments
                try:
                    target = await notifiers.resolve_target(k.ns, spec("granted"))
                    break
                except ConfigError:
                    await asyncio.sleep(0.25)
            assert target.url == "https://hooks.example/x"
            with pytest.raises(ConfigError) as err:
                await notifiers.resolve_target(k.ns, spec("other"))
            assert err.value.reason == "SecretForbidden" and "Secret other" in err.value.message

    wait_for(lambda: core.read_namespaced_service_account("op", k.ns))
    asyncio.run(scenario())
