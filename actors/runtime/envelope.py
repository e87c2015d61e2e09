"""What travels through a mailbox: the message, who sent it, and where a reply goes."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import anyio

if TYPE_CHECKING:
    from messages.base import Message


class ReplySlot:
    """A one-shot place for the reply to an ask: set once, awaited once."""

    __slots__ = ("_done", "_error", "_value")

    def __init__(self) -> None:
        self._done = anyio.Event()
        self._value: Any = None
        self._error: BaseException | None = None

    @property
    def is_set(self) -> bool:
        """True once a value or an error was delivered."""
        return self._done.is_set()

    def set(self, value: Any) -> None:
        """Deliver the reply; later deliveries are ignored (the first one wins)."""
        if not self._done.is_set():
            self._value = value
            self._done.set()

    def fail(self, error: BaseException) -> None:
        """Deliver an error to the asker; later deliveries are ignored."""
        if not self._done.is_set():
            self._error = error
            self._done.set()

    async def wait(self) -> Any:
        """Wait for the reply and return it, or raise the delivered error."""
        await self._done.wait()
        if self._error is not None:
            raise self._error
        return self._value


@dataclass(slots=True)
class Envelope:
    """A message in a mailbox, with its sender's name and, for an ask, the reply slot."""

    message: Message
    sender: str | None = None
    reply: ReplySlot | None = field(default=None)
