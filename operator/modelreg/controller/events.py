"""The operator's Event recorder: one Kubernetes Event per lifecycle :class:`~modelreg.core.lifecycle.Event`.

The engine, the healer's close and the MetricSource poller post through it; none
of them needs the others to do so. An Event is best effort: a failed post is
logged and never fails the work it reports.
"""

from __future__ import annotations

import logging
import uuid

from modelreg import API_VERSION
from modelreg.controller.store import utcnow
from modelreg.core.lifecycle import Event
from modelreg.core.names import with_suffix
from modelreg.kube.client import ApiError, KubeClient
from modelreg.kube.paths import events_path

log = logging.getLogger("modelreg.engine")

COMPONENT = "modelreg-operator"


class EventRecorder:
    def __init__(self, client: KubeClient, identity: str) -> None:
        self.client = client
        self.identity = identity

    async def post(self, ns: str, event: Event, *, kind: str = "RegisteredModel", uid: str | None = None) -> None:
        """Post ``event`` about ``kind``/``event.object_name``; ``uid`` (when known) pins the object."""
        stamp = utcnow().isoformat().replace("+00:00", "Z")
        body = {
            "apiVersion": "v1",
            "kind": "Event",
            "metadata": {"name": with_suffix(event.object_name, f".{uuid.uuid4().hex[:16]}"), "namespace": ns},
            "involvedObject": {
                "apiVersion": API_VERSION,
                "kind": kind,
                "name": event.object_name,
                "namespace": ns,
                **({"uid": uid} if uid is not None else {}),
            },
            "type": event.type,
            "reason": event.reason,
            "message": event.message[:1024],
            "firstTimestamp": stamp,
            "lastTimestamp": stamp,
            "count": 1,
            "source": {"component": COMPONENT},
            "reportingComponent": COMPONENT,
            "reportingInstance": self.identity,
        }
        try:
            await self.client.request("POST", events_path(ns), body=body)
        except ApiError as err:  # an Event is best effort: never fail the work for it
            log.warning("event %s/%s not posted: %s", event.object_name, event.reason, err)
