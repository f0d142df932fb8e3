"""The harness the tests and the benchmarks share: manifests, the operator as a process, waiting.

``OperatorProcess`` is how both start ``modelreg run`` (the fault suite through its own
launcher module, the benchmark wrapped with its metrics and /proc readings); ``model_body``
and ``snapshot_body`` are the manifests both create.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from kubernetes import client
from kubernetes.client.rest import ApiException

from modelreg.core.names import label_value

GROUP, VERSION = "modelreg.io", "v1alpha1"
DIGEST = "sha256:" + "ab" * 32
T = TypeVar("T")


def wait_for(fn: Callable[[], T | None], timeout: float = 20.0, interval: float = 0.1, what: str = "") -> T:
    """Poll ``fn`` until it returns a truthy value; fail with the last value after ``timeout``."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        try:
            last = fn()
        except ApiException as err:
            if err.status != 404:
                raise
            last = None
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what or fn}: last={last!r}")


def wait_http_ready(
    proc: Any, url: str, timeout: float, tail: Callable[[], str], interval: float, what: str = "operator"
) -> None:
    """Until ``url`` answers 200 while ``proc`` runs; ``tail()`` (its log) in the error if it exits or times out."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{what} exited with {proc.returncode}:\n{tail()}")
        try:
            with urllib.request.urlopen(url, timeout=1) as resp:
                if resp.status == 200:
                    return
        except OSError:
            pass
        time.sleep(interval)
    raise TimeoutError(f"{what} not ready after {timeout}s:\n{tail()}")


def wait_operator_live(proc: Any, liveness_port: int, timeout: float, tail: Callable[[], str], interval: float) -> None:
    """Until the operator process answers on /healthz; its log tail if it exits or times out."""
    wait_http_ready(proc, f"http://127.0.0.1:{liveness_port}/healthz", timeout, tail, interval)


def stop_process(proc: subprocess.Popen[Any] | None, grace: float = 15.0) -> None:
    """SIGTERM ``proc`` if it still runs; SIGKILL it after ``grace`` seconds; reap it."""
    if proc is None or proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(grace)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(5)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class OperatorProcess:
    """`modelreg run` as a separate process, as in production.

    ``module`` is what runs as ``python -m MODULE run ...`` (a test launcher with fault hooks,
    or a patched operator to compare); ``env_extra`` is added to the environment.
    """

    kubeconfig: Path
    log_path: Path
    identity: str
    extra_args: tuple[str, ...] = ()
    module: str = "modelreg.cli.main"
    env_extra: dict[str, str] = field(default_factory=dict)
    proc: subprocess.Popen[bytes] | None = None
    metrics_port: int = 0
    liveness_port: int = 0

    def argv(self, metrics_port: int, liveness_port: int) -> list[str]:
        return [
            sys.executable,
            "-m",
            self.module,
            "run",
            "--metrics-port",
            str(metrics_port),
            "--liveness-port",
            str(liveness_port),
            "--identity",
            self.identity,
            *self.extra_args,
        ]

    def environment(self) -> dict[str, str]:
        return {**os.environ, "KUBECONFIG": str(self.kubeconfig), "PYTHONUNBUFFERED": "1", **self.env_extra}

    def spawn(self) -> subprocess.Popen[bytes]:
        """Start the process on two free ports and return at once (``start`` waits until it is live)."""
        self.metrics_port, self.liveness_port = free_port(), free_port()
        with self.log_path.open("ab") as log:
            self.proc = subprocess.Popen(
                self.argv(self.metrics_port, self.liveness_port),
                stdout=log,
                stderr=subprocess.STDOUT,
                env=self.environment(),
            )
        return self.proc

    def start(self, timeout: float = 60.0) -> OperatorProcess:
        proc = self.spawn()
        wait_operator_live(proc, self.liveness_port, timeout, self.log_tail, interval=0.2)
        return self

    def stop(self) -> None:
        stop_process(self.proc)

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(5)

    def metrics(self) -> str:
        with urllib.request.urlopen(f"http://127.0.0.1:{self.metrics_port}/metrics", timeout=5) as resp:
            return str(resp.read().decode())

    def log_tail(self, lines: int = 60) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


def model_body(name: str, model_name: str, version: str, **spec: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "modelName": model_name,
        "version": version,
        "artifact": {"uri": f"s3://models/{model_name}/{version}/model.bst", "digest": DIGEST},
        "targetStage": "Production",
        "promotionPolicy": {"minSandboxDuration": "0s", "minHealthySnapshots": 0, "requireApproval": False},
        "rollbackPolicy": {"mode": "IncidentOnly"},
    }
    for key, value in spec.items():
        if value is None:
            base.pop(key, None)
        else:
            base[key] = value
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "RegisteredModel",
        "metadata": {"name": name},
        "spec": base,
    }


def snapshot_body(name: str, model: str, **spec: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "modelRef": {"name": model},
        "sampleCount": 1000,
        "metrics": {"errorRate": 0.01, "oodRate": 0.02},
    }
    base.update(spec)
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "PerformanceSnapshot",
        "metadata": {"name": name},
        "spec": base,
    }


class Cluster:
    """Short verbs over CustomObjectsApi for one namespace."""

    def __init__(self, custom: client.CustomObjectsApi, namespace: str) -> None:
        self.custom = custom
        self.ns = namespace

    def create(self, doc: dict[str, Any]) -> dict[str, Any]:
        plural = {"RegisteredModel": "registeredmodels", "PerformanceSnapshot": "performancesnapshots"}[doc["kind"]]
        return self.custom.create_namespaced_custom_object(GROUP, VERSION, self.ns, plural, doc)

    def model(self, name: str, model_name: str = "fraud", version: str = "1.0.0", **spec: Any) -> dict[str, Any]:
        return self.create(model_body(name, model_name, version, **spec))

    def snapshot(self, name: str, model: str, **spec: Any) -> dict[str, Any]:
        return self.create(snapshot_body(name, model, **spec))

    def get(self, plural: str, name: str) -> dict[str, Any]:
        return self.custom.get_namespaced_custom_object(GROUP, VERSION, self.ns, plural, name)

    def rm(self, name: str) -> dict[str, Any]:
        return self.get("registeredmodels", name)

    def snap(self, name: str) -> dict[str, Any]:
        return self.get("performancesnapshots", name)

    def list(self, plural: str, **kw: Any) -> list[dict[str, Any]]:
        return self.custom.list_namespaced_custom_object(GROUP, VERSION, self.ns, plural, **kw)["items"]

    def incidents(self, registered_model: str | None = None) -> list[dict[str, Any]]:
        selector = f"modelreg.io/registered-model={label_value(registered_model)}" if registered_model else None
        return self.list("incidents", label_selector=selector) if selector else self.list("incidents")

    def patch(self, plural: str, name: str, body: Any) -> dict[str, Any]:
        return self.custom.patch_namespaced_custom_object(GROUP, VERSION, self.ns, plural, name, body)

    def patch_status(self, plural: str, name: str, body: Any) -> dict[str, Any]:
        return self.custom.patch_namespaced_custom_object_status(GROUP, VERSION, self.ns, plural, name, body)

    def annotate(self, name: str, key: str, value: str) -> None:
        self.patch("registeredmodels", name, {"metadata": {"annotations": {key: value}}})

    def stage(self, name: str) -> str | None:
        return (self.rm(name).get("status") or {}).get("stage")

    def wait_stage(self, name: str, stage: str, timeout: float = 20.0) -> dict[str, Any]:
        return wait_for(
            lambda: (o := self.rm(name)) and (o.get("status") or {}).get("stage") == stage and o,
            timeout,
            what=f"{name} in {stage}",
        )

    def wait_verdict(self, name: str, timeout: float = 20.0) -> dict[str, Any]:
        return wait_for(
            lambda: (o := self.snap(name)) and (o.get("status") or {}).get("evaluatedAt") and o,
            timeout,
            what=f"snapshot {name} evaluated",
        )

    def events(self, name: str) -> list[Any]:
        core = client.CoreV1Api(self.custom.api_client)
        return [e for e in core.list_namespaced_event(self.ns).items if e.involved_object.name == name]


def condition(obj: dict[str, Any], type_: str) -> dict[str, Any]:
    return next((c for c in (obj.get("status") or {}).get("conditions", []) if c["type"] == type_), {})


def apply_user_condition(
    custom: client.CustomObjectsApi, ns: str, plural: str, name: str, ctype: str, message: str
) -> None:
    """Another tool server-side-applying a status condition of its own type (field manager
    ``user-<type>``), as the conflict tests' user does."""
    from datetime import UTC, datetime

    kind = {"registeredmodels": "RegisteredModel", "incidents": "Incident"}[plural]
    body = {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": kind,
        "metadata": {"name": name},
        "status": {
            "conditions": [
                {
                    "type": ctype,
                    "status": "True",
                    "reason": "Probe",
                    "message": message,
                    "lastTransitionTime": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
                }
            ]
        },
    }
    custom.patch_namespaced_custom_object_status(
        GROUP,
        VERSION,
        ns,
        plural,
        name,
        body,
        field_manager=f"user-{ctype.lower()}",
        force=True,
        _content_type="application/apply-patch+yaml",
    )
