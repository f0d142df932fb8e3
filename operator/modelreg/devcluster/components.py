"""The control plane's three processes, one class each: its binary and flags, its readiness
probe, and its start and stop (shared, in :class:`Component`).

A component is bound to the cluster's files and ports; its flags are a pure function of those
and of the extra arguments asked for, so the command line is decided once, at the first start,
and kept in ``state.json`` for every restart.
"""

from __future__ import annotations

import contextlib
import json
import signal
import ssl
import time
import urllib.error
import urllib.request
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

from modelreg.devcluster import pki, process
from modelreg.devcluster.binaries import Binaries
from modelreg.devcluster.state import ClusterPaths, Ports, ProcessState

ETCD = "etcd"
APISERVER = "kube-apiserver"
CONTROLLER_MANAGER = "kube-controller-manager"
COMPONENTS = (ETCD, APISERVER, CONTROLLER_MANAGER)  # start order; stop order is reversed

SERVICE_CLUSTER_IP_RANGE = "10.0.0.0/24"
ETCD_QUOTA_BACKEND_BYTES = 4 * 1024**3


def request(url: str, ctx: ssl.SSLContext | None, timeout: float = 2.0, body: Any = None) -> tuple[int, bytes]:
    """GET ``url`` (POST ``body`` as JSON when given); (status, body), or (0, error text)
    when the server is unreachable."""
    req = urllib.request.Request(url)
    if body is not None:
        req.data = json.dumps(body).encode()
        req.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(req, context=ctx, timeout=timeout) as resp:
            return int(resp.status), resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()
    except (urllib.error.URLError, OSError, ssl.SSLError) as exc:
        return 0, str(exc).encode()


def admin_context(paths: pki.PkiPaths) -> ssl.SSLContext:
    """TLS as the cluster admin (client certificate), trusting the cluster CA."""
    ctx = ssl.create_default_context(cafile=str(paths.ca_cert))
    ctx.load_cert_chain(str(paths.admin_cert), str(paths.admin_key))
    return ctx


@dataclass(frozen=True)
class Component(ABC):
    """One control-plane process of the cluster in ``paths``, listening on ``ports``."""

    name: ClassVar[str]
    #: what :meth:`ready` waits for, as error messages name it
    readiness: ClassVar[str]

    paths: ClusterPaths
    ports: Ports

    @abstractmethod
    def binary(self, bins: Binaries) -> Path: ...

    @abstractmethod
    def flags(self, extra: Sequence[str] = ()) -> list[str]:
        """The command-line flags, ``extra`` last (so a repeated flag overrides a default)."""

    @abstractmethod
    def ready(self) -> bool:
        """One readiness probe (a short HTTP request)."""

    def argv(self, bins: Binaries, extra: Sequence[str] = ()) -> list[str]:
        return [str(self.binary(bins)), *self.flags(extra)]

    @property
    def log_file(self) -> Path:
        return self.paths.log_file(self.name)

    def alive(self, proc: ProcessState) -> bool:
        """Whether the recorded process runs, and is still this component's binary."""
        return bool(proc.pid) and process.pid_alive(int(proc.pid or 0), proc.exe)

    def start(self, proc: ProcessState) -> int:
        """Start the recorded command line; records the pid in ``proc`` and the pid file."""
        pid_file = self.paths.pid_file(self.name)
        pid_file.parent.mkdir(parents=True, exist_ok=True)
        pid = process.spawn(self.name, proc.argv, self.log_file, self.paths.state_dir)
        proc.pid = pid
        proc.started_at = time.time()
        pid_file.write_text(f"{pid}\n")
        return pid

    def stop(self, proc: ProcessState, sig: int = signal.SIGTERM, grace: float = process.STOP_GRACE_SECONDS) -> None:
        """Stop the recorded process (``sig``, then SIGKILL after ``grace`` seconds)."""
        if not proc.pid:
            return
        process.terminate(proc.pid, proc.exe, sig=sig, grace=grace)
        proc.pid = None
        with contextlib.suppress(FileNotFoundError):
            self.paths.pid_file(self.name).unlink()


@dataclass(frozen=True)
class Etcd(Component):
    name: ClassVar[str] = ETCD
    readiness: ClassVar[str] = "etcd /health"

    def binary(self, bins: Binaries) -> Path:
        return bins.etcd

    def flags(self, extra: Sequence[str] = ()) -> list[str]:
        client = self.ports.etcd_url
        peer = f"http://127.0.0.1:{self.ports.etcd_peer}"
        return [
            "--name=default",
            f"--data-dir={self.paths.etcd_data_dir}",
            f"--listen-client-urls={client}",
            f"--advertise-client-urls={client}",
            f"--listen-peer-urls={peer}",
            f"--initial-advertise-peer-urls={peer}",
            f"--initial-cluster=default={peer}",
            "--initial-cluster-state=new",
            "--unsafe-no-fsync=true",
            f"--quota-backend-bytes={ETCD_QUOTA_BACKEND_BYTES}",
            "--log-level=warn",
            *extra,
        ]

    def ready(self) -> bool:
        status, body = request(f"{self.ports.etcd_url}/health", None)
        return status == 200 and b'"true"' in body


@dataclass(frozen=True)
class APIServer(Component):
    name: ClassVar[str] = APISERVER
    readiness: ClassVar[str] = "kube-apiserver /readyz"

    def binary(self, bins: Binaries) -> Path:
        return bins.kube_apiserver

    def flags(self, extra: Sequence[str] = ()) -> list[str]:
        p = self.paths.pki
        return [
            f"--etcd-servers={self.ports.etcd_url}",
            f"--cert-dir={p.dir}",
            f"--tls-cert-file={p.apiserver_cert}",
            f"--tls-private-key-file={p.apiserver_key}",
            f"--client-ca-file={p.ca_cert}",
            f"--secure-port={self.ports.apiserver}",
            "--bind-address=127.0.0.1",
            "--advertise-address=127.0.0.1",
            # 1.37 refuses a loopback advertise address with the (default) lease endpoint
            # reconciler; nothing in-cluster dials the `kubernetes` Service here anyway.
            "--endpoint-reconciler-type=none",
            f"--service-cluster-ip-range={SERVICE_CLUSTER_IP_RANGE}",
            "--allow-privileged=true",
            "--authorization-mode=RBAC",
            f"--service-account-issuer={self.ports.server}/",
            f"--service-account-key-file={p.sa_pub}",
            f"--service-account-signing-key-file={p.sa_key}",
            *extra,
        ]

    def ready(self) -> bool:
        """/readyz as the admin; raises OSError or ssl.SSLError when the PKI files are unreadable."""
        status, _ = request(f"{self.ports.server}/readyz", admin_context(self.paths.pki))
        return status == 200


@dataclass(frozen=True)
class ControllerManager(Component):
    name: ClassVar[str] = CONTROLLER_MANAGER
    readiness: ClassVar[str] = "kube-controller-manager /healthz"

    def binary(self, bins: Binaries) -> Path:
        return bins.kube_controller_manager

    def flags(self, extra: Sequence[str] = ()) -> list[str]:
        p = self.paths.pki
        return [
            f"--kubeconfig={self.paths.controller_manager_kubeconfig}",
            "--controllers=*",
            f"--service-account-private-key-file={p.sa_key}",
            f"--root-ca-file={p.ca_cert}",
            "--leader-elect=false",
            "--use-service-account-credentials=false",
            "--bind-address=127.0.0.1",
            f"--secure-port={self.ports.controller_manager}",
            *extra,
        ]

    def ready(self) -> bool:
        insecure = ssl.create_default_context()
        insecure.check_hostname = False
        insecure.verify_mode = ssl.CERT_NONE  # self-signed serving cert; liveness probe only
        return request(f"https://127.0.0.1:{self.ports.controller_manager}/healthz", insecure)[0] == 200


def plane(paths: ClusterPaths, ports: Ports) -> dict[str, Component]:
    """The three components by name, in start order."""
    return {c.name: c for c in (Etcd(paths, ports), APIServer(paths, ports), ControllerManager(paths, ports))}
