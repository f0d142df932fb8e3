"""``--profile``: py-spy the running operator for a phase, and summarise where its time went."""

from __future__ import annotations

import contextlib
import shutil
import signal
import subprocess
import sys
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path

from benchmarks.context import Context
from benchmarks.kube import JSON


@contextlib.asynccontextmanager
async def spy(ctx: Context, name: str) -> AsyncIterator[None]:
    """py-spy the running operator for the body's duration (only with ``--profile``)."""
    if not ctx.options.profile or not ctx.operator_running():
        yield
        return
    exe = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    out = ctx.work_dir / f"profile-{name}"
    procs = [
        subprocess.Popen(
            [exe, "record", "--pid", str(ctx.op.pid), "--rate", "100", "--nonblocking"]
            + ["--format", fmt, "-o", f"{out}.{ext}"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for fmt, ext in (("raw", "txt"), ("flamegraph", "svg"))
    ]
    try:
        yield
    finally:
        for proc in procs:
            proc.send_signal(signal.SIGINT)
        for proc in procs:
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
        ctx.log("profile", f"py-spy profiles of the operator: {out}.txt (collapsed stacks), {out}.svg")
        ctx.report.details.setdefault("profile", {})[name] = top_frames(Path(f"{out}.txt"))


def top_frames(collapsed: Path, n: int = 25) -> JSON:
    """Self and inclusive sample shares per function from py-spy's collapsed stacks."""
    own: Counter[str] = Counter()
    incl: Counter[str] = Counter()
    total = 0
    try:
        lines = collapsed.read_text().splitlines()
    except OSError:
        return {}
    for line in lines:
        stack, _, count = line.rpartition(" ")
        if not count.isdigit():
            continue
        c = int(count)
        total += c
        frames = [
            f.split(" (")[0] + " (" + f.split(" (")[1].split(":")[0] + ")" if " (" in f else f for f in stack.split(";")
        ]
        own[frames[-1]] += c
        for f in set(frames):
            incl[f] += c
    if not total:
        return {}
    return {
        "samples": total,
        "self": [(f, round(100 * c / total, 1)) for f, c in own.most_common(n)],
        "inclusive": [(f, round(100 * c / total, 1)) for f, c in incl.most_common(n * 2)],
    }
