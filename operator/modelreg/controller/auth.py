"""Kopf's side of the operator's credentials: its login, and the liveness check on 401s.

Kopf gets its login from the same :class:`~modelreg.kube.credentials.CredentialSource`
as the operator's own client, so nothing reads the kubeconfig a second way. Kopf
logs in again when a login it was given expires (an exec credential) and after a
401; a login asked for before the expiry it was given is a 401, so it is answered
like the operator's own client answers one: read again at once, and unless the
credentials changed, back off (1 s to 60 s) and read again.

The ``credentials`` probe fails the liveness endpoint once nothing but 401s has come
back for 5 minutes (``MODELREG_UNAUTHORIZED_LIVENESS_SECONDS``), so that the pod is
restarted rather than left idle.
"""

from __future__ import annotations

import asyncio
import datetime
import itertools
import logging
import os
import time
from typing import Any

import kopf

from modelreg.kube.credentials import CredentialError, Credentials, CredentialSource

log = logging.getLogger("modelreg.auth")
THRESHOLD_ENV = "MODELREG_UNAUTHORIZED_LIVENESS_SECONDS"


def register(source: CredentialSource) -> None:
    """Register Kopf's login handler and the liveness probe for ``source``."""
    if os.environ.get(THRESHOLD_ENV):
        source.lockout.threshold = float(os.environ[THRESHOLD_ENV])
    logins = itertools.count(1)
    given: list[kopf.ConnectionInfo] = []

    async def read(force: bool, seen: int | None = None) -> Credentials:
        while True:
            try:
                if force:
                    return await asyncio.to_thread(source.refresh, force=True, seen=seen)
                return await asyncio.to_thread(source.current)
            except CredentialError as err:
                delay = source.lockout.unauthorized(time.monotonic())
                log.error("no usable credentials: %s; trying again in %.0f s", err, delay)
                await asyncio.sleep(delay)
                force = True

    @kopf.on.login(id="credentials")
    async def login(**_: Any) -> kopf.ConnectionInfo:
        last = given[-1] if given else None
        now = datetime.datetime.now(datetime.UTC)
        if last is not None and (last.expiration is None or now < last.expiration):
            # Not expired, so Kopf was answered 401.
            before = source.current()
            delay = source.lockout.unauthorized(time.monotonic())
            creds = await read(True, before.generation)
            if creds.generation == before.generation:
                log.warning("Kopf's request was answered 401; logging in again in %.0f s", delay)
                await asyncio.sleep(delay)
                creds = await read(True, creds.generation)
        else:
            creds = await read(False)
        info = source.kopf_info(creds, priority=next(logins))
        given[:] = [info]
        return info

    @kopf.on.probe(id="credentials")
    async def credentials_probe(**_: Any) -> float:
        lockout = source.lockout
        now = time.monotonic()
        if lockout.locked_out(now):
            raise kopf.PermanentError(
                f"nothing but 401 Unauthorized for {lockout.locked_out_for(now):.0f} s "
                f"({source.where}): failing liveness so the pod restarts"
            )
        return round(lockout.locked_out_for(now), 1)
