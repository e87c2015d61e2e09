"""The lifecycle conversation: asking the system to stop."""

from __future__ import annotations

from typing import Literal

from messages.base import Message


class Shutdown(Message):
    """Ask the system to shut down in order (what SIGINT/SIGTERM do, as a message)."""

    kind: Literal["shutdown"] = "shutdown"
    reason: str = ""
