"""The message being handled, as seen from anywhere in a handler (logs read it for their ids)."""

from __future__ import annotations

from contextvars import ContextVar
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class HandlingContext:
    """Which actor is handling which message: bound once per message by the receive loop."""

    actor: str
    message_id: str | None = None
    correlation_id: str | None = None
    kind: str | None = None


current: ContextVar[HandlingContext | None] = ContextVar("watcher_handling", default=None)
