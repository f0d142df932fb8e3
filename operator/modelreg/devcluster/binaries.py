"""Locate (and if needed build) the pinned control-plane binaries.

The binaries are built by ``hack/build-control-plane.sh`` into a cache directory outside the
repository; this module only runs the script when one of them is missing.
"""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

from modelreg.devcluster.errors import DevClusterError

VERSIONS_FILE = "versions.env"
BUILD_SCRIPT = "build-control-plane.sh"


def hack_dir() -> Path:
    """The repository's ``hack/`` directory (``$MODELREG_HACK_DIR`` overrides the lookup)."""
    override = os.environ.get("MODELREG_HACK_DIR")
    if override:
        path = Path(override).expanduser().resolve()
        if not (path / VERSIONS_FILE).is_file():
            raise DevClusterError(f"MODELREG_HACK_DIR={override} has no {VERSIONS_FILE}")
        return path
    here = Path(__file__).resolve()
    for parent in here.parents:
        if (parent / "hack" / VERSIONS_FILE).is_file():
            return parent / "hack"
    raise DevClusterError(
        f"cannot find hack/{VERSIONS_FILE} above {here.parent}; set MODELREG_HACK_DIR to the hack directory"
    )


def parse_env_file(path: Path) -> dict[str, str]:
    """Parse simple ``KEY=VALUE`` lines (``#`` comments, optional quotes, optional ``export``)."""
    values: dict[str, str] = {}
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("export "):
            line = line[len("export ") :].strip()
        key, sep, value = line.partition("=")
        if not sep:
            continue
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1]
        elif " #" in value:
            value = value.split(" #", 1)[0].rstrip()
        values[key.strip()] = value
    return values


@dataclass(frozen=True)
class Versions:
    k8s: str
    etcd: str


def pinned_versions() -> Versions:
    """The versions pinned in ``hack/versions.env``."""
    path = hack_dir() / VERSIONS_FILE
    values = parse_env_file(path)
    try:
        return Versions(k8s=values["K8S_VERSION"], etcd=values["ETCD_VERSION"])
    except KeyError as exc:
        raise DevClusterError(f"{path} does not define {exc.args[0]}") from None


def default_cache_root() -> Path:
    env = os.environ.get("MODELREG_CACHE")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "modelreg"


@dataclass(frozen=True)
class Binaries:
    """Paths of the pinned control-plane binaries."""

    k8s_version: str
    etcd_version: str
    kube_apiserver: Path
    kube_controller_manager: Path
    kubectl: Path
    etcd: Path

    @property
    def k8s_bin_dir(self) -> Path:
        return self.kube_apiserver.parent

    def all(self) -> dict[str, Path]:
        return {
            "kube-apiserver": self.kube_apiserver,
            "kube-controller-manager": self.kube_controller_manager,
            "kubectl": self.kubectl,
            "etcd": self.etcd,
        }

    def missing(self) -> list[str]:
        return [name for name, path in self.all().items() if not _is_executable(path)]


def _is_executable(path: Path) -> bool:
    return path.is_file() and os.access(path, os.X_OK)


def binaries(cache_root: Path | None = None) -> Binaries:
    """Where the binaries live (whether or not they exist yet)."""
    root = (cache_root or default_cache_root()).expanduser().resolve()
    versions = pinned_versions()
    k8s_dir = root / f"k8s-{versions.k8s}"
    return Binaries(
        k8s_version=versions.k8s,
        etcd_version=versions.etcd,
        kube_apiserver=k8s_dir / "kube-apiserver",
        kube_controller_manager=k8s_dir / "kube-controller-manager",
        kubectl=k8s_dir / "kubectl",
        etcd=root / f"etcd-{versions.etcd}" / "etcd",
    )


def ensure_binaries(cache_root: Path | None = None, *, build: bool = True, stream: TextIO | None = None) -> Binaries:
    """Return the binary paths, running the build script first when one is missing.

    The script's output is streamed to ``stream`` (default: ``sys.stderr``). The script is the
    one holder of the cache's build lock (``.build.lock``): concurrent callers, and builds run by
    hand, wait for it there and then find the binaries cached, so only one builds. This function
    must not take that lock itself: the script would then wait for its own parent for ever.
    """
    root = (cache_root or default_cache_root()).expanduser().resolve()
    bins = binaries(root)
    if not bins.missing():
        return bins
    if not build:
        raise DevClusterError(
            f"missing control-plane binaries ({', '.join(bins.missing())}) under {root}; "
            "run `modelreg dev-cluster build`"
        )
    out = stream if stream is not None else sys.stderr
    root.mkdir(parents=True, exist_ok=True)
    script = hack_dir() / BUILD_SCRIPT
    out.write(f"building control plane ({', '.join(bins.missing())} missing) with {script}\n")
    out.flush()
    proc = subprocess.Popen(
        ["bash", str(script), str(root)],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        bufsize=1,
    )
    assert proc.stdout is not None
    tail: list[str] = []
    for line in proc.stdout:
        out.write(line)
        out.flush()
        tail = [*tail[-19:], line.rstrip("\n")]
    rc = proc.wait()
    if rc != 0:
        last = tail[-1] if tail else "no output"
        raise DevClusterError(f"{script.name} failed with exit code {rc}: {last}")
    bins = binaries(root)
    if bins.missing():
        raise DevClusterError(f"{BUILD_SCRIPT} finished but {', '.join(bins.missing())} still missing")
    return bins
