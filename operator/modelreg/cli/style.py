"""Colour for the CLI: only on a terminal, never with ``NO_COLOR`` (https://no-color.org) or TERM=dumb."""

from __future__ import annotations

import os
import re
from typing import IO, Any

RESET = "\x1b[0m"
COLOURS = {
    "Healthy": "\x1b[32m",  # green
    "Degraded": "\x1b[33m",  # yellow
    "Critical": "\x1b[1;31m",  # bold red
    "Unknown": "\x1b[2m",  # dim
    "Production": "\x1b[1m",
    "RolledBack": "\x1b[31m",
    "Archived": "\x1b[2m",
}
OK, BAD = "\x1b[32m", "\x1b[1;31m"


def colour_enabled(stream: IO[Any]) -> bool:
    if os.environ.get("NO_COLOR", "") != "":
        return False
    if os.environ.get("TERM") == "dumb":
        return False
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):
        return False


class Style:
    """Paint text for one output stream (a no-op when colour is off)."""

    def __init__(self, stream: IO[Any], enabled: bool | None = None) -> None:
        self.on = colour_enabled(stream) if enabled is None else enabled

    def paint(self, text: str, code: str | None) -> str:
        return f"{code}{text}{RESET}" if self.on and code else text

    def ok(self, text: str) -> str:
        return self.paint(text, OK)

    def bad(self, text: str) -> str:
        return self.paint(text, BAD)

    def word(self, word: str) -> str:
        return self.paint(word, COLOURS.get(word))

    def status(self, text: str) -> str:
        """``modelreg status`` output with its Stage and Health values coloured."""
        if not self.on:
            return text
        return re.sub(
            r"^((?:Stage|Health):\s+)(\w+)",
            lambda m: m.group(1) + self.word(m.group(2)),
            text,
            flags=re.M,
        )

    def table_column(self, text: str, header: str) -> str:
        """A rendered table with the words of one column coloured (padding kept, so it stays aligned)."""
        if not self.on:
            return text
        lines = text.split("\n")
        if not lines:
            return text
        start = lines[0].find(header)
        if start < 0:
            return text
        out = [lines[0]]
        for line in lines[1:]:
            m = re.match(r"\w+", line[start:])
            if m is None:
                out.append(line)
                continue
            word = m.group(0)
            out.append(line[:start] + self.word(word) + line[start + len(word) :])
        return "\n".join(out)
