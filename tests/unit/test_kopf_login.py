"""Kopf's login handler: the operator's credentials, read again after a 401, with backoff."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import kopf
import pytest
import yaml
from kopf._core.intents.causes import Activity

from modelreg.controller import auth
from modelreg.kube import credentials


def _handler(registry: kopf.OperatorRegistry, activity: Activity) -> Any:
    (handler,) = registry._activities.get_handlers(activity=activity)
    return handler.fn


def test_login_reads_again_after_401_and_backs_off_while_unchanged(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    token = tmp_path / "token"
    token.write_text("one")
    doc = {
        "clusters": [{"name": "c", "cluster": {"server": "https://127.0.0.1:6443", "insecure-skip-tls-verify": True}}],
        "users": [{"name": "u", "user": {"tokenFile": str(token)}}],
        "contexts": [{"name": "dev", "context": {"cluster": "c", "user": "u", "namespace": "ns"}}],
        "current-context": "dev",
    }
    (tmp_path / "config").write_text(yaml.safe_dump(doc))
    source = credentials.load(str(tmp_path / "config"))
    registry = kopf.OperatorRegistry()
    auth.register(source, registry)
    login = _handler(registry, Activity.AUTHENTICATION)
    probe = _handler(registry, Activity.PROBE)
    slept: list[float] = []

    async def sleep(delay: float) -> None:
        slept.append(delay)

    monkeypatch.setattr(auth.asyncio, "sleep", sleep)

    async def scenario() -> list[kopf.ConnectionInfo]:
        infos = [await login()]  # the initial login
        token.write_text("two")
        infos.append(await login())  # a 401 (not expired): read again at once, no wait
        infos.append(await login())  # a 401 again, nothing changed: wait, read again
        infos.append(await login())
        return infos

    infos = asyncio.run(scenario())
    assert [i.token for i in infos] == ["one", "two", "two", "two"]
    assert infos[0].server == "https://127.0.0.1:6443" and infos[0].default_namespace == "ns"
    assert len({i.priority for i in infos}) == 4, "each login differs, so Kopf never discards it as rejected before"
    assert slept == [2.0, 4.0]  # the 401s' backoff (the first 401 re-read found a new token)
    assert asyncio.run(probe()) >= 0.0
    source.lockout.threshold = 0.0
    with pytest.raises(kopf.PermanentError, match="nothing but 401 Unauthorized"):
        asyncio.run(probe())
