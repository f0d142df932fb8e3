"""Process helpers for the control plane: start a detached process with its log, tell whether a
pid still runs (and is still that program), stop it with a grace period, pick free ports, and
read the end of a log.

Processes run in their own sessions, so a cluster started by the CLI outlives it; a later
process (another CLI call, a test session) finds them again by pid.
"""

from __future__ import annotations

import contextlib
import os
import random
import re
import shlex
import signal
import socket
import subprocess
import time
from collections.abc import Sequence
from pathlib import Path

from modelreg.devcluster.errors import DevClusterError

STOP_GRACE_SECONDS = 5.0
LOG_TAIL_LINES = 15

# Popen objects of the processes this interpreter started, keyed by pid, so they get reaped (and
# a dead child is not mistaken for a live zombie). Module-level: shared by all DevCluster objects.
_CHILDREN: dict[int, subprocess.Popen[bytes]] = {}


def spawn(name: str, argv: Sequence[str], log_path: Path, cwd: Path) -> int:
    """Start ``argv`` (the process ``name``) in its own session, appending its output to ``log_path`` after a header
    line (``==== <time> ... starting: <command>``); the new pid."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with log_path.open("ab") as log_fh:
        stamp = time.strftime("%Y-%m-%dT%H:%M:%S%z")
        log_fh.write(f"==== {stamp} modelreg dev-cluster starting: {shlex.join(argv)}\n".encode())
        log_fh.flush()
        try:
            proc = subprocess.Popen(
                list(argv),
                stdin=subprocess.DEVNULL,
                stdout=log_fh,
                stderr=subprocess.STDOUT,
                cwd=cwd,
                start_new_session=True,
                close_fds=True,
            )
        except OSError as exc:
            raise DevClusterError(f"cannot start {name} ({argv[0]}): {exc}") from None
    _CHILDREN[proc.pid] = proc
    return proc.pid


def pid_alive(pid: int, exe: str | None = None) -> bool:
    """Whether ``pid`` runs (not a zombie) and, when ``exe`` is given, is that executable."""
    child = _CHILDREN.get(pid)
    if child is not None:
        return child.poll() is None
    proc = Path(f"/proc/{pid}")
    if not Path("/proc/self").exists():  # not Linux: best effort
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        return True
    try:
        stat = (proc / "stat").read_text()
        argv0 = (proc / "cmdline").read_bytes().split(b"\0", 1)[0].decode(errors="replace")
    except OSError:
        return False
    if stat.rsplit(")", 1)[-1].split()[0] in ("Z", "X"):
        return False
    return exe is None or argv0 == exe


def _signal(pid: int, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, sig)


def _wait_gone(pid: int, exe: str | None, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not pid_alive(pid, exe):
            return True
        time.sleep(0.05)
    return not pid_alive(pid, exe)


def terminate(pid: int, exe: str | None, *, sig: int = signal.SIGTERM, grace: float = STOP_GRACE_SECONDS) -> None:
    """Send ``sig``; escalate to SIGKILL after ``grace`` seconds; reap our own children."""
    if pid_alive(pid, exe):
        _signal(pid, sig)
        if not _wait_gone(pid, exe, grace) and sig != signal.SIGKILL:
            _signal(pid, signal.SIGKILL)
            _wait_gone(pid, exe, 5.0)
    child = _CHILDREN.pop(pid, None)
    if child is not None:
        with contextlib.suppress(subprocess.TimeoutExpired):
            child.wait(timeout=5.0)


def free_ports(count: int) -> list[int]:
    """Distinct free TCP ports on 127.0.0.1, below the kernel's ephemeral range.

    Components are restarted on the same ports (fault injection, reuse); a port
    from the ephemeral range could meanwhile be taken by any outgoing connection,
    so ports are drawn at random from 20000-32767 and probed by binding.
    """
    low, high = 20000, _ephemeral_low() - 1
    rng = random.SystemRandom()
    socks: list[socket.socket] = []
    try:
        for _ in range(2000):
            if len(socks) == count:
                break
            port = rng.randint(low, high)
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                s.close()
                continue
            socks.append(s)
        while len(socks) < count:  # a crowded range: fall back to any free port
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.bind(("127.0.0.1", 0))
            socks.append(s)
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def _ephemeral_low() -> int:
    try:
        return int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768


def tail(path: Path, lines: int = LOG_TAIL_LINES) -> str:
    """The last ``lines`` lines of a log (read from its last 64 KiB)."""
    try:
        with path.open("rb") as fh:
            fh.seek(0, os.SEEK_END)
            fh.seek(max(0, fh.tell() - 64 * 1024))
            text = fh.read().decode(errors="replace")
    except OSError:
        return "(no log)"
    return "\n".join(text.splitlines()[-lines:]) or "(empty log)"


_ERROR_LINE = re.compile(r'^(Error:|error:|[EF]\d{4} |\{"level":"(error|fatal|panic)")')


def last_error(path: Path) -> str | None:
    """The last error-looking line of the latest run in a log (after its last ``==== `` header),
    shortened, or None."""
    text = tail(path, lines=400)
    run = text.rsplit("==== ", 1)[-1] if "==== " in text else text
    errors = [line.strip() for line in run.splitlines() if _ERROR_LINE.match(line)]
    if not errors:
        return None
    line = errors[-1]
    return line if len(line) <= 300 else line[:297] + "..."
