"""The lifecycle conversation: asking the system to stop."""

from __future__ import annotations

from typing import Any, Literal

from messages.base import Message


class Shutdown(Message):
    """Ask the system to shut down in order (what SIGINT/SIGTERM do, as a message)."""

    kind: Literal["shutdown"] = "shutdown"
    reason: str = ""


class SystemStarted(Message):
    """Every actor is up (told to the lifecycle actor by the assembly)."""

    kind: Literal["system_started"] = "system_started"
    actors: tuple[str, ...] = ()


class Describe(Message):
    """Ask an actor for a snapshot of its state (for `status`); the reply is `Described`."""

    kind: Literal["describe"] = "describe"


class Described(Message):
    """An actor's state snapshot: plain JSON values."""

    kind: Literal["described"] = "described"
    actor: str
    state: dict[str, Any]
