"""The message being handled, as seen from anywhere in a handler (logs read it for their ids)."""

from __future__ import annotations

from contextvars import ContextVar
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from messages.base import Message


class HandlingContext:
    """Which actor is handling which message.

    One per receive loop, updated in place for each message (one attribute store instead of
    a new object and a ContextVar.set per message); background tasks get their own.
    """

    __slots__ = ("actor", "message")

    def __init__(self, actor: str, message: Message | None = None) -> None:
        self.actor = actor
        self.message = message

    @property
    def correlation_id(self) -> str | None:
        """The flow of the message being handled."""
        return None if self.message is None else self.message.correlation_id

    @property
    def message_id(self) -> str | None:
        """The id of the message being handled."""
        return None if self.message is None else self.message.message_id


current: ContextVar[HandlingContext | None] = ContextVar("watcher_handling", default=None)
