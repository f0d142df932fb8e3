"""Start `modelreg dashboard` as a user would, for the dashboard tests."""

from __future__ import annotations

import os
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tests.integration.kit import stop_process

BIN = Path(sys.executable).parent


@contextmanager
def dashboard(kubeconfig: Path, *argv: str) -> Iterator[str]:
    """The URL the dashboard prints as its first line; the process is stopped afterwards."""
    env = {**os.environ, "KUBECONFIG": str(kubeconfig), "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(
        [str(BIN / "modelreg"), "dashboard", "--port", "0", *argv],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        first = proc.stdout.readline().strip()
        assert first.startswith("http://127.0.0.1:") and "/?token=" in first, (first, proc.stderr.read())  # type: ignore[union-attr]
        yield first
    finally:
        stop_process(proc, 10)


class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        return None


def fetch(url: str, host: str | None = None, cookie: str | None = None) -> tuple[int, dict[str, str], str]:
    req = urllib.request.Request(url)
    if host:
        req.add_header("Host", host)
    if cookie:
        req.add_header("Cookie", cookie)
    opener = urllib.request.build_opener(NoRedirect)
    try:
        with opener.open(req, timeout=30) as resp:
            return resp.status, dict(resp.headers), resp.read().decode("utf-8")
    except urllib.error.HTTPError as err:
        return err.code, dict(err.headers), err.read().decode("utf-8", "replace")
