"""Fixtures of the fault-injection suite (issue 7): a private control plane, operators to kill.

Every cluster scenario here runs against a **private** local control plane
(``DevCluster(state_dir=<tmp>)``), started once per session and stopped at the
end, never against the shared one:

* the suite kills kube-apiserver and etcd, which would break everybody else's
  tests on a shared cluster;
* an operator someone else runs cluster-wide on the shared cluster would act on
  our namespaces while ours is dead, and a kill test would prove nothing.

Operators run as ``modelreg run`` subprocesses (``OperatorProcess`` from the
integration suite) through :mod:`tests.faults.launcher`, which can make the
process SIGKILL itself right after its N-th write (deterministic crash points).
Each operator is scoped to the test's namespace (``--namespace``).

``--soak`` scales every count up for a manual run (``pytest tests/faults --soak``).
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client, config
from kubernetes.client.rest import ApiException

from modelreg.devcluster import DevCluster, DevClusterError
from modelreg.kube.crds import install_crds
from tests.integration.conftest import REPO
from tests.integration.kit import Cluster, OperatorProcess, free_port, wait_for, wait_operator_live

FAULTS_DIR = Path(__file__).parent
#: The user the suite's operators authenticate as (a client certificate in system:masters), so
#: the API server's audit log tells their writes from the tests' own.
OPERATOR_USER = "fault-operator"
#: Every write to a modelreg.io object, with its request body (the name of a created object is
#: only in the body); nothing else. ``blocking``: a write is logged before it is answered.
AUDIT_POLICY = """\
apiVersion: audit.k8s.io/v1
kind: Policy
omitStages: ["RequestReceived", "ResponseStarted"]
rules:
  - level: Request
    verbs: ["create", "update", "patch", "delete", "deletecollection"]
    resources:
      - group: "modelreg.io"
  - level: None
"""
# Tests that need no cluster at all (pure core, hypothesis).
PURE_MODULES = {"test_core_properties.py"}


# --------------------------------------------------------------------------- options


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--soak",
        action="store_true",
        default=False,
        help="fault suite: scale every count up (>= 100 kill cycles, 3,000 snapshots, ...) for a manual run",
    )


def pytest_configure(config: pytest.Config) -> None:
    if is_soak(config):  # read by modules at import (hypothesis example counts)
        os.environ["MODELREG_FAULT_SOAK"] = "1"


def is_soak(config_: pytest.Config) -> bool:
    try:
        return bool(config_.getoption("--soak", default=False))
    except ValueError:  # option registered late (conftest not loaded at start-up)
        return False


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if not item.path.is_relative_to(FAULTS_DIR):
            continue
        if item.path.name not in PURE_MODULES and item.get_closest_marker("cluster") is None:
            item.add_marker(pytest.mark.cluster)


@pytest.fixture(scope="session")
def soak(request: pytest.FixtureRequest) -> bool:
    return is_soak(request.config)


@pytest.fixture(scope="session")
def scale(soak: bool) -> Callable[[Any, Any], Any]:
    """``scale(ci_value, soak_value)``: the value for this run."""
    return lambda ci, big: big if soak else ci


# --------------------------------------------------------------------------- a private control plane


@dataclass(frozen=True)
class AuditWrite:
    """One write the API server answered, from its audit log."""

    user: str
    verb: str
    plural: str
    name: str
    subresource: str
    code: int
    request: Any = field(default=None, compare=False, repr=False)  # the request body

    @property
    def ok(self) -> bool:
        return 200 <= self.code < 300

    @property
    def by_operator(self) -> bool:
        return self.user == OPERATOR_USER

    def line(self, ns: str) -> str:
        """``VERB path`` as the launcher's write log spells it (``Episode.problems`` reads these)."""
        sub = f"/{self.subresource}" if self.subresource else ""
        return f"{self.verb.upper()} /apis/modelreg.io/v1alpha1/namespaces/{ns}/{self.plural}/{self.name}{sub}"


@dataclass
class FaultCluster:
    """The private control plane of this suite."""

    dev: DevCluster
    kubeconfig: Path
    api: client.ApiClient
    stats: dict[str, int] = field(default_factory=dict)
    #: what the suite's operators authenticate with (user ``OPERATOR_USER``)
    operator_kubeconfig: Path | None = None
    audit_log: Path | None = None

    def count(self, what: str, n: int = 1) -> None:
        self.stats[what] = self.stats.get(what, 0) + n

    @property
    def custom(self) -> client.CustomObjectsApi:
        return client.CustomObjectsApi(self.api)

    @property
    def core(self) -> client.CoreV1Api:
        return client.CoreV1Api(self.api)

    def etcd_url(self) -> str:
        state = json.loads((self.dev.state_dir / "state.json").read_text())
        return f"http://127.0.0.1:{state['ports']['etcd_client']}"

    def healthy(self) -> bool:
        st = self.dev.status()
        return st.running

    def audit(self, ns: str) -> list[AuditWrite]:
        """Every write to a modelreg.io object of ``ns`` the API server logged, in order.

        The server's own record: a write that landed is here even if its client was killed
        before the answer reached it (the launcher's write log would miss that one)."""
        out: list[AuditWrite] = []
        if self.audit_log is None or not self.audit_log.exists():
            return out
        with self.audit_log.open(encoding="utf-8", errors="replace") as fh:
            for line in fh:
                if f'"namespace":"{ns}"' not in line:
                    continue
                try:
                    ev = json.loads(line)
                except ValueError:
                    continue
                ref = ev.get("objectRef") or {}
                if ev.get("stage") != "ResponseComplete" or ref.get("namespace") != ns:
                    continue
                name = ref.get("name") or ((ev.get("requestObject") or {}).get("metadata") or {}).get("name") or ""
                out.append(
                    AuditWrite(
                        user=(ev.get("user") or {}).get("username", ""),
                        verb=ev.get("verb", ""),
                        plural=ref.get("resource", ""),
                        name=name,
                        subresource=ref.get("subresource", ""),
                        code=int((ev.get("responseStatus") or {}).get("code", 0)),
                        request=ev.get("requestObject"),
                    )
                )
        return out

    def operator_writes(self, ns: str) -> list[str]:
        """The operators' successful writes in ``ns`` as ``VERB path`` lines (for ``Episode.problems``)."""
        return [w.line(ns) for w in self.audit(ns) if w.by_operator and w.ok]

    def ensure_up(self) -> None:
        """Bring back any component a previous test left dead."""
        st = self.dev.status()
        if st.running:
            return
        for component, alive in st.alive.items():
            if not alive:
                with contextlib.suppress(DevClusterError):
                    self.dev.start_component(component, wait=True, timeout=90)
        self.dev.wait_ready(timeout=90)


@contextlib.contextmanager
def audited_control_plane(
    state_dir: Path,
    policy: str,
    log_args: list[str],
    *,
    timeout: float,
    what: str,
    progress: Callable[[str], None] | None = None,
    quiet: Any = None,
) -> Iterator[tuple[DevCluster, Any, Any, Path]]:
    """A private control plane whose API server audits by ``policy`` into ``audit.log`` beside
    ``state_dir``, with the CRDs installed: (cluster, info, API client, audit log). Torn down after."""
    dev = DevCluster(state_dir=state_dir, progress=progress)
    policy_file = state_dir.with_name("audit-policy.yaml")
    policy_file.write_text(policy)
    audit_log = state_dir.with_name("audit.log")
    args = [f"--audit-policy-file={policy_file}", f"--audit-log-path={audit_log}", *log_args]
    try:
        with quiet or contextlib.nullcontext():
            info = dev.up(reuse=False, timeout=timeout, extra_apiserver_args=args)
    except DevClusterError as exc:
        with contextlib.suppress(Exception):
            dev.down()
        pytest.fail(f"could not start the {what}: {exc}", pytrace=False)
    api = config.new_client_from_config(config_file=str(info.kubeconfig))
    try:
        install_crds(api, REPO / "crds")
        yield dev, info, api, audit_log
    finally:
        api.close()
        dev.down()


@pytest.fixture(scope="session")
def fault_cluster(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[FaultCluster]:
    def progress(msg: str) -> None:
        print(f"[fault-cluster] {msg}", file=sys.stderr, flush=True)

    # A SIGTERM (a CI timeout, a stray kill) must still run the finalizers below, or the private
    # control plane and the operators outlive the session: turn it into a KeyboardInterrupt.
    def _interrupt(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt(f"signal {signum}")

    previous = signal.signal(signal.SIGTERM, _interrupt)
    request.addfinalizer(lambda: signal.signal(signal.SIGTERM, previous))
    state_dir = tmp_path_factory.mktemp("fault-cluster") / "cluster"
    capman = request.config.pluginmanager.getplugin("capturemanager")
    log_args = [
        "--audit-log-format=json",
        "--audit-log-mode=blocking",
        "--audit-log-maxsize=100000",  # MB: never rotated within a session
    ]
    with audited_control_plane(
        state_dir,
        AUDIT_POLICY,
        log_args,
        timeout=120,
        what="private control plane",
        progress=progress,
        quiet=capman.global_and_fixture_disabled() if capman else None,
    ) as (dev, info, api, audit_log):
        operator_kubeconfig = dev.issue_client_kubeconfig(
            OPERATOR_USER, ["system:masters"], state_dir.with_name("operator.kubeconfig")
        )
        fc = FaultCluster(
            dev=dev,
            kubeconfig=Path(info.kubeconfig),
            api=api,
            operator_kubeconfig=operator_kubeconfig,
            audit_log=audit_log,
        )
        yield fc
        if fc.stats:
            print(f"\n[fault-suite counts] {json.dumps(fc.stats, sort_keys=True)}", file=sys.stderr, flush=True)


@pytest.fixture()
def fc(fault_cluster: FaultCluster) -> FaultCluster:
    """The private cluster, checked healthy (components restarted if a test left one dead)."""
    fault_cluster.ensure_up()
    return fault_cluster


def make_namespace(fc: FaultCluster, prefix: str = "f") -> str:
    name = f"{prefix}-{secrets.token_hex(4)}"
    fc.core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=name)))
    return name


def drop_namespace(fc: FaultCluster, name: str) -> None:
    with contextlib.suppress(ApiException, Exception):
        fc.core.delete_namespace(name, propagation_policy="Background")


@pytest.fixture()
def fns(fc: FaultCluster) -> Iterator[str]:
    """A fresh namespace in the private cluster."""
    name = make_namespace(fc)
    yield name
    drop_namespace(fc, name)


@pytest.fixture()
def fk(fc: FaultCluster, fns: str) -> Cluster:
    return Cluster(fc.custom, fns)


# --------------------------------------------------------------------------- operators


@dataclass
class FaultOperator(OperatorProcess):
    """``OperatorProcess`` started through :mod:`tests.faults.launcher` (fault hooks).

    ``control`` is the crash-point file (see the launcher); ``writelog`` records
    every successful write of every incarnation. ``restart()`` = start again with
    the same identity and arguments (a pod restart).
    """

    module: str = "tests.faults.launcher"
    control: Path | None = None
    writelog: Path | None = None
    starts: int = 0
    kills: int = 0
    spares: bool = True  # keep a warm spare process for fast restarts
    _spare: Any = None

    def _spawn(self) -> tuple[subprocess.Popen[bytes], int, int]:
        """A warm spare: imports done, waiting on stdin for the word to start."""
        metrics_port, liveness_port = free_port(), free_port()
        env = {
            **self.environment(),
            "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])),
            "MODELREG_FAULT_STANDBY": "1",
            **self.env_extra,
        }
        if self.control is not None:
            env["MODELREG_FAULT_CONTROL"] = str(self.control)
        if self.writelog is not None:
            env["MODELREG_FAULT_WRITELOG"] = str(self.writelog)
        with self.log_path.open("ab") as log:
            proc = subprocess.Popen(
                self.argv(metrics_port, liveness_port),
                stdin=subprocess.PIPE,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=env,
                cwd=str(REPO),
            )
        return proc, metrics_port, liveness_port

    def start(self, timeout: float = 90.0) -> FaultOperator:
        spare = self._spare
        if spare is None or spare[0].poll() is not None:
            spare = self._spawn()
        self._spare = None
        self.proc, self.metrics_port, self.liveness_port = spare
        with self.log_path.open("ab") as fh:
            fh.write(f"==== start #{self.starts + 1} (pid {self.proc.pid}) at {time.strftime('%H:%M:%S')}\n".encode())
        assert self.proc.stdin is not None
        self.proc.stdin.write(b"go\n")
        self.proc.stdin.flush()
        self.starts += 1
        try:
            wait_operator_live(self.proc, self.liveness_port, timeout, self.log_tail, interval=0.05)
            return self
        finally:
            if self.spares:
                self._spare = self._spawn()  # the next one warms up meanwhile

    def drop_spare(self) -> None:
        if self._spare is not None:
            proc = self._spare[0]
            self._spare = None
            with contextlib.suppress(Exception):
                assert proc.stdin is not None
                proc.stdin.close()  # EOF: the spare exits by itself
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)

    @property
    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def kill(self) -> None:
        if self.alive:
            self.kills += 1
        super().kill()

    def restart(self) -> FaultOperator:
        self.kill()
        return self.start()

    def arm_crash(self, after_writes: int, match: str = "") -> None:
        """Die right after the ``after_writes``-th write whose ``METHOD path`` contains ``match``."""
        assert self.control is not None
        self.control.write_text(json.dumps({"crash_after": after_writes, "match": match}))

    def arm_crash_before(self, text: str) -> None:
        """Die right before the first write whose ``METHOD path`` contains ``text``."""
        assert self.control is not None
        self.control.write_text(json.dumps({"crash_before": text}))

    def disarm(self) -> None:
        if self.control is not None:
            with contextlib.suppress(FileNotFoundError):
                self.control.unlink()

    def writes(self) -> list[str]:
        """The launcher's log: ``SEND`` before each write, the write once answered, ``CRASH``."""
        if self.writelog is None or not self.writelog.exists():
            return []
        return self.writelog.read_text().splitlines()

    def crashes(self) -> list[str]:
        return [line for line in self.writes() if " CRASH " in line]

    def log_lines(self) -> list[str]:
        try:
            return self.log_path.read_text(errors="replace").splitlines()
        except OSError:
            return []


class Operators:
    """Starts operators for one test (or module) and always stops them at the end."""

    def __init__(self, fc: FaultCluster, workdir: Path) -> None:
        self.fc = fc
        self.workdir = workdir
        self.started: list[FaultOperator] = []

    def start(
        self,
        namespace: str,
        identity: str | None = None,
        *,
        kubeconfig: Path | None = None,
        extra_args: tuple[str, ...] = (),
        env: dict[str, str] | None = None,
        start: bool = True,
    ) -> FaultOperator:
        identity = identity or f"fault-op-{secrets.token_hex(3)}"
        op = FaultOperator(
            kubeconfig=kubeconfig or self.fc.operator_kubeconfig or self.fc.kubeconfig,
            log_path=self.workdir / f"{identity}.log",
            identity=identity,
            extra_args=("--namespace", namespace, *extra_args),
            env_extra=dict(env or {}),
            control=self.workdir / f"{identity}.crash.json",
            writelog=self.workdir / f"{identity}.writes",
        )
        self.started.append(op)
        if start:
            op.start()
        return op

    def stop_all(self) -> None:
        for op in self.started:
            op.disarm()
            with contextlib.suppress(Exception):
                op.stop()
            op.drop_spare()
            self.fc.count("operator_starts", op.starts)
            self.fc.count("operator_kills", op.kills)


@pytest.fixture()
def operators(fc: FaultCluster, tmp_path: Path) -> Iterator[Operators]:
    ops = Operators(fc, tmp_path)
    try:
        yield ops
    finally:
        ops.stop_all()


# --------------------------------------------------------------------------- small helpers shared by tests

__all__ = [
    "Cluster",
    "FaultCluster",
    "FaultOperator",
    "OperatorProcess",
    "Operators",
    "drop_namespace",
    "free_port",
    "is_soak",
    "make_namespace",
    "wait_for",
]


# --------------------------------------------------------------------------- one breach/rollback episode

AUTO = {"mode": "Automatic"}
BAD = {"errorRate": 0.2, "oodRate": 0.01}
GOOD = {"errorRate": 0.01, "oodRate": 0.02}
RM, SNAP, INC = "registeredmodels", "performancesnapshots", "incidents"


def stage_of(obj: dict[str, Any] | None) -> str | None:
    return ((obj or {}).get("status") or {}).get("stage")


def phase_of(inc: dict[str, Any]) -> str:
    return (inc.get("status") or {}).get("phase") or "Open"


def consecutive_duplicates(history: list[dict[str, Any]]) -> list[str]:
    stages = [h.get("stage") for h in history]
    return [f"{a}->{b}" for a, b in zip(stages, stages[1:], strict=False) if a == b]


def dupes(items: list[str]) -> list[str]:
    seen: set[str] = set()
    return sorted({x for x in items if x in seen or seen.add(x)})  # type: ignore[func-returns-value]


@dataclass
class Episode:
    """One independent degradation episode of a fresh model:

    v1 → Production; v2 promoted over it (v1 Archived); breaching snapshots on v2 →
    one Incident, v2 RolledBack, v1 restored; healthy snapshots on v1 beyond its
    ``snapshotHistoryLimit`` → retention. ``new_sorts_first`` names v2 so that it
    sorts before v1 (the operator writes statuses in name order).
    """

    k: Cluster
    model: str
    limit: int = 3
    new_sorts_first: bool = False
    #: every breaching snapshot must be counted (true when each reaches the operator while the
    #: episode is open, e.g. a single one); else those evaluated after the rollback are not.
    exact_occurrences: bool = False
    breaches: list[str] = field(default_factory=list)
    healthy: list[str] = field(default_factory=list)

    @property
    def v1(self) -> str:
        return f"{self.model}-old" if self.new_sorts_first else f"{self.model}-1"

    @property
    def v2(self) -> str:
        return f"{self.model}-new" if self.new_sorts_first else f"{self.model}-2"

    def create_v1(self) -> None:
        self.k.model(
            self.v1, model_name=self.model, version="1.0.0", rollbackPolicy=AUTO, snapshotHistoryLimit=self.limit
        )

    def create_v2(self) -> None:
        self.k.model(
            self.v2, model_name=self.model, version="2.0.0", rollbackPolicy=AUTO, snapshotHistoryLimit=self.limit
        )

    def send_breaches(self, n: int) -> None:
        for _ in range(n):
            name = f"{self.v2}-bad-{len(self.breaches)}"
            self.k.snapshot(name, self.v2, metrics=BAD)
            self.breaches.append(name)

    def send_healthy(self, n: int) -> None:
        for _ in range(n):
            name = f"{self.v1}-ok-{len(self.healthy):04d}"
            self.k.snapshot(name, self.v1, metrics=GOOD)
            self.healthy.append(name)

    # --- reads -------------------------------------------------------------------------

    def versions(self) -> list[dict[str, Any]]:
        return self.k.list(RM, field_selector=f"spec.modelName={self.model}")

    def snapshots(self, rm: str) -> list[dict[str, Any]]:
        return self.k.list(SNAP, field_selector=f"spec.modelRef.name={rm}")

    def v1_production(self) -> bool:
        return stage_of(self.k.rm(self.v1)) == "Production"

    def promoted(self) -> bool:
        return stage_of(self.k.rm(self.v2)) == "Production" and stage_of(self.k.rm(self.v1)) == "Archived"

    def rolled_back(self) -> bool:
        incs = self.k.incidents(self.v2)
        return (
            stage_of(self.k.rm(self.v2)) == "RolledBack"
            and stage_of(self.k.rm(self.v1)) == "Production"
            and len(incs) >= 1
            and all(phase_of(i) not in ("Open", "Remediating") for i in incs)
            and all((s.get("status") or {}).get("verdict") for s in self.snapshots(self.v2))
        )

    def retained(self) -> bool:
        snaps = self.snapshots(self.v1)
        return len(snaps) == self.limit and all((s.get("status") or {}).get("verdict") for s in snaps)

    def settled(self) -> bool:
        return self.rolled_back() and (not self.healthy or self.retained())

    # --- the verdict -------------------------------------------------------------------

    def problems(self, writes: list[str] | None = None) -> list[str]:
        """Everything that differs from what a correct (uninterrupted) run reaches."""
        out: list[str] = []
        tag = self.model
        r1, r2 = self.k.rm(self.v1), self.k.rm(self.v2)
        s1, s2 = r1.get("status") or {}, r2.get("status") or {}
        if s1.get("stage") != "Production":
            out.append(f"{tag}: v1 is {s1.get('stage')}, expected Production (restored)")
        if s2.get("stage") != "RolledBack":
            out.append(f"{tag}: v2 is {s2.get('stage')}, expected RolledBack")
        if s2.get("rolledBackTo") != "1.0.0":
            out.append(f"{tag}: v2 rolledBackTo={s2.get('rolledBackTo')!r}, expected '1.0.0'")
        prod = [v["metadata"]["name"] for v in self.versions() if stage_of(v) == "Production"]
        if len(prod) != 1:
            out.append(f"{tag}: {len(prod)} versions in Production: {prod}")
        h1 = [h["stage"] for h in s1.get("stageHistory", [])]
        h2 = [h["stage"] for h in s2.get("stageHistory", [])]
        want1 = ["Development", "Sandbox", "Production", "Archived", "Production"]
        want2 = ["Development", "Sandbox", "Production", "RolledBack"]
        if h1 != want1:
            out.append(f"{tag}: v1 stageHistory {h1}, expected {want1}")
        if h2 != want2:
            out.append(f"{tag}: v2 stageHistory {h2}, expected {want2}")
        for name, st in ((self.v1, s1), (self.v2, s2)):
            if d := consecutive_duplicates(st.get("stageHistory", [])):
                out.append(f"{tag}: {name} stageHistory has consecutive duplicates {d}")
            if d := dupes(st.get("countedSnapshots", [])):
                out.append(f"{tag}: {name} countedSnapshots has duplicates {d}")
        missing = sorted(set(self.breaches) - set(s2.get("countedSnapshots", [])))
        if missing:
            out.append(f"{tag}: breaching snapshots not counted by v2: {missing}")
        incs = self.k.incidents(self.v2)
        if len(incs) != 1:
            out.append(f"{tag}: {len(incs)} Incidents for v2, expected 1: {[i['metadata']['name'] for i in incs]}")
        for inc in incs:
            st = inc.get("status") or {}
            name = inc["metadata"]["name"]
            if phase_of(inc) != "Remediated":
                out.append(f"{tag}: Incident {name} is {phase_of(inc)} ({st.get('reason')}), expected Remediated")
            counted = list(st.get("snapshots", []))
            if st.get("occurrences") != len(counted) or dupes(counted):
                out.append(
                    f"{tag}: Incident {name} occurrences={st.get('occurrences')} but snapshots={counted} "
                    "(a snapshot counted twice or not recorded)"
                )
            if self.exact_occurrences and sorted(counted) != sorted(self.breaches):
                out.append(
                    f"{tag}: Incident {name} counted {counted}, expected every breaching snapshot {self.breaches}"
                )
            if stray := sorted(set(counted) - set(self.breaches)):
                out.append(f"{tag}: Incident {name} counted snapshots that are not this episode's: {stray}")
            trigger = inc["spec"]["trigger"]["snapshot"]
            if trigger not in counted:
                out.append(f"{tag}: Incident {name} does not count its trigger {trigger}")
            # A breaching snapshot evaluated while v2 was still in Production belongs to the open
            # episode and must be counted; one evaluated after the rollback is only shown.
            for snap in self.snapshots(self.v2):
                sname = snap["metadata"]["name"]
                sst = snap.get("status") or {}
                if sname in self.breaches and sname not in counted and sst.get("stage") == "Production":
                    out.append(
                        f"{tag}: breaching snapshot {sname} evaluated in Production but not counted "
                        f"by Incident {name} (lost)"
                    )
            rolled = [a for a in st.get("actions", []) if a["action"] == "RolledBack"]
            if len(rolled) != 1:
                out.append(f"{tag}: Incident {name} has {len(rolled)} RolledBack actions, expected 1")
        if extra := self.k.incidents(self.v1):
            out.append(f"{tag}: unexpected Incidents for v1: {[i['metadata']['name'] for i in extra]}")
        for rm in (self.v1, self.v2):
            for snap in self.snapshots(rm):
                st = snap.get("status") or {}
                if not st.get("verdict"):
                    out.append(f"{tag}: snapshot {snap['metadata']['name']} never evaluated")
                elif snap["metadata"]["name"] in self.breaches and st["verdict"] != "Critical":
                    out.append(f"{tag}: breaching snapshot {snap['metadata']['name']} is {st['verdict']}")
        if self.healthy:
            left = self.snapshots(self.v1)
            if len(left) != self.limit:
                out.append(f"{tag}: v1 keeps {len(left)} snapshots, expected snapshotHistoryLimit={self.limit}")
            newest = sorted(self.healthy)[-self.limit :]
            kept = sorted(s["metadata"]["name"] for s in left)
            if len(left) == self.limit and kept != newest:
                out.append(f"{tag}: retention kept {kept}, expected the newest {newest}")
        if writes is not None:
            for snap in self.breaches + self.healthy:
                n = sum(1 for w in writes if w.endswith(f"/performancesnapshots/{snap}/status"))
                if n > 1:
                    out.append(f"{tag}: snapshot {snap} evaluated {n} times (status written {n}x)")
        return out

    def wait_settled(self, timeout: float = 30.0) -> bool:
        try:
            wait_for(self.settled, timeout=timeout, interval=0.25, what=f"episode {self.model} settled")
            return True
        except AssertionError:
            return False
