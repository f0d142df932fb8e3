"""A local Kubernetes control plane (etcd + kube-apiserver + kube-controller-manager).

Similar in spirit to controller-runtime's envtest, but with kube-controller-manager running so
garbage collection, namespace deletion, service accounts and workload controllers behave like a
real cluster. There is no kubelet or scheduler: pods are stored but never run.

All state lives in one directory (``$MODELREG_CLUSTER_DIR`` or
``~/.cache/modelreg/clusters/default``): PKI, etcd data, logs, pid files, ``state.json`` and the
admin ``kubeconfig``. Processes run in their own sessions, so a cluster started by the CLI
outlives it and is reused by later ``up()`` calls from any process.
"""

from __future__ import annotations

import base64
import contextlib
import fcntl
import json
import logging
import os
import random
import re
import shlex
import shutil
import signal
import socket
import ssl
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import yaml

from modelreg.devcluster import pki
from modelreg.devcluster.binaries import Binaries, binaries, default_cache_root, ensure_binaries
from modelreg.devcluster.errors import DevClusterError

log = logging.getLogger("modelreg.devcluster")

ETCD = "etcd"
APISERVER = "kube-apiserver"
CONTROLLER_MANAGER = "kube-controller-manager"
COMPONENTS = (ETCD, APISERVER, CONTROLLER_MANAGER)  # start order; stop order is reversed

CLUSTER_NAME = "modelreg-dev"
CONTEXT_NAME = "modelreg-dev"
ADMIN_USER = "modelreg-admin"
SERVICE_CLUSTER_IP_RANGE = "10.0.0.0/24"
ETCD_QUOTA_BACKEND_BYTES = 4 * 1024**3
STATE_FORMAT = 1
MARKER = ".modelreg-devcluster"
STOP_GRACE_SECONDS = 5.0
LOG_TAIL_LINES = 15
ETCD_RECONNECT_SECONDS = 150.0

ProgressFn = Callable[[str], None]

# Popen objects of the processes this interpreter started, keyed by pid, so they get reaped (and
# a dead child is not mistaken for a live zombie). Module-level: shared by all DevCluster objects.
_CHILDREN: dict[int, subprocess.Popen[bytes]] = {}


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
    pids: dict[str, int] = field(default_factory=dict)
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


# ----------------------------------------------------------------------------------------------
# process helpers


def _pid_alive(pid: int, exe: str | None = None) -> bool:
    """Whether ``pid`` runs (not a zombie) and, when ``exe`` is given, is that executable."""
    child = _CHILDREN.get(pid)
    if child is not None:
        return child.poll() is None
    proc = Path(f"/proc/{pid}")
    if not Path("/proc/self").exists():  # not Linux: best effort
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        return True
    try:
        stat = (proc / "stat").read_text()
        argv0 = (proc / "cmdline").read_bytes().split(b"\0", 1)[0].decode(errors="replace")
    except OSError:
        return False
    if stat.rsplit(")", 1)[-1].split()[0] in ("Z", "X"):
        return False
    return exe is None or argv0 == exe


def _signal(pid: int, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, sig)


def _wait_gone(pid: int, exe: str | None, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not _pid_alive(pid, exe):
            return True
        time.sleep(0.05)
    return not _pid_alive(pid, exe)


def _terminate(pid: int, exe: str | None, *, sig: int = signal.SIGTERM, grace: float = STOP_GRACE_SECONDS) -> None:
    """Send ``sig``; escalate to SIGKILL after ``grace`` seconds; reap our own children."""
    if _pid_alive(pid, exe):
        _signal(pid, sig)
        if not _wait_gone(pid, exe, grace) and sig != signal.SIGKILL:
            _signal(pid, signal.SIGKILL)
            _wait_gone(pid, exe, 5.0)
    child = _CHILDREN.pop(pid, None)
    if child is not None:
        with contextlib.suppress(subprocess.TimeoutExpired):
            child.wait(timeout=5.0)


def _free_ports(count: int) -> list[int]:
    """Distinct free TCP ports on 127.0.0.1, below the kernel's ephemeral range.

    Components are restarted on the same ports (fault injection, reuse); a port
    from the ephemeral range could meanwhile be taken by any outgoing connection,
    so ports are drawn at random from 20000-32767 and probed by binding.
    """
    low, high = 20000, _ephemeral_low() - 1
    rng = random.SystemRandom()
    socks: list[socket.socket] = []
    try:
        for _ in range(2000):
            if len(socks) == count:
                break
            port = rng.randint(low, high)
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                s.close()
                continue
            socks.append(s)
        while len(socks) < count:  # a crowded range: fall back to any free port
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.bind(("127.0.0.1", 0))
            socks.append(s)
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def _ephemeral_low() -> int:
    try:
        return int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768


def _tail(path: Path, lines: int = LOG_TAIL_LINES) -> str:
    try:
        with path.open("rb") as fh:
            fh.seek(0, os.SEEK_END)
            fh.seek(max(0, fh.tell() - 64 * 1024))
            text = fh.read().decode(errors="replace")
    except OSError:
        return "(no log)"
    return "\n".join(text.splitlines()[-lines:]) or "(empty log)"


_ERROR_LINE = re.compile(r'^(Error:|error:|[EF]\d{4} |\{"level":"(error|fatal|panic)")')


def _last_error(path: Path) -> str | None:
    """The last error-looking line of the component's latest run, shortened, or None."""
    text = _tail(path, lines=400)
    run = text.rsplit("==== ", 1)[-1] if "==== " in text else text
    errors = [line.strip() for line in run.splitlines() if _ERROR_LINE.match(line)]
    if not errors:
        return None
    line = errors[-1]
    return line if len(line) <= 300 else line[:297] + "..."


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def kubeconfig_dict(server: str, ca_pem: bytes, user: str, cert_pem: bytes, key_pem: bytes) -> dict[str, Any]:
    """A kubeconfig with embedded certificate data (Kopf and kubectl both accept it)."""
    return {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": CLUSTER_NAME, "cluster": {"server": server, "certificate-authority-data": _b64(ca_pem)}}],
        "users": [
            {
                "name": user,
                "user": {"client-certificate-data": _b64(cert_pem), "client-key-data": _b64(key_pem)},
            }
        ],
        "contexts": [{"name": CONTEXT_NAME, "context": {"cluster": CLUSTER_NAME, "user": user}}],
        "current-context": CONTEXT_NAME,
        "preferences": {},
    }


def _write_private_text(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    pki.write_private(tmp, text.encode())
    os.replace(tmp, path)


# ----------------------------------------------------------------------------------------------


class DevCluster:
    """Driver for one local control plane, identified by its state directory."""

    def __init__(
        self,
        state_dir: Path | str | None = None,
        cache_root: Path | str | None = None,
        *,
        progress: ProgressFn | None = None,
    ) -> None:
        self.state_dir = Path(state_dir).expanduser() if state_dir else default_state_dir()
        self.state_dir = self.state_dir.absolute()
        self.cache_root = Path(cache_root).expanduser() if cache_root else default_cache_root()
        self._progress = progress or log.info
        self._lock_depth = 0
        self._lock_fh: Any = None

    # -- paths ----------------------------------------------------------------------------------

    @property
    def pki(self) -> pki.PkiPaths:
        return pki.PkiPaths(self.state_dir / "pki")

    @property
    def state_file(self) -> Path:
        return self.state_dir / "state.json"

    @property
    def admin_kubeconfig(self) -> Path:
        return self.state_dir / "kubeconfig"

    kubeconfig = admin_kubeconfig

    @property
    def controller_manager_kubeconfig(self) -> Path:
        return self.state_dir / "kube-controller-manager.kubeconfig"

    @property
    def ca_cert(self) -> Path:
        return self.pki.ca_cert

    @property
    def ca_key(self) -> Path:
        return self.pki.ca_key

    @property
    def logs_dir(self) -> Path:
        return self.state_dir / "logs"

    @property
    def etcd_data_dir(self) -> Path:
        return self.state_dir / "etcd-data"

    def log_file(self, component: str) -> Path:
        return self.logs_dir / f"{component}.log"

    def pid_file(self, component: str) -> Path:
        return self.state_dir / "run" / f"{component}.pid"

    @property
    def binaries(self) -> Binaries:
        """Binary paths for the pinned versions (not built by this property)."""
        return binaries(self.cache_root)

    @property
    def kubectl_path(self) -> Path:
        return self.binaries.kubectl

    @property
    def server(self) -> str:
        return cast(str, self._require_state()["server"])

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
            if self._lock_depth == 0:
                fcntl.flock(self._lock_fh, fcntl.LOCK_UN)
                self._lock_fh.close()
                self._lock_fh = None

    def _load_state(self) -> dict[str, Any] | None:
        try:
            data = json.loads(self.state_file.read_text())
        except FileNotFoundError:
            return None
        except (OSError, ValueError):
            return {}  # corrupt: treated as stale
        return data if isinstance(data, dict) and data.get("format") == STATE_FORMAT else {}

    def _save_state(self, state: dict[str, Any]) -> None:
        tmp = self.state_file.with_name(".state.json.tmp")
        tmp.write_text(json.dumps(state, indent=2, sort_keys=True) + "\n")
        os.replace(tmp, self.state_file)

    def _require_state(self) -> dict[str, Any]:
        state = self._load_state()
        if not state:
            raise DevClusterError(f"no dev cluster in {self.state_dir}; run `modelreg dev-cluster up`")
        return state

    def _component_alive(self, state: dict[str, Any], component: str) -> bool:
        entry = state.get("components", {}).get(component)
        if not entry or not entry.get("pid"):
            return False
        return _pid_alive(int(entry["pid"]), entry["argv"][0])

    # -- HTTP probes ----------------------------------------------------------------------------

    def _admin_ssl_context(self) -> ssl.SSLContext:
        ctx = ssl.create_default_context(cafile=str(self.ca_cert))
        ctx.load_cert_chain(str(self.pki.admin_cert), str(self.pki.admin_key))
        return ctx

    def _get(self, url: str, ctx: ssl.SSLContext | None, timeout: float = 2.0, body: Any = None) -> tuple[int, bytes]:
        """GET ``url`` (POST ``body`` as JSON when given); (status, body), or (0, error text)
        when the server is unreachable."""
        request = urllib.request.Request(url)
        if body is not None:
            request.data = json.dumps(body).encode()
            request.add_header("Content-Type", "application/json")
        try:
            with urllib.request.urlopen(request, context=ctx, timeout=timeout) as resp:
                return resp.status, resp.read()
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read()
        except (urllib.error.URLError, OSError, ssl.SSLError) as exc:
            return 0, str(exc).encode()

    def _apiserver_ready(self, state: dict[str, Any], timeout: float = 2.0) -> bool:
        status, _ = self._get(f"{state['server']}/readyz", self._admin_ssl_context(), timeout)
        return status == 200

    def _wait_for(
        self,
        state: dict[str, Any],
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
                if not self._component_alive(state, component):
                    hint = _last_error(self.log_file(component))
                    raise DevClusterError(
                        f"{component} exited while waiting for {what} (log: {self.log_file(component)})"
                        + (f": {hint}" if hint else ""),
                        f"last lines of {self.log_file(component)}:\n{_tail(self.log_file(component))}",
                    )
            if time.monotonic() >= deadline:
                hint = _last_error(self.log_file(blame))
                raise DevClusterError(
                    f"timed out after {timeout:.0f}s waiting for {what} (log: {self.log_file(blame)})"
                    + (f"; last error: {hint}" if hint else ""),
                    f"last lines of {self.log_file(blame)}:\n{_tail(self.log_file(blame))}",
                )
            time.sleep(delay)
            delay = min(delay * 1.5, 0.5)

    # -- component processes --------------------------------------------------------------------

    def _argv(self, bins: Binaries, ports: dict[str, int], extra: dict[str, list[str]]) -> dict[str, list[str]]:
        p = self.pki
        etcd_client = f"http://127.0.0.1:{ports['etcd_client']}"
        etcd_peer = f"http://127.0.0.1:{ports['etcd_peer']}"
        server = f"https://127.0.0.1:{ports['apiserver']}"
        return {
            ETCD: [
                str(bins.etcd),
                "--name=default",
                f"--data-dir={self.etcd_data_dir}",
                f"--listen-client-urls={etcd_client}",
                f"--advertise-client-urls={etcd_client}",
                f"--listen-peer-urls={etcd_peer}",
                f"--initial-advertise-peer-urls={etcd_peer}",
                f"--initial-cluster=default={etcd_peer}",
                "--initial-cluster-state=new",
                "--unsafe-no-fsync=true",
                f"--quota-backend-bytes={ETCD_QUOTA_BACKEND_BYTES}",
                "--log-level=warn",
                *extra.get(ETCD, []),
            ],
            APISERVER: [
                str(bins.kube_apiserver),
                f"--etcd-servers={etcd_client}",
                f"--cert-dir={p.dir}",
                f"--tls-cert-file={p.apiserver_cert}",
                f"--tls-private-key-file={p.apiserver_key}",
                f"--client-ca-file={p.ca_cert}",
                f"--secure-port={ports['apiserver']}",
                "--bind-address=127.0.0.1",
                "--advertise-address=127.0.0.1",
                # 1.37 refuses a loopback advertise address with the (default) lease endpoint
                # reconciler; nothing in-cluster dials the `kubernetes` Service here anyway.
                "--endpoint-reconciler-type=none",
                f"--service-cluster-ip-range={SERVICE_CLUSTER_IP_RANGE}",
                "--allow-privileged=true",
                "--authorization-mode=RBAC",
                f"--service-account-issuer={server}/",
                f"--service-account-key-file={p.sa_pub}",
                f"--service-account-signing-key-file={p.sa_key}",
                *extra.get(APISERVER, []),
            ],
            CONTROLLER_MANAGER: [
                str(bins.kube_controller_manager),
                f"--kubeconfig={self.controller_manager_kubeconfig}",
                "--controllers=*",
                f"--service-account-private-key-file={p.sa_key}",
                f"--root-ca-file={p.ca_cert}",
                "--leader-elect=false",
                "--use-service-account-credentials=false",
                "--bind-address=127.0.0.1",
                f"--secure-port={ports['controller_manager']}",
                *extra.get(CONTROLLER_MANAGER, []),
            ],
        }

    def _spawn(self, state: dict[str, Any], component: str) -> int:
        entry = state["components"][component]
        argv: list[str] = entry["argv"]
        log_path = self.log_file(component)
        log_path.parent.mkdir(parents=True, exist_ok=True)
        self.pid_file(component).parent.mkdir(parents=True, exist_ok=True)
        with log_path.open("ab") as log_fh:
            stamp = time.strftime("%Y-%m-%dT%H:%M:%S%z")
            log_fh.write(f"==== {stamp} modelreg dev-cluster starting: {shlex.join(argv)}\n".encode())
            log_fh.flush()
            try:
                proc = subprocess.Popen(
                    argv,
                    stdin=subprocess.DEVNULL,
                    stdout=log_fh,
                    stderr=subprocess.STDOUT,
                    cwd=self.state_dir,
                    start_new_session=True,
                    close_fds=True,
                )
            except OSError as exc:
                raise DevClusterError(f"cannot start {component} ({argv[0]}): {exc}") from None
        _CHILDREN[proc.pid] = proc
        entry["pid"] = proc.pid
        entry["started_at"] = time.time()
        self.pid_file(component).write_text(f"{proc.pid}\n")
        self._save_state(state)
        return proc.pid

    def _stop(self, state: dict[str, Any], component: str, sig: int, grace: float) -> None:
        entry = state.get("components", {}).get(component)
        if not entry or not entry.get("pid"):
            return
        _terminate(int(entry["pid"]), entry["argv"][0], sig=sig, grace=grace)
        entry["pid"] = None
        with contextlib.suppress(FileNotFoundError):
            self.pid_file(component).unlink()
        if self.state_file.exists():
            self._save_state(state)

    def _wait_component(self, state: dict[str, Any], component: str, timeout: float) -> None:
        if component == ETCD:
            url = f"http://127.0.0.1:{state['ports']['etcd_client']}/health"

            def etcd_ok() -> bool:
                status, body = self._get(url, None)
                return status == 200 and b'"true"' in body

            self._wait_for(state, "etcd /health", etcd_ok, [ETCD], timeout, ETCD)
        elif component == APISERVER:
            self._wait_for(
                state,
                "kube-apiserver /readyz",
                lambda: self._apiserver_ready(state),
                [APISERVER],
                timeout,
                APISERVER,
            )
        else:
            url = f"https://127.0.0.1:{state['ports']['controller_manager']}/healthz"
            insecure = ssl.create_default_context()
            insecure.check_hostname = False
            insecure.verify_mode = ssl.CERT_NONE  # self-signed serving cert; liveness probe only
            self._wait_for(
                state,
                "kube-controller-manager /healthz",
                lambda: self._get(url, insecure)[0] == 200,
                [CONTROLLER_MANAGER],
                timeout,
                CONTROLLER_MANAGER,
            )

    # -- lifecycle ------------------------------------------------------------------------------

    def _check_running(self, state: dict[str, Any]) -> str | None:
        """None when the recorded cluster is fully up, else the reason it is not."""
        if not state or "components" not in state:
            return "state.json is missing or unreadable"
        dead = [c for c in COMPONENTS if not self._component_alive(state, c)]
        if dead:
            return f"not running: {', '.join(dead)}"
        if not self.admin_kubeconfig.exists():
            return "kubeconfig is missing"
        try:
            ready = self._apiserver_ready(state)
        except (OSError, ssl.SSLError) as exc:  # PKI files missing or unreadable
            return f"cannot probe the apiserver: {exc}"
        if not ready:
            return f"{state['server']}/readyz is not OK"
        return None

    def _info(self, state: dict[str, Any], reused: bool, seconds: float) -> ClusterInfo:
        return ClusterInfo(
            kubeconfig=self.admin_kubeconfig,
            server=state["server"],
            state_dir=self.state_dir,
            k8s_version=state["k8s_version"],
            etcd_version=state["etcd_version"],
            reused=reused,
            start_seconds=seconds,
            pids={c: state["components"][c]["pid"] for c in COMPONENTS},
        )

    def _clean(self, state: dict[str, Any] | None) -> None:
        """Stop every recorded process and delete the state dir (only if it is ours)."""
        for component in reversed(COMPONENTS):
            if state and state.get("components"):
                self._stop(state, component, signal.SIGTERM, STOP_GRACE_SECONDS)
        if not self.state_dir.exists():
            return
        ours = (self.state_dir / MARKER).exists() or self.state_file.exists()
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
            state = self._load_state()
            if state is not None:
                reason = self._check_running(state) if reuse else "reuse disabled"
                if reason is None:
                    if state.get("extra_args") != extra and any(extra.values()):
                        self._progress(
                            "note: reusing the running cluster; its extra arguments differ from the "
                            "requested ones (run `down` first to apply them)"
                        )
                    self._progress(f"reusing running cluster at {state['server']}")
                    return self._info(state, reused=True, seconds=time.monotonic() - t0)
                self._progress(f"cleaning up previous cluster state ({reason})")
            self._clean(state)

            bins = ensure_binaries(self.cache_root)
            t_start = time.monotonic()
            try:
                state = self._start_fresh(bins, extra, timeout)
            except BaseException:
                # Leave the logs for inspection; the next up() cleans the stale state.
                failed = self._load_state()
                for component in reversed(COMPONENTS):
                    if failed and failed.get("components"):
                        self._stop(failed, component, signal.SIGKILL, 1.0)
                raise
            state["cold_start_seconds"] = round(time.monotonic() - t_start, 3)
            self._save_state(state)
            elapsed = time.monotonic() - t0
            self._progress(f"ready in {elapsed:.1f}s: {state['server']}")
            return self._info(state, reused=False, seconds=elapsed)

    def _start_fresh(self, bins: Binaries, extra: dict[str, list[str]], timeout: float) -> dict[str, Any]:
        self.state_dir.mkdir(parents=True, exist_ok=True)
        (self.state_dir / MARKER).write_text("created by `modelreg dev-cluster up`; `down` deletes it\n")
        for sub in ("logs", "run"):
            (self.state_dir / sub).mkdir(exist_ok=True)
        self.etcd_data_dir.mkdir(mode=0o700, exist_ok=True)

        self._progress("generating PKI")
        pki.generate(self.pki)
        etcd_client, etcd_peer, apiserver, kcm = _free_ports(4)
        ports = {
            "etcd_client": etcd_client,
            "etcd_peer": etcd_peer,
            "apiserver": apiserver,
            "controller_manager": kcm,
        }
        server = f"https://127.0.0.1:{apiserver}"
        argv = self._argv(bins, ports, extra)
        state: dict[str, Any] = {
            "format": STATE_FORMAT,
            "k8s_version": bins.k8s_version,
            "etcd_version": bins.etcd_version,
            "k8s_bin_dir": str(bins.k8s_bin_dir),
            "kubectl": str(bins.kubectl),
            "server": server,
            "ports": ports,
            "created_at": time.time(),
            "extra_args": extra,
            "components": {c: {"pid": None, "argv": argv[c], "log": str(self.log_file(c))} for c in COMPONENTS},
        }
        self._save_state(state)

        ca_pem = self.pki.ca_cert.read_bytes()
        _write_private_text(
            self.admin_kubeconfig,
            yaml.safe_dump(
                kubeconfig_dict(
                    server,
                    ca_pem,
                    ADMIN_USER,
                    self.pki.admin_cert.read_bytes(),
                    self.pki.admin_key.read_bytes(),
                ),
                sort_keys=False,
            ),
        )
        _write_private_text(
            self.controller_manager_kubeconfig,
            yaml.safe_dump(
                kubeconfig_dict(
                    server,
                    ca_pem,
                    "system:kube-controller-manager",
                    self.pki.kcm_cert.read_bytes(),
                    self.pki.kcm_key.read_bytes(),
                ),
                sort_keys=False,
            ),
        )

        self._progress(f"starting etcd {bins.etcd_version} on 127.0.0.1:{etcd_client}")
        self._spawn(state, ETCD)
        # kube-apiserver retries etcd by itself, so start it right away and watch both.
        self._progress(f"starting kube-apiserver {bins.k8s_version} on {server}")
        self._spawn(state, APISERVER)
        self._wait_for(
            state,
            "kube-apiserver /readyz",
            lambda: self._apiserver_ready(state),
            [ETCD, APISERVER],
            timeout,
            APISERVER,
        )
        ctx = self._admin_ssl_context()
        self._grant_controller_manager(server, ctx)
        self._progress("kube-apiserver is ready; starting kube-controller-manager")
        self._spawn(state, CONTROLLER_MANAGER)
        sa_url = f"{server}/api/v1/namespaces/default/serviceaccounts/default"
        self._wait_for(
            state,
            "the default ServiceAccount in namespace default (created by kube-controller-manager)",
            lambda: self._get(sa_url, ctx)[0] == 200,
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
        status, text = self._get(url, ctx, timeout=10.0, body=binding)
        if status not in (201, 409):
            raise DevClusterError(
                f"could not grant cluster-admin to kube-controller-manager: HTTP {status}",
                text.decode(errors="replace")[:2000],
            )

    def down(self) -> bool:
        """Stop all processes and delete the state dir. Returns whether there was anything to do."""
        with self._locked():
            state = self._load_state()
            existed = state is not None or self.state_dir.exists()
            self._clean(state)
            return existed

    def status(self) -> ClusterStatus:
        state = self._load_state()
        if state is None:
            return ClusterStatus(running=False, state_dir=self.state_dir, detail="no cluster state")
        if not state:
            return ClusterStatus(running=False, state_dir=self.state_dir, detail="state.json is unreadable")
        reason = self._check_running(state)
        created = state.get("created_at")
        running = reason is None
        return ClusterStatus(
            running=running,
            state_dir=self.state_dir,
            detail="running" if running else str(reason),
            server=state.get("server"),
            kubeconfig=self.admin_kubeconfig,
            k8s_version=state.get("k8s_version"),
            etcd_version=state.get("etcd_version"),
            pids={c: e.get("pid") for c, e in state.get("components", {}).items()},
            alive={c: self._component_alive(state, c) for c in COMPONENTS},
            uptime_seconds=round(time.time() - created, 1) if running and created else None,
            cold_start_seconds=state.get("cold_start_seconds"),
        )

    def env(self) -> list[str]:
        """Shell lines that point ``KUBECONFIG`` and ``kubectl`` at this cluster."""
        st = self.status()
        if not st.running:
            raise DevClusterError(f"no dev cluster is running ({st.detail}); run `modelreg dev-cluster up`")
        bin_dir = self._require_state().get("k8s_bin_dir") or str(self.binaries.k8s_bin_dir)
        return [
            f"export KUBECONFIG={shlex.quote(str(self.admin_kubeconfig))}",
            f'export PATH={shlex.quote(bin_dir)}:"$PATH"',
        ]

    def wait_ready(self, timeout: float = 60.0) -> None:
        """Wait until kube-apiserver answers /readyz (e.g. after restarting etcd)."""
        state = self._require_state()
        self._wait_for(
            state,
            "kube-apiserver /readyz",
            lambda: self._apiserver_ready(state),
            [APISERVER],
            timeout,
            APISERVER,
        )

    # -- fault injection ------------------------------------------------------------------------

    def stop_component(self, component: str, *, sig: int = signal.SIGTERM, grace: float = STOP_GRACE_SECONDS) -> None:
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
            if self._component_alive(state, component):
                raise DevClusterError(f"{component} is already running (pid {state['components'][component]['pid']})")
            pid = self._spawn(state, component)
            if wait:
                self._wait_component(state, component, timeout)
                if component == ETCD and self._component_alive(state, APISERVER):
                    # After a long etcd outage the apiserver's gRPC reconnect backoff (up to 120 s)
                    # dominates; give it that long at least.
                    self._wait_component(state, APISERVER, max(timeout, ETCD_RECONNECT_SECONDS))
            return pid

    def restart_component(self, component: str, *, wait: bool = True, timeout: float = 60.0) -> int:
        with self._locked():
            self.stop_component(component)
            return self.start_component(component, wait=wait, timeout=timeout)

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

    def stop_etcd(self) -> None:
        self.stop_component(ETCD)

    def start_etcd(self, *, wait: bool = True, timeout: float = 60.0) -> int:
        return self.start_component(ETCD, wait=wait, timeout=timeout)

    def restart_etcd(self, *, wait: bool = True, timeout: float = 60.0) -> int:
        return self.restart_component(ETCD, wait=wait, timeout=timeout)

    def kill_controller_manager(self) -> None:
        self.stop_component(CONTROLLER_MANAGER, sig=signal.SIGKILL)

    def stop_controller_manager(self) -> None:
        self.stop_component(CONTROLLER_MANAGER)

    def start_controller_manager(self, *, wait: bool = True, timeout: float = 60.0) -> int:
        return self.start_component(CONTROLLER_MANAGER, wait=wait, timeout=timeout)

    def restart_controller_manager(self, *, wait: bool = True, timeout: float = 60.0) -> int:
        return self.restart_component(CONTROLLER_MANAGER, wait=wait, timeout=timeout)

    # -- credentials ----------------------------------------------------------------------------

    def issue_client_kubeconfig(self, user: str, groups: Sequence[str], path: Path | str) -> Path:
        """Write a kubeconfig for ``user`` in ``groups`` (a CA-signed client cert, embedded).

        For RBAC tests without impersonation. The context is named ``modelreg-dev`` like the
        admin one.
        """
        state = self._require_state()
        cert_pem, key_pem = pki.issue_client_cert(self.pki, user, list(groups))
        out = Path(path)
        out.parent.mkdir(parents=True, exist_ok=True)
        doc = kubeconfig_dict(state["server"], self.ca_cert.read_bytes(), user, cert_pem, key_pem)
        _write_private_text(out, yaml.safe_dump(doc, sort_keys=False))
        return out
