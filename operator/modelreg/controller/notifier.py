"""IncidentNotifier: each Incident phase, once, to a webhook (docs/healing.md).

Runs beside the engine, never in it: its own list+watch of IncidentNotifiers
and Incidents, its own tasks and its own HTTP session, so a slow or failing
receiver never blocks or delays a rollback. It only reads Incidents; what was
delivered is recorded in the notifier's own status:

* ``status.delivered``: per Incident UID, the phases done (delivered, or failed
  for good), bounded (:data:`~modelreg.api.models.MAX_DELIVERED`; the oldest
  closed Incidents are dropped first). It is read back at start-up, so a
  restarted operator does not send again what it recorded.
* ``status.deliveries``: the newest 50 results, with the reason of a failure.

Each phase is sent at most once per notifier, with the header
``Idempotency-Key: <incident uid>/<phase>``: a delivery cut off by a crash
after the receiver got it (but before the status write) is repeated once on
restart with the same key, so the receiver can drop the repeat. Connection
errors, timeouts and 5xx answers are retried with backoff
(:func:`modelreg.core.notify.backoff`, up to
:data:`~modelreg.core.notify.MAX_ATTEMPTS` attempts); a 4xx answer, a URL
that is not http(s), or a Secret that is missing or not granted are recorded
Failed at once with the reason and not retried.
"""

from __future__ import annotations

import asyncio
import base64
import fnmatch
import logging
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import aiohttp
import orjson

from modelreg import GROUP, VERSION, __version__
from modelreg.api.models import (
    Condition,
    IncidentNotifierSpec,
    IncidentNotifierStatus,
    NotifierDelivery,
    SecretKeyRef,
)
from modelreg.controller.informer import backoffs, list_pages
from modelreg.core import notify, timefmt
from modelreg.core.conditions import set_condition
from modelreg.core.durations import parse_duration
from modelreg.core.incidents import CLOSED_PHASES, phase_of
from modelreg.kube.client import ApiError, KubeClient, path_for

log = logging.getLogger("modelreg.notifier")

JSON = dict[str, Any]
Key = tuple[str, str]
PLURAL = "incidentnotifiers"
INCIDENTS = "incidents"
WATCH_SECONDS = "300"
USER_AGENT = f"modelreg-notifier/{__version__}"
RETRIED = (ApiError, aiohttp.ClientError, OSError, asyncio.TimeoutError, ValueError)


def utcnow() -> datetime:
    return datetime.now(UTC)


def _created(body: JSON) -> datetime | None:
    return timefmt.parse_or_none((body.get("metadata") or {}).get("creationTimestamp"))


@dataclass
class NotifierState:
    """One notifier as this process knows it: its spec, and its status (ahead of the stored one)."""

    body: JSON
    spec: IncidentNotifierSpec | None
    spec_error: str
    status: IncidentNotifierStatus
    created: datetime | None
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    @property
    def ledger(self) -> notify.Ledger:
        return notify.Ledger(self.status.delivered, self.status.forgotten_before)

    def done(self, uid: str) -> list[str]:
        return self.ledger.done(uid)


@dataclass(frozen=True)
class Outcome:
    ok: bool
    attempts: int
    code: int | None
    message: str
    reason: str


class Notifiers:
    """The notifier controller: list+watch, decide (``core.notify``), deliver, record."""

    def __init__(
        self,
        client: KubeClient,
        namespaces: list[str],
        *,
        exclude: tuple[str, ...] = (),
        concurrency: int = 16,
        sleep: Callable[[float], Any] = asyncio.sleep,
        active: Callable[[], bool] = lambda: True,
        owns: Callable[[str], bool] | None = None,
        resweep_seconds: float = 30.0,
    ) -> None:
        self.client = client
        #: With a namespace selector: whether this shard owns a namespace (others' are left alone).
        self.owns = owns
        exact = all(not set(ns) & set("*?[!,") for ns in namespaces)
        # Exact names: one stream each. Globs: the whole cluster, filtered here.
        self.scopes: list[str | None] = list(namespaces) if namespaces and exact else [None]
        self.include = () if exact else tuple(namespaces)
        self.exclude = exclude
        self.notifiers: dict[Key, NotifierState] = {}
        self.incidents: dict[str, dict[str, JSON]] = defaultdict(dict)  # namespace → name → body
        self._running: set[tuple[Key, str]] = set()  # (notifier, incident uid) being delivered
        self._tasks: set[asyncio.Task[None]] = set()
        self._watchers: list[asyncio.Task[None]] = []
        self._slots = asyncio.Semaphore(concurrency)
        self._session: aiohttp.ClientSession | None = None
        self._sleep = sleep
        #: False on a replica that must not send (a standby under leader election): nothing is
        #: sent or recorded then, and the periodic re-sweep picks the work up when it turns True.
        self.active = active
        self._resweep_seconds = resweep_seconds

    # --- lifecycle ----------------------------------------------------------------------

    async def start(self) -> None:
        self._session = aiohttp.ClientSession(headers={"User-Agent": USER_AGENT})
        loop = asyncio.get_running_loop()
        for scope in self.scopes:
            self._watchers.append(loop.create_task(self._follow(PLURAL, scope, self._on_notifier)))
            self._watchers.append(loop.create_task(self._follow(INCIDENTS, scope, self._on_incident)))
        self._watchers.append(loop.create_task(self._resweep()))

    async def _resweep(self) -> None:
        """Look at every pair again now and then: work skipped while inactive, or left by an error."""
        while True:
            await asyncio.sleep(self._resweep_seconds)
            for ns in {key[0] for key in self.notifiers}:
                self._kick(ns)

    async def stop(self) -> None:
        tasks = [*self._watchers, *self._tasks]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if self._session is not None:
            await self._session.close()

    def excluded(self, namespace: str) -> bool:
        if self.owns is not None and not self.owns(namespace):
            return True
        if self.include and not any(fnmatch.fnmatchcase(namespace, glob) for glob in self.include):
            return True
        return any(fnmatch.fnmatchcase(namespace, glob) for glob in self.exclude)

    # --- watches ------------------------------------------------------------------------

    async def _follow(self, plural: str, scope: str | None, handler: Callable[[str, JSON], None]) -> None:
        """List, then watch from the list's resourceVersion; list again after 410 Gone."""
        rv = ""
        delays = backoffs()
        while True:
            try:
                if not rv:
                    present: set[Key] = set()

                    def each(item: JSON, present: set[Key] = present) -> None:
                        present.add((item["metadata"]["namespace"], item["metadata"]["name"]))
                        handler("LISTED", item)

                    rv = await list_pages(self.client, plural, scope, each)
                    self._forget_missing(plural, scope, present)
                    delays = backoffs()
                params = {"resourceVersion": rv, "allowWatchBookmarks": "true", "timeoutSeconds": WATCH_SECONDS}
                async for event in self.client.watch(path_for(GROUP, VERSION, plural, scope), **params):
                    kind, obj = event.get("type"), event.get("object") or {}
                    if kind == "ERROR":
                        raise ApiError(int(obj.get("code") or 500), str(obj.get("reason", "")), str(obj.get("message")))
                    if kind in ("ADDED", "MODIFIED", "DELETED"):
                        handler(str(kind), obj)
                    rv = str((obj.get("metadata") or {}).get("resourceVersion") or rv)
                await asyncio.sleep(1.0)  # a clean end of the stream: resume, never in a tight loop
            except asyncio.CancelledError:
                raise
            except RETRIED as err:
                if isinstance(err, ApiError) and err.status == 410:
                    rv = ""
                    continue
                delay = next(delays)
                log.warning("watch of %s failed (%s); again in %.0f s", plural, err, delay)
                await asyncio.sleep(delay)

    def _forget_missing(self, plural: str, scope: str | None, present: set[Key]) -> None:
        """After a (re-)list: what is held in ``scope`` but was not listed was deleted meanwhile."""
        if plural == PLURAL:
            for key in [k for k in self.notifiers if (scope is None or k[0] == scope) and k not in present]:
                del self.notifiers[key]
            return
        for ns, held in self.incidents.items():
            if scope is None or ns == scope:
                for name in [n for n in held if (ns, n) not in present]:
                    del held[name]

    def _on_notifier(self, kind: str, body: JSON) -> None:
        meta = body.get("metadata") or {}
        key = (str(meta.get("namespace")), str(meta.get("name")))
        if self.excluded(key[0]):
            return
        if kind == "DELETED":
            self.notifiers.pop(key, None)
            return
        known = self.notifiers.get(key)
        try:
            spec, error = IncidentNotifierSpec.model_validate(body.get("spec") or {}), ""
        except ValueError as err:
            spec, error = None, str(err).splitlines()[0] if str(err) else "invalid spec"
        if known is not None and known.body["metadata"].get("uid") == meta.get("uid"):
            # Our own status writes come back here: the status in memory is ahead of them.
            known.body, known.spec, known.spec_error = body, spec, error
        else:
            try:
                status = IncidentNotifierStatus.model_validate(body.get("status") or {})
            except ValueError:
                status = IncidentNotifierStatus()
            self.notifiers[key] = NotifierState(body, spec, error, status, _created(body))
        self._kick(key[0], notifier=key)

    def _on_incident(self, kind: str, body: JSON) -> None:
        meta = body.get("metadata") or {}
        ns, name = str(meta.get("namespace")), str(meta.get("name"))
        if self.excluded(ns):
            return
        if kind == "DELETED":
            self.incidents[ns].pop(name, None)
            return
        self.incidents[ns][name] = body
        self._kick(ns, incident=name)

    # --- deciding -----------------------------------------------------------------------

    def _kick(self, ns: str, *, notifier: Key | None = None, incident: str | None = None) -> None:
        """Start a delivery task for every (notifier, Incident) pair in ``ns`` with a phase due."""
        if not self.active():
            return
        keys = [notifier] if notifier else [k for k in self.notifiers if k[0] == ns]
        names = [incident] if incident else list(self.incidents.get(ns, {}))
        for key in keys:
            state = self.notifiers.get(key)
            if state is None or state.spec is None:
                continue
            for name in names:
                body = self.incidents.get(ns, {}).get(name)
                if body is None:
                    continue
                uid = str(body["metadata"].get("uid", ""))
                if (key, uid) in self._running or not notify.selects(state.spec, state.created, body):
                    continue
                if state.ledger.forgotten(uid, _created(body)):
                    continue
                if notify.due_phases(body, state.spec.phases, state.done(uid)):
                    self._running.add((key, uid))
                    task = asyncio.get_running_loop().create_task(self._deliver_all(key, ns, name, uid))
                    self._tasks.add(task)
                    task.add_done_callback(self._tasks.discard)

    async def _deliver_all(self, key: Key, ns: str, name: str, uid: str) -> None:
        """Send the Incident's due phases to one notifier, oldest first, until none is due."""
        try:
            while True:
                state = self.notifiers.get(key)
                body = self.incidents.get(ns, {}).get(name)
                if state is None or state.spec is None or body is None or body["metadata"].get("uid") != uid:
                    return
                due = notify.due_phases(body, state.spec.phases, state.done(uid))
                if not due:
                    break  # (and look once more below, outside the running set)
                phase = due[0]
                if not self.active():
                    return
                async with self._slots:
                    outcome = await self._send(state, ns, body, phase)
                await self._record(key, body, phase, outcome)
        except Exception:  # a bug here must never take the operator down; the re-sweep retries
            log.exception("notifier %s/%s: delivery of %s failed", key[0], key[1], name)
            return
        finally:
            self._running.discard((key, uid))
        # The Incident may have moved on while this task ran.
        if key in self.notifiers and name in self.incidents.get(ns, {}):
            self._kick(ns, notifier=key, incident=name)

    # --- sending ------------------------------------------------------------------------

    async def _secret(self, ns: str, ref: SecretKeyRef, field_name: str) -> str:
        try:
            secret = await self.client.get(f"/api/v1/namespaces/{ns}/secrets/{ref.name}")
        except ApiError as err:
            if err.not_found:
                raise notify.ConfigError("SecretNotFound", f"{field_name}: Secret {ref.name} not found") from None
            if err.forbidden:
                raise notify.ConfigError(
                    "SecretForbidden",
                    f"{field_name}: the operator may not read Secret {ref.name} "
                    "(grant it by name: the chart's notifiers.secrets)",
                ) from None
            raise
        raw = (secret.get("data") or {}).get(ref.key)
        if raw is None:
            raise notify.ConfigError("SecretKeyMissing", f"{field_name}: Secret {ref.name} has no key {ref.key}")
        try:
            return base64.b64decode(raw).decode("utf-8").strip()
        except (ValueError, UnicodeDecodeError):
            raise notify.ConfigError("SecretKeyInvalid", f"{field_name}: {ref.name}/{ref.key} is not UTF-8") from None

    async def resolve_target(self, ns: str, spec: IncidentNotifierSpec) -> notify.WebhookTarget:
        """URL, token and timeout of ``spec.webhook`` (Secrets read now); :class:`~notify.ConfigError` if unusable."""
        hook = spec.webhook
        if hook.url_secret_ref is not None:
            url = notify.check_url(
                await self._secret(ns, hook.url_secret_ref, "webhook.urlSecretRef"), "the URL in webhook.urlSecretRef"
            )
        else:
            url = notify.check_url(hook.url or "", "webhook.url")
        token = None
        if hook.bearer_token_secret_ref is not None:
            token = await self._secret(ns, hook.bearer_token_secret_ref, "webhook.bearerTokenSecretRef")
        timeout = parse_duration(hook.timeout).total_seconds() if hook.timeout else notify.DEFAULT_TIMEOUT_SECONDS
        return notify.WebhookTarget(url, token, timeout)

    async def _send(self, state: NotifierState, ns: str, incident: JSON, phase: str) -> Outcome:
        assert state.spec is not None and self._session is not None
        try:
            target = await self.resolve_target(ns, state.spec)
        except notify.ConfigError as err:
            return Outcome(False, 0, None, err.message, err.reason)
        except RETRIED as err:
            return Outcome(False, 0, None, f"reading the webhook's Secret failed: {err}", "SecretUnavailable")
        uid = str(incident["metadata"].get("uid", ""))
        headers = {"Content-Type": "application/json", "Idempotency-Key": notify.idempotency_key(uid, phase)}
        if target.token:
            headers["Authorization"] = f"Bearer {target.token}"
        data = orjson.dumps(notify.payload(incident, phase))
        timeout = aiohttp.ClientTimeout(total=target.timeout)
        attempt, code, message = 0, None, ""
        while attempt < notify.MAX_ATTEMPTS:
            attempt += 1
            try:
                async with self._session.post(target.url, data=data, headers=headers, timeout=timeout) as resp:
                    code = resp.status
                    await resp.read()
                if 200 <= code < 300:
                    return Outcome(True, attempt, code, f"HTTP {code}", "Delivered")
                message = f"the receiver answered HTTP {code}"
            except TimeoutError:
                code, message = None, f"no answer within {target.timeout:g}s"
            except (aiohttp.ClientError, OSError) as err:
                code, message = None, f"unreachable: {type(err).__name__}"
            if not notify.retryable(code):
                return Outcome(False, attempt, code, f"{message}; not retried", "HTTPError")
            if attempt < notify.MAX_ATTEMPTS:
                log.info("notifier %s: %s (attempt %d); retrying", state.body["metadata"]["name"], message, attempt)
                await self._sleep(notify.backoff(attempt))
        reason = "HTTPError" if code is not None else "Unreachable"
        return Outcome(False, attempt, code, f"{message}; gave up after {attempt} attempts", reason)

    # --- recording ----------------------------------------------------------------------

    async def _record(self, key: Key, incident: JSON, phase: str, outcome: Outcome) -> None:
        state = self.notifiers.get(key)
        if state is None:
            return
        now = utcnow()
        meta = incident["metadata"]
        uid, name = str(meta.get("uid", "")), str(meta["name"])
        closed = phase_of(incident.get("status")) in CLOSED_PHASES
        async with state.lock:
            status = state.status
            live = {str(b["metadata"].get("uid", "")) for b in self.incidents.get(key[0], {}).values()}
            ledger = notify.mark_done(
                state.ledger, uid, name, phase, closed=closed, created=_created(incident), live=live
            )
            entry = NotifierDelivery(
                incident=name,
                uid=uid,
                phase=phase,  # type: ignore[arg-type]
                at=now,
                result="Succeeded" if outcome.ok else "Failed",
                attempts=outcome.attempts,
                code=outcome.code,
                message=outcome.message[:1024],
            )
            conditions: list[Condition] = set_condition(
                status.conditions,
                "Ready",
                outcome.ok,
                outcome.reason,
                f"{name} {phase}: {outcome.message}"[:1024],
                now,
                state.body["metadata"].get("generation"),
            )
            state.status = status.model_copy(
                update={
                    "delivered": ledger.records,
                    "forgotten_before": ledger.forgotten_before,
                    "deliveries": notify.with_delivery(status.deliveries, entry),
                    "conditions": conditions,
                    "observed_generation": state.body["metadata"].get("generation"),
                }
            )
            (log.info if outcome.ok else log.warning)(
                "notifier %s/%s: incident %s %s %s (%s)", key[0], key[1], name, phase, entry.result, outcome.message
            )
            await self._write_status(key, state)

    async def _write_status(self, key: Key, state: NotifierState) -> None:
        path = path_for(GROUP, VERSION, PLURAL, key[0], key[1]) + "/status"
        body = {"status": state.status.wire()}
        delays = backoffs()
        for _attempt in range(6):
            try:
                await self.client.merge_patch(path, body)
                return
            except ApiError as err:
                if err.not_found:
                    return
                if err.status < 500 and err.status != 429:
                    log.error("notifier %s/%s: status not written: %s", key[0], key[1], err)
                    return
                await asyncio.sleep(next(delays))
            except (TimeoutError, aiohttp.ClientError, OSError) as err:
                log.warning("notifier %s/%s: status write failed (%s); retrying", key[0], key[1], err)
                await asyncio.sleep(next(delays))

    async def idle(self) -> None:
        """Wait until no delivery is running (tests)."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)


def register(namespaces: list[str], exclude: tuple[str, ...] = ()) -> None:
    """Run the notifier controller beside the engine in ``modelreg run`` (Kopf start-up and clean-up).

    It uses the engine's API client (the operator's login) once the engine has started.
    """
    import kopf

    @kopf.on.startup()
    async def start_notifiers(memo: kopf.Memo, **_: Any) -> None:
        engine = memo.get("engine")
        informers = memo.get("informers")
        if engine is None or informers is None:
            raise kopf.TemporaryError("waiting for the engine and its informers", delay=0.5)
        # Under --leader-elect only the leader sends (a webhook is not fenced like an API
        # write); with --namespace-selector only the namespaces this shard owns.
        elector = memo.get("elector")
        owned: set[str] | None = informers.owned
        notifiers = Notifiers(
            engine.client,
            namespaces,
            exclude=exclude,
            active=(lambda: elector.leading) if elector is not None else (lambda: True),
            owns=(lambda ns: ns in owned) if owned is not None else None,
        )
        await notifiers.start()
        memo["notifiers"] = notifiers

    @kopf.on.cleanup()
    async def stop_notifiers(memo: kopf.Memo, **_: Any) -> None:
        notifiers = memo.get("notifiers")
        if notifiers is not None:
            await notifiers.stop()
