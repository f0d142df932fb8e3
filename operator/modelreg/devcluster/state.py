"""What a cluster directory holds: its paths, and ``state.json`` as a typed :class:`ClusterState`.

``state.json`` keeps the layout of format 1 (the first release of the dev cluster), so a cluster
started by an older ``modelreg`` is read, reused and stopped by this one. A file that is not
that layout (corrupt, another format) raises :class:`UnreadableState`: such a cluster is
reported as not running and cleaned up by the next ``up`` or ``down``.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from modelreg.devcluster import pki

STATE_FORMAT = 1
MARKER = ".modelreg-devcluster"


@dataclass(frozen=True)
class ClusterPaths:
    """The files of one cluster, all under ``state_dir``."""

    state_dir: Path

    @property
    def pki(self) -> pki.PkiPaths:
        return pki.PkiPaths(self.state_dir / "pki")

    @property
    def state_file(self) -> Path:
        return self.state_dir / "state.json"

    @property
    def marker(self) -> Path:
        """Written first on a fresh start: the directory is ours to delete."""
        return self.state_dir / MARKER

    @property
    def admin_kubeconfig(self) -> Path:
        return self.state_dir / "kubeconfig"

    @property
    def controller_manager_kubeconfig(self) -> Path:
        return self.state_dir / "kube-controller-manager.kubeconfig"

    @property
    def etcd_data_dir(self) -> Path:
        return self.state_dir / "etcd-data"

    @property
    def logs_dir(self) -> Path:
        return self.state_dir / "logs"

    @property
    def run_dir(self) -> Path:
        return self.state_dir / "run"

    def log_file(self, component: str) -> Path:
        return self.logs_dir / f"{component}.log"

    def pid_file(self, component: str) -> Path:
        return self.run_dir / f"{component}.pid"


@dataclass(frozen=True)
class Ports:
    """The TCP ports on 127.0.0.1, fixed for the cluster's life (restarts reuse them)."""

    etcd_client: int
    etcd_peer: int
    apiserver: int
    controller_manager: int

    @property
    def server(self) -> str:
        """The API server's URL."""
        return f"https://127.0.0.1:{self.apiserver}"

    @property
    def etcd_url(self) -> str:
        return f"http://127.0.0.1:{self.etcd_client}"


@dataclass
class ProcessState:
    """One component's command line, and its process while it runs."""

    argv: list[str]
    log: str
    pid: int | None = None
    started_at: float | None = None

    @property
    def exe(self) -> str:
        return self.argv[0]


@dataclass
class ClusterState:
    """The contents of ``state.json``."""

    k8s_version: str
    etcd_version: str
    k8s_bin_dir: str
    kubectl: str
    server: str
    ports: Ports
    created_at: float
    #: component name -> the extra arguments it was started with (compared on reuse)
    extra_args: dict[str, list[str]]
    #: component name -> its process, in start order
    components: dict[str, ProcessState]
    cold_start_seconds: float | None = None
    format: int = field(default=STATE_FORMAT)

    def pids(self) -> dict[str, int | None]:
        return {name: proc.pid for name, proc in self.components.items()}

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        if data["cold_start_seconds"] is None:  # format 1 adds it once the cluster is ready
            del data["cold_start_seconds"]
        for proc in data["components"].values():
            if proc["started_at"] is None:
                del proc["started_at"]
        return data

    @classmethod
    def from_json(cls, data: Any) -> ClusterState:
        """Parse ``state.json``; :class:`UnreadableState` when it is not format 1."""
        if not isinstance(data, dict) or data.get("format") != STATE_FORMAT:
            got = data.get("format") if isinstance(data, dict) else type(data).__name__
            raise UnreadableState(f"not a format-{STATE_FORMAT} state file (format: {got!r})")
        try:
            return cls(
                k8s_version=str(data["k8s_version"]),
                etcd_version=str(data["etcd_version"]),
                k8s_bin_dir=str(data["k8s_bin_dir"]),
                kubectl=str(data["kubectl"]),
                server=str(data["server"]),
                ports=Ports(**{k: int(v) for k, v in data["ports"].items()}),
                created_at=float(data["created_at"]),
                extra_args={str(k): [str(a) for a in v] for k, v in data["extra_args"].items()},
                components={
                    str(name): ProcessState(
                        argv=[str(a) for a in proc["argv"]],
                        log=str(proc["log"]),
                        pid=int(proc["pid"]) if proc.get("pid") else None,
                        started_at=float(proc["started_at"]) if proc.get("started_at") is not None else None,
                    )
                    for name, proc in data["components"].items()
                },
                cold_start_seconds=(
                    float(data["cold_start_seconds"]) if data.get("cold_start_seconds") is not None else None
                ),
            )
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise UnreadableState(f"malformed state file ({type(exc).__name__}: {exc})") from None


class UnreadableState(Exception):
    """``state.json`` exists but is not a state this version can read."""


def load_state(path: Path) -> ClusterState | None:
    """The state in ``path``; None when there is no file; :class:`UnreadableState` when it
    cannot be read or parsed."""
    try:
        text = path.read_text()
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise UnreadableState(str(exc)) from None
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise UnreadableState(f"not JSON: {exc}") from None
    return ClusterState.from_json(data)


def save_state(path: Path, state: ClusterState) -> None:
    """Write ``state`` to ``path``, replaced atomically."""
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(state.to_json(), indent=2, sort_keys=True) + "\n")
    os.replace(tmp, path)
