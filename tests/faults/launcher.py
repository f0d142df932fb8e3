"""`modelreg run` with test-only fault injection around the operator's own API writes.

Used by the fault suite instead of ``python -m modelreg.cli.main run`` (same
arguments). It wraps :meth:`modelreg.kube.client.KubeClient.request` — every
write the engine and the healer make goes through it — and, driven by
environment variables:

* ``MODELREG_FAULT_WRITELOG=<file>``: append ``<monotonic> SEND <METHOD> <path>`` before
  each mutating request and ``<monotonic> <METHOD> <path>`` once it succeeded, so a write
  sent just before a kill is seen (whether it landed is the API server's audit log's to
  say: ``FaultCluster.audit``);
* ``MODELREG_FAULT_CONTROL=<file>``: a JSON file ``{"crash_after": N, "match": "text"}``
  read before each mutating request; after the N-th successful mutating request
  (Events excluded) whose ``METHOD path`` contains ``match`` (default: any) the
  process SIGKILLs itself — a crash right after a write landed and before the
  operator could act on the answer. The file is consumed
  (deleted) when it fires, so a restarted operator runs normally.
  ``{"crash_before": "DELETE /apis/"}`` dies instead right before the first
  mutating request whose ``METHOD path`` contains that text;
* ``MODELREG_FAULT_DELAY_MS=<ms>``: sleep before every request (a slow network);
* ``MODELREG_FAULT_STANDBY=1``: import everything, then wait for a line on stdin
  before starting (a warm spare, so that a restart after a kill does not pay
  Python's import time again; the operator itself still starts from scratch).

Nothing here changes what the operator decides; it only chooses when it dies.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
import time
from pathlib import Path
from typing import Any

MUTATING = {"POST", "PATCH", "PUT", "DELETE"}


def _install() -> None:
    from modelreg.kube import client as kc

    control = os.environ.get("MODELREG_FAULT_CONTROL")
    writelog = os.environ.get("MODELREG_FAULT_WRITELOG")
    delay = float(os.environ.get("MODELREG_FAULT_DELAY_MS", "0") or 0) / 1000.0
    state: dict[str, Any] = {"armed": None, "seen": 0}
    original = kc.KubeClient.request

    def read() -> dict[str, Any]:
        if not control:
            return {}
        try:
            return json.loads(Path(control).read_text())
        except (OSError, ValueError):
            return {}

    def die(why: str) -> None:
        try:
            os.unlink(control)  # type: ignore[arg-type]
        except OSError:
            pass
        if writelog:
            with open(writelog, "a", encoding="utf-8") as fh:
                fh.write(f"{time.monotonic():.4f} CRASH {why}\n")
        os.kill(os.getpid(), signal.SIGKILL)

    def armed(method: str, path: str) -> int | None:
        data = read()
        before = data.get("crash_before")
        if before and before in f"{method} {path}":
            die(f"before {method} {path}")
        n = data.get("crash_after")
        match = str(data.get("match", ""))
        if (n, match) != state["armed"]:  # (re-)armed: count from now on
            state["armed"], state["seen"] = (n, match), 0
        if n is None or match not in f"{method} {path}":
            return None
        return int(n)

    async def request(self: Any, method: str, path: str, **kwargs: Any) -> Any:
        if delay:
            await asyncio.sleep(delay)
        mutating = method.upper() in MUTATING and "/events" not in path
        limit = armed(method.upper(), path) if mutating else None
        if method.upper() in MUTATING and writelog:
            with open(writelog, "a", encoding="utf-8") as fh:
                fh.write(f"{time.monotonic():.4f} SEND {method.upper()} {path}\n")
        out = await original(self, method, path, **kwargs)
        if method.upper() in MUTATING and writelog:
            with open(writelog, "a", encoding="utf-8") as fh:
                fh.write(f"{time.monotonic():.4f} {method.upper()} {path}\n")
        if mutating and limit is not None:
            state["seen"] += 1
            if state["seen"] >= int(limit):
                die(f"after {state['seen']} writes")
        return out

    kc.KubeClient.request = request  # type: ignore[method-assign]


def main() -> int:
    _install()
    import kopf  # noqa: F401 - warm the imports before waiting

    import modelreg.controller.handlers
    import modelreg.controller.run  # noqa: F401
    from modelreg.cli.main import main as cli_main

    if os.environ.get("MODELREG_FAULT_STANDBY") == "1":
        if not sys.stdin.readline():  # EOF: the test is done with this spare
            return 0

    return int(cli_main(sys.argv[1:]) or 0)


if __name__ == "__main__":
    sys.exit(main())
