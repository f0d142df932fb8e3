"""Leader election on a ``coordination.k8s.io/v1`` Lease: the pure decisions (no I/O).

The semantics and timings are client-go's (``tools/leaderelection``):

* a candidate may take the Lease when nobody holds it (no Lease, or an empty
  ``holderIdentity``), when it holds it already, or when the record has not
  changed for ``leaseDurationSeconds`` **as observed on the candidate's own
  monotonic clock** (the holder's ``renewTime`` is another machine's wall clock
  and is never compared with ours);
* taking it from someone else sets ``acquireTime`` and increments
  ``leaseTransitions``; renewing keeps both and moves ``renewTime``;
* every write is an update checked against the resourceVersion that was read,
  so of two candidates racing for an expired Lease exactly one wins;
* the leader is leader only while its last successful renewal is within the
  renew deadline (10 s, shorter than the 15 s lease): a standby may take over
  only after the lease, so a leader that honours the deadline has stopped
  before anyone else starts. Writes are fenced on the same check, and each
  write is given at most ``write_timeout`` (4 s), so a write allowed at the
  last moment of the deadline lands, or is abandoned, before the lease ends.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from modelreg.core import timefmt

JSON = dict[str, Any]

DEFAULT_LEASE_ID = "modelreg"


@dataclass(frozen=True)
class Timing:
    """client-go's defaults: lease 15 s, renew deadline 10 s, retry 2 s; writes time out after 4 s."""

    lease_duration: float = 15.0
    renew_deadline: float = 10.0
    retry_period: float = 2.0
    write_timeout: float = 4.0

    def __post_init__(self) -> None:
        if not 0 < self.retry_period < self.renew_deadline < self.lease_duration:
            raise ValueError("lease timing: need 0 < retry period < renew deadline < lease duration")
        if self.renew_deadline + self.write_timeout > self.lease_duration:
            raise ValueError("lease timing: a write allowed at the renew deadline would outlive the lease")


@dataclass(frozen=True)
class LeaseRecord:
    """The election fields of a Lease's spec."""

    holder: str = ""
    lease_duration_seconds: int = 15
    acquire_time: str | None = None
    renew_time: str | None = None
    transitions: int = 0

    @classmethod
    def from_lease(cls, lease: JSON | None) -> LeaseRecord | None:
        if lease is None:
            return None
        spec = lease.get("spec") or {}
        return cls(
            holder=str(spec.get("holderIdentity") or ""),
            lease_duration_seconds=int(spec.get("leaseDurationSeconds") or 0),
            acquire_time=spec.get("acquireTime"),
            renew_time=spec.get("renewTime"),
            transitions=int(spec.get("leaseTransitions") or 0),
        )

    def spec(self) -> JSON:
        out: JSON = {
            "holderIdentity": self.holder,
            "leaseDurationSeconds": self.lease_duration_seconds,
            "leaseTransitions": self.transitions,
        }
        if self.acquire_time is not None:
            out["acquireTime"] = self.acquire_time
        if self.renew_time is not None:
            out["renewTime"] = self.renew_time
        return out


def micro_time(now: datetime) -> str:
    """A Kubernetes MicroTime (RFC 3339 with microseconds, UTC)."""
    return timefmt.rfc3339(now, "microseconds")


def observe(
    previous: LeaseRecord | None, observed_at: float | None, current: LeaseRecord | None, now: float
) -> float | None:
    """When (monotonic) the record was last seen to change: ``now`` if it differs from the previous one."""
    if current is None:
        return None
    if previous != current or observed_at is None:
        return now
    return observed_at


def may_acquire(record: LeaseRecord | None, me: str, observed_at: float | None, now: float) -> bool:
    """May ``me`` write itself into the Lease now (acquire or renew)?

    Free (no Lease, no holder), already ours, or unchanged for its whole duration since
    we first saw this version of it (``observed_at``, our monotonic clock).
    """
    if record is None or not record.holder or record.holder == me:
        return True
    if observed_at is None:
        return False
    return now >= observed_at + max(record.lease_duration_seconds, 1)


def claimed(record: LeaseRecord | None, me: str, now: datetime, timing: Timing) -> LeaseRecord:
    """The record to write to take or renew the Lease as ``me`` at wall-clock ``now``."""
    stamp = micro_time(now)
    duration = int(timing.lease_duration)
    if record is None:
        return LeaseRecord(me, duration, stamp, stamp, 0)
    if record.holder == me:
        return replace(record, lease_duration_seconds=duration, renew_time=stamp)
    return LeaseRecord(me, duration, stamp, stamp, record.transitions + 1)


def released(record: LeaseRecord, now: datetime) -> LeaseRecord:
    """What a leader stepping down gracefully writes (client-go's ReleaseOnCancel): no holder,
    a 1 s lease, so a standby takes over at its next try instead of waiting out the lease."""
    stamp = micro_time(now)
    return replace(record, holder="", lease_duration_seconds=1, acquire_time=stamp, renew_time=stamp)


def still_leader(last_renewed: float | None, now: float, timing: Timing) -> bool:
    """Within the renew deadline of the last successful renewal (monotonic clock)?"""
    return last_renewed is not None and 0 <= now - last_renewed < timing.renew_deadline


def renew_deadline_at(last_renewed: float, timing: Timing) -> float:
    """The monotonic time at which a leader that has not renewed since ``last_renewed`` must stop."""
    return last_renewed + timing.renew_deadline


def default_lease_id(namespace_selector: str | None) -> str:
    """``modelreg``, or per shard ``modelreg-<first 8 hex of sha256(selector)>``."""
    if not namespace_selector:
        return DEFAULT_LEASE_ID
    return f"{DEFAULT_LEASE_ID}-{hashlib.sha256(namespace_selector.encode()).hexdigest()[:8]}"
