"""Errors raised by the local control plane driver."""

from __future__ import annotations


class DevClusterError(RuntimeError):
    """A clear, user-facing failure.

    ``message`` is one line (what the CLI prints); ``detail`` optionally carries more context,
    such as the last lines of a component's log. ``str()`` includes both.
    """

    def __init__(self, message: str, detail: str | None = None) -> None:
        self.message = message
        self.detail = detail
        super().__init__(f"{message}\n{detail}" if detail else message)
