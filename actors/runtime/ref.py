"""`ActorRef`: the only way to reach an actor — tell, tell_nowait, ask."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, TypeVar, overload

import anyio

from actors.runtime.context import current
from actors.runtime.envelope import Envelope, ReplySlot
from messages.errors import ActorError, MailboxFullError

if TYPE_CHECKING:
    from actors.runtime.cell import Cell
    from messages.base import Message

R = TypeVar("R")


class ActorRef:
    """A handle on one actor's mailbox; cheap to copy, safe to share between tasks."""

    __slots__ = ("_cell",)

    def __init__(self, cell: Cell) -> None:
        self._cell = cell

    @property
    def name(self) -> str:
        """The actor's name."""
        return self._cell.name

    @property
    def is_alive(self) -> bool:
        """True while the actor accepts messages."""
        return self._cell.accepting

    def __repr__(self) -> str:
        return f"ActorRef({self.name!r})"

    async def tell(self, message: Message, *, sender: str | None = None) -> None:
        """Queue `message`; waits while the mailbox is full (backpressure).

        Like `asyncio.Queue.put`, it does not yield to the scheduler when there is room, so a
        loop of tells is not a checkpoint. A message to a stopped actor goes to dead letters.
        """
        envelope = Envelope(message, sender or _sender_of(message))
        # Like asyncio.Queue.put: no scheduler round-trip unless the mailbox is full.
        if not self._cell.offer(envelope):
            await self._cell.put(envelope)

    def tell_nowait(self, message: Message, *, sender: str | None = None) -> None:
        """Queue `message` without waiting.

        Raises:
            MailboxFullError: the mailbox is full.
        """
        envelope = Envelope(message, sender or _sender_of(message))
        if not self._cell.offer(envelope):
            msg = (
                f"mailbox of actor {self.name!r} is full "
                f"({self._cell.capacity} messages); {message.kind!r} not queued"
            )
            raise MailboxFullError(msg)

    @overload
    async def ask(self, message: Message, *, timeout: float = ..., expect: None = None) -> Any: ...

    @overload
    async def ask(self, message: Message, *, timeout: float = ..., expect: type[R]) -> R: ...

    async def ask(
        self, message: Message, *, timeout: float = 30.0, expect: type[R] | None = None
    ) -> Any:
        """Send `message` and wait for the handler's reply.

        Raises:
            AskTimeoutError: no reply within `timeout` seconds (names actor, kind, seconds).
            ActorDeadError: the actor stopped before it replied.
            ActorError: the reply is not an instance of `expect`.
            Exception: whatever the handler raised, unchanged.
        """
        slot = ReplySlot()
        envelope = Envelope(message, _sender_of(message), slot)
        cell = self._cell
        cell.system.deadlines.add(slot, timeout, cell.name, message.kind)
        if not cell.offer(envelope):
            # Rare (a full mailbox): bound the wait for room too; the slot fails at the deadline.
            with anyio.move_on_after(timeout):
                await cell.put(envelope)
        reply = await slot.wait()
        if expect is not None and not isinstance(reply, expect):
            msg = (
                f"actor {self.name!r} answered {message.kind!r} with "
                f"{type(reply).__name__}, expected {expect.__name__}"
            )
            raise ActorError(msg)
        return reply


def _sender_of(message: Message) -> str | None:
    ctx = current.get()
    return message.sender or (ctx.actor if ctx is not None else None)
