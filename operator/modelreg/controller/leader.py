"""`--leader-elect`: one active replica, elected through a ``coordination.k8s.io/v1`` Lease.

Every replica lists and watches (its informers fill the engine's store), but the
engine's work queue, which makes every write, stays paused until this replica
holds the Lease; on taking it over the queue runs at once from the store. The
timing decisions are pure (:mod:`modelreg.core.lease`); this module does the
Lease's reads and resourceVersion-checked writes.

Fencing (:func:`fence`): every mutating request of the operator's client checks,
on the monotonic clock, that the last successful renewal is within the renew
deadline, when it is asked for and again just before it is written to the
connection, and is abandoned after ``write_timeout`` (4 s). A leader that
misses the renew deadline (an API server it cannot reach, a process frozen past
its lease) steps down: writes are refused from that moment and the process
exits with code 1, so its pod restarts as a standby. On a graceful stop the
leader releases the Lease (an empty holder), and a standby takes over at its
next try instead of waiting out the 15 s lease.
"""

from __future__ import annotations

import asyncio
import logging
import os
import random
import socket
import time
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

from modelreg.core.lease import LeaseRecord, Timing, claimed, may_acquire, observe, released, still_leader
from modelreg.kube.client import ApiError, KubeClient, path_for

log = logging.getLogger("modelreg.leader")

JSON = dict[str, Any]
Request = Callable[..., Awaitable[JSON]]
READS = frozenset({"GET", "HEAD", "OPTIONS"})
JITTER = 0.2
LEASES = ("coordination.k8s.io", "v1", "leases")


class NotLeader(RuntimeError):
    """A write was refused: this replica is not (or no longer surely) the leader."""


def default_identity(env: os._Environ[str] | dict[str, str]) -> str:
    """The pod name (``$POD_NAME``, from the downward API), else ``<hostname>_<random>``: two
    processes on one machine must never both believe they hold the Lease."""
    return env.get("POD_NAME") or f"{socket.gethostname()}_{uuid.uuid4().hex[:8]}"


def default_namespace(env: os._Environ[str] | dict[str, str], namespaces: list[str]) -> str:
    """``$POD_NAMESPACE``, else the service account's namespace in a pod, else the one watched
    namespace, else ``default``."""
    if env.get("POD_NAMESPACE"):
        return env["POD_NAMESPACE"]
    try:
        with open("/var/run/secrets/kubernetes.io/serviceaccount/namespace", encoding="utf-8") as fh:
            value = fh.read().strip()
            if value:
                return value
    except OSError:
        pass
    exact = [ns for ns in namespaces if not set(ns) & set("*?!,")]
    return exact[0] if len(exact) == 1 and len(namespaces) == 1 else "default"


class LeaderElector:
    """Campaigns for the Lease, then renews it every retry period until stopped or lost."""

    def __init__(
        self,
        client: KubeClient,
        namespace: str,
        name: str,
        identity: str,
        *,
        timing: Timing | None = None,
        on_started: Callable[[], None] = lambda: None,
        on_lost: Callable[[], None] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.request: Request = client.request  # taken before fence() wraps it: Lease writes are never fenced
        self.namespace = namespace
        self.name = name
        self.identity = identity
        self.timing = timing or Timing()
        self.on_started = on_started
        self.on_lost = on_lost or self._exit
        self.clock = clock
        self.last_renewed: float | None = None  # monotonic time of the last successful write, sent
        self.transitions = 0
        self._observed: LeaseRecord | None = None
        self._observed_at: float | None = None
        self._stopping = False
        self._task: asyncio.Task[Any] | None = None
        self.inflight = 0  # fenced writes under way (see fence())

    # --- state ---------------------------------------------------------------------------

    @property
    def path(self) -> str:
        return path_for(*LEASES, self.namespace)

    @property
    def leading(self) -> bool:
        return still_leader(self.last_renewed, self.clock(), self.timing)

    def check(self) -> None:
        """Raise :class:`NotLeader` unless the last renewal is within the renew deadline."""
        if not self.leading:
            raise NotLeader(f"not the leader of Lease {self.namespace}/{self.name}: write refused")

    # --- one try -------------------------------------------------------------------------

    async def _call(self, method: str, path: str, body: JSON | None = None) -> JSON:
        guard = None if method in READS else self._may_write_lease
        return await asyncio.wait_for(self.request(method, path, body=body, guard=guard), self.timing.write_timeout)

    def _may_write_lease(self) -> None:
        """The Lease's own writes, checked again just before they are sent: once past its renew
        deadline a leader never writes the Lease again (the resourceVersion would refuse the write
        anyway if a standby took it; this keeps it from even being sent)."""
        if self.last_renewed is not None and not self.leading:
            raise NotLeader(f"past the renew deadline of Lease {self.namespace}/{self.name}: not written")

    async def try_acquire_or_renew(self) -> bool:
        """Read the Lease and, if allowed, write ourselves into it (create, or update at its resourceVersion)."""
        try:
            lease: JSON | None = await self._call("GET", f"{self.path}/{self.name}")
        except ApiError as err:
            if not err.not_found:
                raise
            lease = None
        now = self.clock()
        record = LeaseRecord.from_lease(lease)
        self._observed_at = observe(self._observed, self._observed_at, record, now)
        self._observed = record
        if not may_acquire(record, self.identity, self._observed_at, now):
            return False
        if self.last_renewed is not None and not self.leading:
            return False  # past our renew deadline: a standby may hold it by now; never write
        new = claimed(record, self.identity, datetime.now(UTC), self.timing)
        sent = self.clock()
        try:
            if lease is None:
                body = {"apiVersion": "coordination.k8s.io/v1", "kind": "Lease", "metadata": {"name": self.name}}
                out = await self._call("POST", self.path, {**body, "spec": new.spec()})
            else:
                body = {**lease, "spec": {**(lease.get("spec") or {}), **new.spec()}}
                out = await self._call("PUT", f"{self.path}/{self.name}", body)
        except ApiError as err:
            if err.status == 409:  # someone else wrote it first (or created it): not ours this time
                return False
            raise
        self._observed = LeaseRecord.from_lease(out)
        self._observed_at = self.clock()
        if record is None or record.holder != self.identity:
            self.transitions = new.transitions
            log.info(
                "took Lease %s/%s as %s (transitions %d, previous holder %r)",
                self.namespace,
                self.name,
                self.identity,
                new.transitions,
                record.holder if record else None,
            )
        self.last_renewed = sent
        return True

    async def _attempt(self) -> bool:
        try:
            return await self.try_acquire_or_renew()
        except asyncio.CancelledError:
            raise
        except Exception as err:  # API errors, timeouts, dropped connections: try again
            log.warning("Lease %s/%s: %s", self.namespace, self.name, err or type(err).__name__)
            return False

    # --- the loops -----------------------------------------------------------------------

    async def run(self) -> None:
        """Campaign until elected, call ``on_started``, then renew until stopped or lost."""
        self._task = asyncio.current_task()
        log.info("standing by for Lease %s/%s as %s", self.namespace, self.name, self.identity)
        while not await self._attempt():
            # Jittered so that standbys do not try in lock step; up to 20 % (client-go: 120 %), so a
            # crashed leader is replaced within lease + 2 tries (about 20 s), not lease + 2 x 4.4 s.
            await asyncio.sleep(self.timing.retry_period * (1 + JITTER * random.random()))
        log.info("leading (Lease %s/%s, identity %s): the work queue runs", self.namespace, self.name, self.identity)
        self.on_started()
        await self._renew_loop()

    async def _renew_loop(self) -> None:
        while True:
            await asyncio.sleep(self.timing.retry_period)
            if not self.leading:
                return self._lost("the last renewal is older than the renew deadline")
            ok = await self._attempt()
            if not ok and self._observed is not None and self._observed.holder not in ("", self.identity):
                return self._lost(f"the Lease is held by {self._observed.holder}")
            if not ok and not self.leading:
                return self._lost("no renewal within the renew deadline")

    def _lost(self, why: str) -> None:
        self.last_renewed = None  # fence every write from now on
        if self._stopping:
            return
        log.error("lost Lease %s/%s (%s): stepping down", self.namespace, self.name, why)
        self.on_lost()

    @staticmethod
    def _exit() -> None:
        logging.shutdown()
        os._exit(1)  # at once: nothing else of this process may run, and write, after this

    async def step_down(self) -> None:
        """On SIGTERM, before anything else stops: refuse new writes, stop renewing, let the
        writes under way finish (each is abandoned after ``write_timeout`` anyway), then give the
        Lease up, so a standby takes over at its next try, however long the rest of the shutdown
        takes."""
        self._stopping = True
        leading = self.leading
        self.last_renewed = None  # fence: no new writes from now on
        if self._task is not None and self._task is not asyncio.current_task():
            self._task.cancel()  # no renewal racing the release
            await asyncio.gather(self._task, return_exceptions=True)
        if not leading:
            return
        deadline = self.clock() + self.timing.write_timeout + 0.5
        while self.inflight and self.clock() < deadline:
            await asyncio.sleep(0.05)
        await self._release()

    async def release(self) -> None:
        """On a graceful stop: give the Lease up if we hold it, so a standby takes over at once."""
        self._stopping = True
        if not self.leading:
            self.last_renewed = None
            return
        self.last_renewed = None  # no writes of ours after this point
        await self._release()

    async def _release(self) -> None:
        try:
            lease = await self._call("GET", f"{self.path}/{self.name}")
            record = LeaseRecord.from_lease(lease)
            if record is None or record.holder != self.identity:
                return
            body = {**lease, "spec": {**(lease.get("spec") or {}), **released(record, datetime.now(UTC)).spec()}}
            await self._call("PUT", f"{self.path}/{self.name}", body)
            log.info("released Lease %s/%s", self.namespace, self.name)
        except Exception as err:
            log.warning("could not release Lease %s/%s: %s", self.namespace, self.name, err)


def fence(client: KubeClient, elector: LeaderElector) -> None:
    """Make every mutating request of ``client`` check the leadership and time out after
    ``write_timeout``. Reads (lists, watches) are never fenced: standbys keep their store fresh.

    The leadership is checked twice: when the write is asked for (refused at once, nothing
    queued), and again at the last moment before its bytes go out (the client's ``guard``).
    The second check is the one that matters: between the two a request can wait (a pool of
    busy connections, a credential refresh, a slow network) and a process can be frozen and
    resumed past its renew deadline; the ``wait_for`` timeout alone does not stop it, because
    after a freeze the request may get to run before its timeout is handled."""
    original: Request = client.request
    timeout = elector.timing.write_timeout
    client.enable_guards()

    async def request(method: str, path: str, **kwargs: Any) -> JSON:
        if method.upper() in READS:
            return await original(method, path, **kwargs)
        elector.check()
        elector.inflight += 1
        try:
            return await asyncio.wait_for(original(method, path, guard=elector.check, **kwargs), timeout)
        finally:
            elector.inflight -= 1

    client.request = request  # type: ignore[method-assign]
