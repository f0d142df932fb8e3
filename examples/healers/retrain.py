"""The `retrain` playbook: a user's own healer on modelreg.healing and Kopf.

On an open Incident whose spec.playbook is `retrain`, claim it, create a Job
from the template in the ConfigMap `retrain-job-template` (key `job.yaml`),
record the action, and close the Incident Remediated when the Job succeeds or
Failed when it fails.  Run: kopf run --standalone -n NAMESPACE retrain.py
"""

import os
from datetime import timedelta

import kopf
import yaml

from modelreg.healing import Healing, action
from modelreg.kube.client import ApiError, KubeClient

PLAYBOOK, LABEL = "retrain", "modelreg.io/incident"
TEMPLATE = os.environ.get("RETRAIN_TEMPLATE", "retrain-job-template")
IDENTITY = os.environ.get("HEALER_IDENTITY") or os.environ.get("HOSTNAME", "retrain-healer")
healing: Healing


@kopf.on.startup()
async def login(settings: kopf.OperatorSettings, **_: object) -> None:
    global healing
    settings.posting.enabled, settings.scanning.disabled = False, True  # no Events, no CRD discovery
    info = kopf.login_with_service_account(settings=settings) or kopf.login_with_kubeconfig(settings=settings)
    healing = Healing(KubeClient(info), IDENTITY, PLAYBOOK, claim_for=timedelta(minutes=10))


@kopf.on.event("modelreg.io", "v1alpha1", "incidents", when=lambda spec, **_: spec.get("playbook") == PLAYBOOK)
async def on_incident(body: kopf.Body, namespace: str, **_: object) -> None:
    claim = await healing.claim(dict(body))  # None: closed, or another healer holds it
    if claim is None:
        return
    claim = await healing.reread(claim)  # act on what is stored now, not on this event
    if claim.has_action("JobCreated"):
        return
    try:
        template = await healing.client.get(f"/api/v1/namespaces/{namespace}/configmaps/{TEMPLATE}")
        job = yaml.safe_load(template["data"]["job.yaml"])
    except (ApiError, KeyError, yaml.YAMLError) as err:
        failed = action(PLAYBOOK, "CreateJob", "Failed", f"{TEMPLATE}: {err}")
        await healing.close(claim, "Failed", "NoJobTemplate", [failed])
        return
    name = f"retrain-{claim.uid[:8]}"  # deterministic: a healer taking over finds the same Job
    job["metadata"] = {**job.get("metadata", {}), "name": name, "labels": {LABEL: claim.name}}
    await healing.client.create(f"/apis/batch/v1/namespaces/{namespace}/jobs", job)  # AlreadyExists is fine
    await healing.record(claim, "JobCreated", "Succeeded", f"job {name} retrains {claim.spec['modelRef']['modelName']}")


@kopf.on.event("batch", "v1", "jobs", labels={LABEL: kopf.PRESENT})
async def on_job(name: str, namespace: str, labels: kopf.Labels, status: kopf.Status, **_: object) -> None:
    done = {c["type"] for c in status.get("conditions") or [] if c["status"] == "True"}
    if not done & {"Complete", "Failed"}:
        return
    claim = await healing.held(namespace, labels[LABEL])  # None: another healer's, or closed
    if claim is None:
        return
    if "Complete" in done:
        await healing.close(claim, "Remediated", actions=[action(PLAYBOOK, "JobSucceeded", "Succeeded", f"job {name}")])
    else:
        await healing.close(claim, "Failed", "JobFailed", [action(PLAYBOOK, "JobFailed", "Failed", f"job {name}")])
