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


def register(source: CredentialSource, registry: kopf.OperatorRegistry | None = None) -> None:
    """Register Kopf's login handler and the liveness probe for ``source``."""
    if os.environ.get(THRESHOLD_ENV):
        source.lockout.threshold = float(os.environ[THRESHOLD_ENV])
    logins = itertools.count(1)
    given: list[tuple[kopf.ConnectionInfo, int]] = []  # the last login given to Kopf, and its generation

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

    @kopf.on.login(id="credentials", registry=registry)
    async def login(**_: Any) -> kopf.ConnectionInfo:
        now = datetime.datetime.now(datetime.UTC)
        if given and (given[0][0].expiration is None or now < given[0][0].expiration):
            # Not expired, so Kopf was answered 401: read again at once; unless that
            # changed the credentials, back off and read again.
            seen = given[0][1]
            delay = source.lockout.unauthorized(time.monotonic())
            creds = await read(True, seen)
            if creds.generation == seen:
                log.warning("Kopf's request was answered 401; logging in again in %.0f s", delay)
                await asyncio.sleep(delay)
                creds = await read(True, seen)
        else:
            creds = await read(False)
        info = source.kopf_info(creds, priority=next(logins))
        given[:] = [(info, creds.generation)]
        return info

    @kopf.on.probe(id="credentials", registry=registry)
    async def credentials_probe(**_: Any) -> float:
        lockout = source.lockout
        now = time.monotonic()
        if lockout.locked_out(now):
            raise kopf.PermanentError(
                f"nothing but 401 Unauthorized for {lockout.locked_out_for(now):.0f} s "
                f"({source.where}): failing liveness so the pod restarts"
            )
        return round(lockout.locked_out_for(now), 1)
