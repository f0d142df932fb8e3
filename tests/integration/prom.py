"""Real components for the MetricSource tests: a Prometheus server, a synthetic exporter, a checking proxy.

Prometheus is Debian's ``prometheus`` package (hack/test-packages.txt), run as a
plain process on a free port with a 1 s scrape interval. The exporter is
``prometheus_client`` in the test process; the proxy is a small threaded HTTP
server that forwards to Prometheus only requests carrying the expected tenant
header and bearer token (and records what it saw).
"""

from __future__ import annotations

import http.client
import http.server
import shutil
import socket
import subprocess
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, make_server

import pytest
from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.exposition import make_wsgi_app

from tests.integration.kit import stop_process, wait_http_ready


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def prometheus_binary() -> str:
    found = shutil.which("prometheus")
    if found is None:
        pytest.skip("the prometheus binary is missing: `make test-deps` installs Debian's prometheus package")
    return found


@dataclass
class PrometheusServer:
    """One Prometheus process scraping ``targets`` every second."""

    workdir: Path
    targets: list[str]
    port: int = 0
    proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 60.0) -> PrometheusServer:
        self.port = self.port or free_port()
        config = self.workdir / "prometheus.yml"
        targets = ", ".join(f"'{t}'" for t in self.targets)
        config.write_text(
            "global: {scrape_interval: 1s, evaluation_interval: 1s}\n"
            "scrape_configs:\n"
            f"  - job_name: exporter\n    static_configs: [{{targets: [{targets}]}}]\n",
            encoding="utf-8",
        )
        log = (self.workdir / "prometheus.log").open("ab")
        self.proc = subprocess.Popen(
            [
                prometheus_binary(),
                f"--config.file={config}",
                f"--storage.tsdb.path={self.workdir / 'data'}",
                f"--web.listen-address=127.0.0.1:{self.port}",
                "--storage.tsdb.retention.time=1h",
                "--log.level=warn",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        log_path = self.workdir / "prometheus.log"
        wait_http_ready(
            self.proc, f"{self.url}/-/ready", timeout, lambda: log_path.read_text()[-2000:], 0.2, "prometheus"
        )
        return self

    def stop(self) -> None:
        stop_process(self.proc, 10)


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


@dataclass
class Exporter:
    """Synthetic model-server metrics (requests by outcome, OOD inputs, feature histograms)."""

    registry: CollectorRegistry = field(default_factory=CollectorRegistry)
    port: int = 0

    def __post_init__(self) -> None:
        self.requests = Counter("model_requests", "Requests", ["model", "version", "outcome"], registry=self.registry)
        self.ood = Counter("model_ood", "Out-of-distribution inputs", ["model", "version"], registry=self.registry)
        self.feature = Histogram(
            "model_feature_value",
            "Feature values",
            ["model", "version", "feature"],
            buckets=(0.25, 0.5, 0.75, 1.0),
            registry=self.registry,
        )
        self._stop = threading.Event()
        self._traffic: dict[tuple[str, str], dict[str, Any]] = {}
        self._lock = threading.Lock()

    def start(self) -> Exporter:
        self.port = free_port()
        self._server = make_server("127.0.0.1", self.port, make_wsgi_app(self.registry), handler_class=_QuietHandler)
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        threading.Thread(target=self._drive, daemon=True).start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._server.shutdown()

    @property
    def target(self) -> str:
        return f"127.0.0.1:{self.port}"

    def traffic(
        self, model: str, version: str, *, rate: int = 50, errors: float = 0.0, ood: float = 0.0, feature: float = 0.1
    ) -> None:
        """Every 100 ms: ``rate/10`` requests, a share failing / OOD; feature values around ``feature``."""
        # Children created up front, as prometheus_client advises: a counter that appears only at
        # its first increment loses that first increment to increase() (and one scrape of time).
        self.requests.labels(model, version, "success")
        self.requests.labels(model, version, "error")
        with self._lock:
            self._traffic[(model, version)] = {"rate": rate, "errors": errors, "ood": ood, "feature": feature}

    def idle(self, model: str, version: str) -> None:
        with self._lock:
            self._traffic.pop((model, version), None)

    def _drive(self) -> None:
        carry: dict[tuple[str, str], float] = {}
        while not self._stop.wait(0.1):
            with self._lock:
                items = list(self._traffic.items())
            for (model, version), t in items:
                n = t["rate"] / 10
                bad = carry.get((model, version), 0.0) + n * t["errors"]
                errors = int(bad)
                carry[(model, version)] = bad - errors
                self.requests.labels(model, version, "success").inc(n - errors)
                if errors:
                    self.requests.labels(model, version, "error").inc(errors)
                if t["ood"]:
                    self.ood.labels(model, version).inc(n * t["ood"])
                for _ in range(int(n)):
                    self.feature.labels(model, version, "amount").observe(t["feature"])


@dataclass
class CheckingProxy:
    """Forwards to ``upstream`` only with the expected tenant header and bearer token."""

    upstream: str
    header: tuple[str, str]
    token: str
    seen: list[dict[str, str]] = field(default_factory=list)
    refused: int = 0
    port: int = 0

    def start(self) -> CheckingProxy:
        proxy = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                pass

            def _forward(self) -> None:
                headers = {k: v for k, v in self.headers.items()}
                proxy.seen.append(headers)
                if (
                    self.headers.get(proxy.header[0]) != proxy.header[1]
                    or self.headers.get("Authorization") != f"Bearer {proxy.token}"
                ):
                    proxy.refused += 1
                    self.send_response(401)
                    self.send_header("Content-Type", "text/plain")
                    self.end_headers()
                    self.wfile.write(b"no tenant or token")
                    return
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else None
                host = proxy.upstream.removeprefix("http://")
                conn = http.client.HTTPConnection(host, timeout=10)
                conn.request(
                    self.command,
                    self.path,
                    body=body,
                    headers={"Content-Type": self.headers.get("Content-Type", "")} if body else {},
                )
                resp = conn.getresponse()
                data = resp.read()
                self.send_response(resp.status)
                self.send_header("Content-Type", resp.getheader("Content-Type") or "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)
                conn.close()

            do_GET = _forward
            do_POST = _forward

        self.port = free_port()
        self._server = http.server.ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def stop(self) -> None:
        self._server.shutdown()


def started(tmp: Path, exporter: Exporter) -> Iterator[PrometheusServer]:
    server = PrometheusServer(tmp, [exporter.target]).start()
    try:
        yield server
    finally:
        server.stop()
