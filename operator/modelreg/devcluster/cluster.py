"""A local Kubernetes control plane (etcd + kube-apiserver + kube-controller-manager).

Similar in spirit to controller-runtime's envtest, but with kube-controller-manager running so
garbage collection, namespace deletion, service accounts and workload controllers behave like a
real cluster. There is no kubelet or scheduler: pods are stored but never run.

All state lives in one directory (``$MODELREG_CLUSTER_DIR`` or
``~/.cache/modelreg/clusters/default``): PKI, etcd data, logs, pid files, ``state.json`` and the
admin ``kubeconfig``. Processes run in their own sessions, so a cluster started by the CLI
outlives it and is reused by later ``up()`` calls from any process.

:class:`DevCluster` composes the three components (``components.py``), keeps their state in
``state.json`` (``state.py``) and writes the kubeconfigs (``kubeconfig.py``).
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import shlex
import shutil
import signal
import ssl
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from modelreg.devcluster import pki, process
from modelreg.devcluster.binaries import Binaries, binaries, default_cache_root, ensure_binaries
from modelreg.devcluster.components import (
    APISERVER,
    COMPONENTS,
    CONTROLLER_MANAGER,
    ETCD,
    Component,
    admin_context,
    plane,
    request,
)
from modelreg.devcluster.errors import DevClusterError
from modelreg.devcluster.kubeconfig import write_kubeconfig
from modelreg.devcluster.state import (
    ClusterPaths,
    ClusterState,
    Ports,
    ProcessState,
    UnreadableState,
    load_state,
    save_state,
)

log = logging.getLogger("modelreg.devcluster")

ADMIN_USER = "modelreg-admin"
ETCD_RECONNECT_SECONDS = 150.0

ProgressFn = Callable[[str], None]


def default_state_dir() -> Path:
    env = os.environ.get("MODELREG_CLUSTER_DIR")
    if env:
        return Path(env).expanduser()
    return Path.home() / ".cache" / "modelreg" / "clusters" / "default"


@dataclass(frozen=True)
class ClusterInfo:
    """What ``up()`` returns."""

    kubeconfig: Path
    server: str
    state_dir: Path
    k8s_version: str
    etcd_version: str
    reused: bool
    start_seconds: float  # how long this up() call took
    pids: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class ClusterStatus:
    """What ``status()`` returns."""

    running: bool
    state_dir: Path
    detail: str
    server: str | None = None
    kubeconfig: Path | None = None
    k8s_version: str | None = None
    etcd_version: str | None = None
    pids: dict[str, int | None] = field(default_factory=dict)
    alive: dict[str, bool] = field(default_factory=dict)
    uptime_seconds: float | None = None
    cold_start_seconds: float | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "running": self.running,
            "detail": self.detail,
            "state_dir": str(self.state_dir),
            "server": self.server,
            "kubeconfig": str(self.kubeconfig) if self.kubeconfig else None,
            "k8s_version": self.k8s_version,
            "etcd_version": self.etcd_version,
            "pids": self.pids,
            "alive": self.alive,
            "uptime_seconds": self.uptime_seconds,
            "cold_start_seconds": self.cold_start_seconds,
        }


class DevCluster:
    """Driver for one local control plane, identified by its state directory."""

    def __init__(
        self,
        state_dir: Path | str | None = None,
        cache_root: Path | str | None = None,
        *,
        progress: ProgressFn | None = None,
    ) -> None:
        self.state_dir = (Path(state_dir).expanduser() if state_dir else default_state_dir()).absolute()
        self.paths = ClusterPaths(self.state_dir)
        self.cache_root = Path(cache_root).expanduser() if cache_root else default_cache_root()
        self._progress = progress or log.info
        self._lock_depth = 0
        self._lock_fh: IO[str] | None = None

    @property
    def pki(self) -> pki.PkiPaths:
        return self.paths.pki

    @property
    def state_file(self) -> Path:
        return self.paths.state_file

    # -- locking / state ------------------------------------------------------------------------

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        """Serialise lifecycle operations on this state dir across processes (re-entrant)."""
        if self._lock_depth == 0:
            lock_path = self.state_dir.with_name(self.state_dir.name + ".lock")
            lock_path.parent.mkdir(parents=True, exist_ok=True)
            self._lock_fh = open(lock_path, "w")  # closed in the finally below
            fcntl.flock(self._lock_fh, fcntl.LOCK_EX)
        self._lock_depth += 1
        try:
            yield
        finally:
            self._lock_depth -= 1
            if self._lock_depth == 0 and self._lock_fh is not None:
                fcntl.flock(self._lock_fh, fcntl.LOCK_UN)
                self._lock_fh.close()
                self._lock_fh = None

    def _load(self) -> ClusterState | None:
        """The recorded state, None without one; raises :class:`UnreadableState`."""
        return load_state(self.paths.state_file)

    def _save(self, state: ClusterState) -> None:
        save_state(self.paths.state_file, state)

    def _require_state(self) -> ClusterState:
        with contextlib.suppress(UnreadableState):
            state = self._load()
            if state is not None:
                return state
        raise DevClusterError(f"no dev cluster in {self.state_dir}; run `modelreg dev-cluster up`")

    def _component(self, state: ClusterState, name: str) -> Component:
        return plane(self.paths, state.ports)[name]

    def _alive(self, state: ClusterState, name: str) -> bool:
        proc = state.components.get(name)
        return proc is not None and self._component(state, name).alive(proc)

    # -- waiting --------------------------------------------------------------------------------

    def _wait_for(
        self,
        state: ClusterState,
        what: str,
        check: Callable[[], bool],
        watch: Sequence[str],
        timeout: float,
        blame: str,
    ) -> None:
        """Poll ``check`` until true; fail fast (with a log tail) if a watched component dies."""
        deadline = time.monotonic() + timeout
        delay = 0.05
        while True:
            if check():
                return
            for component in watch:
                if not self._alive(state, component):
                    log_file = self.paths.log_file(component)
                    hint = process.last_error(log_file)
                    raise DevClusterError(
                        f"{component} exited while waiting for {what} (log: {log_file})"
                        + (f": {hint}" if hint else ""),
                        f"last lines of {log_file}:\n{process.tail(log_file)}",
                    )
            if time.monotonic() >= deadline:
                log_file = self.paths.log_file(blame)
                hint = process.last_error(log_file)
                raise DevClusterError(
                    f"timed out after {timeout:.0f}s waiting for {what} (log: {log_file})"
                    + (f"; last error: {hint}" if hint else ""),
                    f"last lines of {log_file}:\n{process.tail(log_file)}",
                )
            time.sleep(delay)
            delay = min(delay * 1.5, 0.5)

    def _wait_component(self, state: ClusterState, name: str, timeout: float) -> None:
        """Wait for one component's own readiness probe, failing fast if it exits."""
        component = self._component(state, name)
        self._wait_for(state, component.readiness, component.ready, [name], timeout, name)

    # -- component processes --------------------------------------------------------------------

    def _spawn(self, state: ClusterState, name: str) -> int:
        pid = self._component(state, name).start(state.components[name])
        self._save(state)
        return pid

    def _stop(self, state: ClusterState, name: str, sig: int, grace: float) -> None:
        proc = state.components.get(name)
        if proc is None or not proc.pid:
            return
        self._component(state, name).stop(proc, sig, grace)
        if self.paths.state_file.exists():
            self._save(state)

    # -- lifecycle ------------------------------------------------------------------------------

    def _check_running(self, state: ClusterState) -> str | None:
        """None when the recorded cluster is fully up, else the reason it is not."""
        dead = [c for c in COMPONENTS if not self._alive(state, c)]
        if dead:
            return f"not running: {', '.join(dead)}"
        if not self.paths.admin_kubeconfig.exists():
            return "kubeconfig is missing"
        try:
            ready = self._component(state, APISERVER).ready()
        except (OSError, ssl.SSLError) as exc:  # PKI files missing or unreadable
            return f"cannot probe the apiserver: {exc}"
        if not ready:
            return f"{state.server}/readyz is not OK"
        return None

    def _info(self, state: ClusterState, reused: bool, seconds: float) -> ClusterInfo:
        return ClusterInfo(
            kubeconfig=self.paths.admin_kubeconfig,
            server=state.server,
            state_dir=self.state_dir,
            k8s_version=state.k8s_version,
            etcd_version=state.etcd_version,
            reused=reused,
            start_seconds=seconds,
            pids={c: pid for c, pid in state.pids().items() if pid},
        )

    def _clean(self, state: ClusterState | None) -> None:
        """Stop every recorded process and delete the state dir (only if it is ours)."""
        for component in reversed(COMPONENTS):
            if state is not None:
                self._stop(state, component, signal.SIGTERM, process.STOP_GRACE_SECONDS)
        if not self.state_dir.exists():
            return
        ours = self.paths.marker.exists() or self.paths.state_file.exists()
        if not ours and any(self.state_dir.iterdir()):
            raise DevClusterError(
                f"{self.state_dir} exists, is not empty and was not created by modelreg dev-cluster; "
                "refusing to delete it (pick another MODELREG_CLUSTER_DIR)"
            )
        shutil.rmtree(self.state_dir)

    def up(
        self,
        *,
        extra_etcd_args: Sequence[str] = (),
        extra_apiserver_args: Sequence[str] = (),
        extra_controller_manager_args: Sequence[str] = (),
        etcd_compaction: str | None = None,
        timeout: float = 60.0,
        reuse: bool = True,
    ) -> ClusterInfo:
        """Start the control plane, or reuse the one already running in this state dir.

        ``etcd_compaction`` (e.g. ``"5m"``) adds ``--auto-compaction-mode=periodic
        --auto-compaction-retention=<value>`` to etcd. Extra args only apply to a fresh start:
        a reused cluster keeps the arguments it was started with.
        """
        t0 = time.monotonic()
        etcd_args = list(extra_etcd_args)
        if etcd_compaction:
            etcd_args += ["--auto-compaction-mode=periodic", f"--auto-compaction-retention={etcd_compaction}"]
        extra = {
            ETCD: etcd_args,
            APISERVER: list(extra_apiserver_args),
            CONTROLLER_MANAGER: list(extra_controller_manager_args),
        }
        with self._locked():
            try:
                state = self._load()
                found = state is not None
            except UnreadableState:
                state, found = None, True
            if found:
                if not reuse:
                    reason: str | None = "reuse disabled"
                elif state is None:
                    reason = "state.json is missing or unreadable"
                else:
                    reason = self._check_running(state)
                if reason is None and state is not None:
                    if state.extra_args != extra and any(extra.values()):
                        self._progress(
                            "note: reusing the running cluster; its extra arguments differ from the "
                            "requested ones (run `down` first to apply them)"
                        )
                    self._progress(f"reusing running cluster at {state.server}")
                    return self._info(state, reused=True, seconds=time.monotonic() - t0)
                self._progress(f"cleaning up previous cluster state ({reason})")
            self._clean(state)

            bins = ensure_binaries(self.cache_root)
            t_start = time.monotonic()
            try:
                state = self._start_fresh(bins, extra, timeout)
            except BaseException:
                # Leave the logs for inspection; the next up() cleans the stale state.
                with contextlib.suppress(UnreadableState):
                    failed = self._load()
                    for component in reversed(COMPONENTS):
                        if failed is not None:
                            self._stop(failed, component, signal.SIGKILL, 1.0)
                raise
            state.cold_start_seconds = round(time.monotonic() - t_start, 3)
            self._save(state)
            elapsed = time.monotonic() - t0
            self._progress(f"ready in {elapsed:.1f}s: {state.server}")
            return self._info(state, reused=False, seconds=elapsed)

    def _start_fresh(self, bins: Binaries, extra: dict[str, list[str]], timeout: float) -> ClusterState:
        paths = self.paths
        self.state_dir.mkdir(parents=True, exist_ok=True)
        paths.marker.write_text("created by `modelreg dev-cluster up`; `down` deletes it\n")
        paths.logs_dir.mkdir(exist_ok=True)
        paths.run_dir.mkdir(exist_ok=True)
        paths.etcd_data_dir.mkdir(mode=0o700, exist_ok=True)

        self._progress("generating PKI")
        pki.generate(paths.pki)
        ports = Ports(*process.free_ports(4))
        components = plane(paths, ports)
        state = ClusterState(
            k8s_version=bins.k8s_version,
            etcd_version=bins.etcd_version,
            k8s_bin_dir=str(bins.k8s_bin_dir),
            kubectl=str(bins.kubectl),
            server=ports.server,
            ports=ports,
            created_at=time.time(),
            extra_args=extra,
            components={
                name: ProcessState(argv=c.argv(bins, extra[name]), log=str(c.log_file))
                for name, c in components.items()
            },
        )
        self._save(state)

        ca_pem = paths.pki.ca_cert.read_bytes()
        for path, user, cert, key in (
            (paths.admin_kubeconfig, ADMIN_USER, paths.pki.admin_cert, paths.pki.admin_key),
            (
                paths.controller_manager_kubeconfig,
                "system:kube-controller-manager",
                paths.pki.kcm_cert,
                paths.pki.kcm_key,
            ),
        ):
            write_kubeconfig(path, state.server, ca_pem, user, cert.read_bytes(), key.read_bytes())

        self._progress(f"starting etcd {bins.etcd_version} on 127.0.0.1:{ports.etcd_client}")
        self._spawn(state, ETCD)
        # kube-apiserver retries etcd by itself, so start it right away and watch both.
        self._progress(f"starting kube-apiserver {bins.k8s_version} on {state.server}")
        self._spawn(state, APISERVER)
        apiserver = components[APISERVER]
        self._wait_for(state, apiserver.readiness, apiserver.ready, [ETCD, APISERVER], timeout, APISERVER)
        ctx = admin_context(paths.pki)
        self._grant_controller_manager(state.server, ctx)
        self._progress("kube-apiserver is ready; starting kube-controller-manager")
        self._spawn(state, CONTROLLER_MANAGER)
        sa_url = f"{state.server}/api/v1/namespaces/default/serviceaccounts/default"
        self._wait_for(
            state,
            "the default ServiceAccount in namespace default (created by kube-controller-manager)",
            lambda: request(sa_url, ctx)[0] == 200,
            COMPONENTS,
            timeout,
            CONTROLLER_MANAGER,
        )
        return state

    def _grant_controller_manager(self, server: str, ctx: ssl.SSLContext) -> None:
        """Bind cluster-admin to system:kube-controller-manager.

        With ``--use-service-account-credentials=false`` every controller (garbage collector,
        namespace deleter, root-CA publisher, clusterrole aggregator, ...) acts as the
        controller-manager's own user, and the bootstrapped ``system:kube-controller-manager``
        ClusterRole only covers what the manager needs when controllers use their own service
        accounts.
        """
        binding = {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "ClusterRoleBinding",
            "metadata": {"name": "modelreg-dev:kube-controller-manager"},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "cluster-admin"},
            "subjects": [
                {
                    "apiGroup": "rbac.authorization.k8s.io",
                    "kind": "User",
                    "name": "system:kube-controller-manager",
                }
            ],
        }
        url = f"{server}/apis/rbac.authorization.k8s.io/v1/clusterrolebindings"
        status, text = request(url, ctx, timeout=10.0, body=binding)
        if status not in (201, 409):
            raise DevClusterError(
                f"could not grant cluster-admin to kube-controller-manager: HTTP {status}",
                text.decode(errors="replace")[:2000],
            )

    def down(self) -> bool:
        """Stop all processes and delete the state dir. Returns whether there was anything to do."""
        with self._locked():
            try:
                state = self._load()
                existed = state is not None or self.state_dir.exists()
            except UnreadableState:
                state, existed = None, True
            self._clean(state)
            return existed

    def status(self) -> ClusterStatus:
        try:
            state = self._load()
        except UnreadableState:
            return ClusterStatus(running=False, state_dir=self.state_dir, detail="state.json is unreadable")
        if state is None:
            return ClusterStatus(running=False, state_dir=self.state_dir, detail="no cluster state")
        reason = self._check_running(state)
        running = reason is None
        return ClusterStatus(
            running=running,
            state_dir=self.state_dir,
            detail="running" if running else str(reason),
            server=state.server,
            kubeconfig=self.paths.admin_kubeconfig,
            k8s_version=state.k8s_version,
            etcd_version=state.etcd_version,
            pids=state.pids(),
            alive={c: self._alive(state, c) for c in COMPONENTS},
            uptime_seconds=round(time.time() - state.created_at, 1) if running and state.created_at else None,
            cold_start_seconds=state.cold_start_seconds,
        )

    def env(self) -> list[str]:
        """Shell lines that point ``KUBECONFIG`` and ``kubectl`` at this cluster."""
        st = self.status()
        if not st.running:
            raise DevClusterError(f"no dev cluster is running ({st.detail}); run `modelreg dev-cluster up`")
        bin_dir = self._require_state().k8s_bin_dir or str(binaries(self.cache_root).k8s_bin_dir)
        return [
            f"export KUBECONFIG={shlex.quote(str(self.paths.admin_kubeconfig))}",
            f'export PATH={shlex.quote(bin_dir)}:"$PATH"',
        ]

    def wait_ready(self, timeout: float = 60.0) -> None:
        """Wait until kube-apiserver answers /readyz (e.g. after restarting etcd)."""
        self._wait_component(self._require_state(), APISERVER, timeout)

    # -- fault injection ------------------------------------------------------------------------

    def stop_component(
        self, component: str, *, sig: int = signal.SIGTERM, grace: float = process.STOP_GRACE_SECONDS
    ) -> None:
        """Stop one component (SIGTERM, escalating to SIGKILL after ``grace`` seconds)."""
        if component not in COMPONENTS:
            raise ValueError(f"unknown component {component!r}; expected one of {COMPONENTS}")
        with self._locked():
            self._stop(self._require_state(), component, sig, grace)

    def start_component(self, component: str, *, wait: bool = True, timeout: float = 60.0) -> int:
        """Start a stopped component with its original command line (same ports, same data dir).

        With ``wait``: etcd waits for its /health, then (if the apiserver runs) for apiserver /readyz,
        allowing at least 150 s for gRPC reconnect backoff after a long outage; the apiserver waits
        for /readyz, the controller-manager for its /healthz.
        """
        if component not in COMPONENTS:
            raise ValueError(f"unknown component {component!r}; expected one of {COMPONENTS}")
        with self._locked():
            state = self._require_state()
            if self._alive(state, component):
                raise DevClusterError(f"{component} is already running (pid {state.components[component].pid})")
            pid = self._spawn(state, component)
            if wait:
                self._wait_component(state, component, timeout)
                if component == ETCD and self._alive(state, APISERVER):
                    # After a long etcd outage the apiserver's gRPC reconnect backoff (up to 120 s)
                    # dominates; give it that long at least.
                    self._wait_component(state, APISERVER, max(timeout, ETCD_RECONNECT_SECONDS))
            return pid

    def restart_component(self, component: str, *, wait: bool = True, timeout: float = 60.0) -> int:
        with self._locked():
            self.stop_component(component)
            return self.start_component(component, wait=wait, timeout=timeout)

    # Shorthands the fault tests use.

    def kill_apiserver(self) -> None:
        """SIGKILL kube-apiserver (no graceful shutdown)."""
        self.stop_component(APISERVER, sig=signal.SIGKILL)

    def stop_apiserver(self) -> None:
        self.stop_component(APISERVER)

    def start_apiserver(self, *, wait: bool = True, timeout: float = 60.0) -> int:
        return self.start_component(APISERVER, wait=wait, timeout=timeout)

    def restart_apiserver(self, *, wait: bool = True, timeout: float = 60.0) -> int:
        return self.restart_component(APISERVER, wait=wait, timeout=timeout)

    def kill_etcd(self) -> None:
        """SIGKILL etcd (kube-apiserver keeps running and reports not-ready)."""
        self.stop_component(ETCD, sig=signal.SIGKILL)

    def start_etcd(self, *, wait: bool = True, timeout: float = 60.0) -> int:
        return self.start_component(ETCD, wait=wait, timeout=timeout)

    # -- credentials ----------------------------------------------------------------------------

    def issue_client_kubeconfig(self, user: str, groups: Sequence[str], path: Path | str) -> Path:
        """Write a kubeconfig for ``user`` in ``groups`` (a CA-signed client cert, embedded).

        For RBAC tests without impersonation. The context is named ``modelreg-dev`` like the
        admin one.
        """
        state = self._require_state()
        cert_pem, key_pem = pki.issue_client_cert(self.paths.pki, user, list(groups))
        out = Path(path)
        out.parent.mkdir(parents=True, exist_ok=True)
        return write_kubeconfig(out, state.server, self.paths.pki.ca_cert.read_bytes(), user, cert_pem, key_pem)
