"""The control plane the benchmark runs on, and how its API requests are counted.

By default the benchmark starts (or reuses) a *private* dev cluster in its own
state directory, with an audit policy that records every request of the user
``bench-operator`` (the operator's identity, a client certificate in
``system:masters``). The API server's ``apiserver_request_total`` has no
user-agent or user label, and on the shared dev cluster other engineers'
operators watch all namespaces (they would reconcile the benchmark's objects
too), so exact per-client counts need a cluster of our own.

``--shared-cluster`` runs on the shared cluster instead; API costs are then
approximated from ``apiserver_request_total`` deltas minus the benchmark's own
writes, and include whatever else wrote meanwhile.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from modelreg.devcluster import DevCluster

JSON = dict[str, Any]

OPERATOR_USER = "bench-operator"
AUDIT_POLICY = f"""\
apiVersion: audit.k8s.io/v1
kind: Policy
omitStages: ["RequestReceived"]
rules:
  - level: Metadata
    users: ["{OPERATOR_USER}"]
  - level: None
"""
WRITE_VERBS = {"create", "update", "patch", "delete", "deletecollection"}


@dataclass
class BenchCluster:
    kubeconfig: Path  # admin: the benchmark's own client (not audited)
    operator_kubeconfig: Path  # user bench-operator (audited)
    server: str
    dc: DevCluster
    started_here: bool
    audit_log: Path | None
    audit_offset: int = 0
    pids: dict[str, int] = field(default_factory=dict)

    @property
    def private(self) -> bool:
        return self.audit_log is not None


def open_cluster(state_dir: Path | None, *, shared: bool, work_dir: Path, progress: Any) -> BenchCluster:
    if shared:
        dc = DevCluster(progress=progress)
        info = dc.up()
        audit: Path | None = None
    else:
        state_dir = state_dir or DevCluster().state_dir.with_name("bench")
        dc = DevCluster(state_dir, progress=progress)
        policy = state_dir.with_name(state_dir.name + "-audit-policy-v2.yaml")
        policy.parent.mkdir(parents=True, exist_ok=True)
        policy.write_text(AUDIT_POLICY)
        audit = state_dir / "logs" / "audit.log"
        extra = [
            f"--audit-policy-file={policy}",
            f"--audit-log-path={audit}",
            "--audit-log-format=json",
            "--audit-log-mode=blocking",
            "--audit-log-maxsize=1000000",  # MB: no rotation (the default rotates at 100 MB)
        ]
        info = dc.up(extra_apiserver_args=extra)
        state = json.loads(dc.state_file.read_text())
        if info.reused and state.get("extra_args", {}).get("kube-apiserver") != extra:
            progress("the private bench cluster runs with other arguments (audit log); restarting it")
            dc.down()
            info = dc.up(extra_apiserver_args=extra)
    op_kc = dc.issue_client_kubeconfig(OPERATOR_USER, ["system:masters"], work_dir / "operator.kubeconfig")
    bc = BenchCluster(
        kubeconfig=info.kubeconfig,
        operator_kubeconfig=op_kc,
        server=info.server,
        dc=dc,
        started_here=not info.reused,
        audit_log=audit,
        pids=dict(info.pids),
    )
    if audit is not None:
        bc.audit_offset = audit.stat().st_size if audit.exists() else 0
    return bc


def component_pids(bc: BenchCluster) -> dict[str, int]:
    state = json.loads(bc.dc.state_file.read_text())
    return {c: int(v["pid"]) for c, v in state.get("components", {}).items() if v.get("pid")}


# ------------------------------------------------------------------------------ audit records


@dataclass(frozen=True)
class Req:
    t: float  # epoch seconds the request was received
    verb: str
    resource: str
    subresource: str
    namespace: str
    name: str
    code: int
    agent: str

    @property
    def write(self) -> bool:
        return self.verb in WRITE_VERBS

    @property
    def kind(self) -> str:
        res = self.resource + (f"/{self.subresource}" if self.subresource else "")
        return f"{self.verb} {res}"


def _epoch(ts: str) -> float:
    # 2026-11-20T10:00:00.123456Z
    return datetime.fromisoformat(ts.replace("Z", "+00:00")).timestamp()


def _records(fh: Any) -> Any:
    """One record per request: ResponseStarted for watches (so an open watch is seen when it
    starts), ResponseComplete for everything else."""
    started: set[str] = set()
    for line in fh:
        try:
            ev = json.loads(line)
        except ValueError:
            continue
        if (ev.get("user") or {}).get("username") != OPERATOR_USER:
            continue
        if ev.get("stage") == "ResponseStarted":
            started.add(ev.get("auditID", ""))
        elif ev.get("auditID", "") in started:
            continue
        yield ev


def _req(ev: JSON) -> Req:
    ref = ev.get("objectRef") or {}
    return Req(
        t=_epoch(ev["requestReceivedTimestamp"]),
        verb=str(ev.get("verb", "")),
        resource=str(ref.get("resource", "") or ev.get("requestURI", "")),
        subresource=str(ref.get("subresource", "")),
        namespace=str(ref.get("namespace", "")),
        name=str(ref.get("name", "")),
        code=int((ev.get("responseStatus") or {}).get("code") or 0),
        agent=str(ev.get("userAgent", "")).split(" ")[0],
    )


def read_audit(bc: BenchCluster, offset: int | None = None, since: float = 0.0) -> list[Req]:
    """The operator's requests from ``offset`` in the current audit log; with ``offset`` None,
    every request received after ``since`` (epoch), rotated files included."""
    assert bc.audit_log is not None
    if offset is not None:
        with bc.audit_log.open("rb") as fh:
            fh.seek(offset)
            out = [_req(ev) for ev in _records(fh)]
    else:
        rotated = sorted(p for p in bc.audit_log.parent.glob("audit-*.log") if p.stat().st_mtime >= since)
        out = []
        for path in [*rotated, bc.audit_log]:
            with path.open("rb") as fh:
                out += [r for r in (_req(ev) for ev in _records(fh)) if r.t >= since]
    out.sort(key=lambda r: r.t)
    return out


def audit_size(bc: BenchCluster) -> int:
    return bc.audit_log.stat().st_size if bc.audit_log is not None and bc.audit_log.exists() else 0


def between(reqs: list[Req], t0: float, t1: float) -> list[Req]:
    return [r for r in reqs if t0 <= r.t < t1]


def breakdown(reqs: list[Req]) -> dict[str, int]:
    return dict(Counter(r.kind for r in reqs).most_common())


# ------------------------------------------------------------------------------ apiserver metrics

_LINE = re.compile(r"^apiserver_request_total\{(?P<labels>[^}]*)\} (?P<value>\S+)$")
_LABEL = re.compile(r'(\w+)="([^"]*)"')
_WRITE_METRIC_VERBS = {"POST", "PUT", "PATCH", "APPLY", "DELETE", "DELETECOLLECTION"}


def apiserver_writes(metrics: str) -> float:
    """Sum of apiserver_request_total over write verbs (every client), from the API server's /metrics."""
    total = 0.0
    for line in metrics.splitlines():
        m = _LINE.match(line)
        if not m:
            continue
        labels = dict(_LABEL.findall(m.group("labels")))
        if labels.get("verb") in _WRITE_METRIC_VERBS:
            total += float(m.group("value"))
    return total
