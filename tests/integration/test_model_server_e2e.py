"""A real model server (MLServer, from PyPI) watched through a real Prometheus (docs/metricsource.md).

The test trains the example model of ``examples/mlserver`` on the spot, starts
``mlserver start`` on it, has Prometheus scrape MLServer's metrics, sends real
HTTP inference requests, and checks that the version is promoted Sandbox →
Production on pulled Healthy windows alone, then rolled back (Incident,
serving restored) when more than 5 % of requests fail.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client

from tests.integration.kit import GROUP, VERSION, Cluster, condition, stop_process, wait_for, wait_http_ready
from tests.integration.prom import PrometheusServer, free_port, prometheus_binary
from tests.integration.test_metricsource_e2e import model_uri, serving_deployment

pytest.importorskip("mlserver", reason="MLServer is a test extra (pip install -e '.[test]')")
pytestmark = pytest.mark.timeout(420)

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "mlserver"
TIMEOUT = 120.0


class MLServer:
    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.http_port, self.grpc_port, self.metrics_port = free_port(), free_port(), free_port()
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 120.0) -> MLServer:
        for name in ("runtime.py", "model-settings.json", "settings.json"):
            shutil.copy(EXAMPLE / name, self.workdir / name)
        subprocess.run([sys.executable, str(EXAMPLE / "train.py"), str(self.workdir)], check=True)
        env = {
            **os.environ,
            "MLSERVER_HTTP_PORT": str(self.http_port),
            "MLSERVER_GRPC_PORT": str(self.grpc_port),
            "MLSERVER_METRICS_PORT": str(self.metrics_port),
            "MLSERVER_HOST": "127.0.0.1",
        }
        mlserver = Path(sys.executable).parent / "mlserver"
        log = (self.workdir / "mlserver.log").open("ab")
        self.proc = subprocess.Popen(
            [str(mlserver), "start", str(self.workdir)], cwd=self.workdir, env=env, stdout=log, stderr=subprocess.STDOUT
        )
        log_path = self.workdir / "mlserver.log"
        wait_http_ready(
            self.proc,
            f"{self.url}/v2/models/fraud/ready",
            timeout,
            lambda: log_path.read_text()[-3000:],
            0.3,
            "MLServer",
        )
        return self

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    def stop(self) -> None:
        stop_process(self.proc)


class Traffic:
    """Real inference requests at ~20/s; ``bad_share`` of them malformed (they fail in the model)."""

    def __init__(self, url: str) -> None:
        self.url = f"{url}/v2/models/fraud/versions/1.0.0/infer"
        self.bad_share = 0.0
        self.sent = {"ok": 0, "failed": 0}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> Traffic:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(5)

    def _post(self, rows: list[list[float]]) -> bool:
        flat = [v for row in rows for v in row]
        width = len(rows[0])
        body = {"inputs": [{"name": "x", "shape": [len(rows), width], "datatype": "FP64", "data": flat}]}
        req = urllib.request.Request(
            self.url, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"}
        )
        try:
            with urllib.request.urlopen(req, timeout=5) as resp:
                return resp.status == 200
        except (urllib.error.HTTPError, OSError):
            return False

    def _run(self) -> None:
        i = 0
        owed = 0.0
        while not self._stop.wait(0.05):
            i += 1
            owed += self.bad_share
            if owed >= 1:
                owed -= 1
                ok = self._post([[0.5, 0.5, 0.5]])  # three features: the model refuses it
            else:
                ok = self._post([[(i % 10) / 10 + 0.05, ((i * 7) % 10) / 10 + 0.05]])
            self.sent["ok" if ok else "failed"] += 1


@pytest.fixture()
def mlserver(tmp_path: Path) -> Iterator[MLServer]:
    prometheus_binary()
    server = MLServer(tmp_path / "mlserver")
    server.workdir.mkdir()
    server.start()
    yield server
    server.stop()


def test_mlserver_version_promoted_on_pulled_windows_then_rolled_back(
    operator: Any, k: Cluster, api: client.ApiClient, namespace: str, mlserver: MLServer, tmp_path: Path
) -> None:
    prom = PrometheusServer(tmp_path / "prom", [f"127.0.0.1:{mlserver.metrics_port}"])
    prom.workdir.mkdir()
    prom.start()
    traffic = Traffic(mlserver.url).start()
    try:
        source = yaml.safe_load((EXAMPLE / "metricsource.yaml").read_text(encoding="utf-8"))
        source["spec"]["prometheus"]["url"] = prom.url
        k.custom.create_namespaced_custom_object(GROUP, VERSION, namespace, "metricsources", source)

        serving = {"targetRef": {"kind": "Deployment", "name": "fraud-api"}, "container": "server", "env": "MODEL_URI"}
        serving_deployment(api, namespace, "fraud")
        k.model("fraud-0-9-0", "fraud", "0.9.0", rollbackPolicy={"mode": "Automatic"}, serving=serving)
        k.wait_stage("fraud-0-9-0", "Production", TIMEOUT)
        k.model(
            "fraud-1-0-0",
            "fraud",
            "1.0.0",
            promotionPolicy={"minSandboxDuration": "0s", "minHealthySnapshots": 2, "requireApproval": False},
            rollbackPolicy={"mode": "Automatic", "minSamples": 20},
            monitoring={"sourceRef": {"name": "mlserver"}, "interval": "5s", "evaluationDelay": "2s"},
            serving=serving,
        )
        try:
            rm = k.wait_stage("fraud-1-0-0", "Production", TIMEOUT)
        except AssertionError as err:
            snaps = [
                (s["metadata"]["name"], s["spec"].get("sampleCount"), s["spec"].get("metrics"), s.get("status"))
                for s in k.list("performancesnapshots")
            ]
            raise AssertionError(f"{err}\n{k.rm('fraud-1-0-0').get('status')}\n{snaps}\n{traffic.sent}") from None
        assert condition(rm, "MetricsAvailable")["status"] == "True"

        # The snapshots' verdicts are written after the version's status (the kill-safe order),
        # so the second Healthy verdict may land a moment after the promotion is seen
        # (CI, 2026-11-30: 1 Healthy read where 2 were due).
        def verdicts() -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
            mine = [s for s in k.list("performancesnapshots") if s["spec"]["modelRef"]["name"] == "fraud-1-0-0"]
            return mine, [s for s in mine if (s.get("status") or {}).get("verdict") == "Healthy"]

        wait_for(lambda: len(verdicts()[1]) >= 2, timeout=30, interval=0.2, what="the two Healthy verdicts written")
        mine, healthy = verdicts()
        assert len(healthy) >= 2 and all("source" in s["spec"] for s in mine)
        assert healthy[0]["spec"]["sampleCount"] >= 20
        wait_for(lambda: model_uri(api, namespace, "fraud").endswith("/1.0.0/model.bst"), TIMEOUT, what="serving")

        traffic.bad_share = 0.2  # 20 % of real requests fail in the model
        k.wait_stage("fraud-1-0-0", "RolledBack", TIMEOUT)
        k.wait_stage("fraud-0-9-0", "Production", TIMEOUT)
        (incident,) = k.incidents("fraud-1-0-0")
        trigger = k.snap(incident["spec"]["trigger"]["snapshot"])
        assert trigger["spec"]["metrics"]["errorRate"] > 0.05
        assert [b["criterion"] for b in incident["spec"]["trigger"]["breaches"]] == ["errorRate"]
        wait_for(lambda: model_uri(api, namespace, "fraud").endswith("/0.9.0/model.bst"), TIMEOUT, what="restored")
        assert traffic.sent["failed"] > 0 and traffic.sent["ok"] > 0
    finally:
        traffic.stop()
        prom.stop()
