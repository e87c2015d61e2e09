"""A bounded FIFO mailbox for one receiver and many senders, on anyio events.

Cheaper than a memory object stream for this one job: putting into a mailbox with room never
touches the scheduler (like `asyncio.Queue.put`), and an event is created only when a side
actually has to wait — the receiver on an empty mailbox, a sender on a full one.
"""

from __future__ import annotations

from collections import deque
from typing import TYPE_CHECKING

import anyio

if TYPE_CHECKING:
    from actors.runtime.envelope import Envelope


class MailboxClosedError(Exception):
    """Internal: put() on a mailbox that was closed while (or before) it waited."""


class Mailbox:
    """Bounded FIFO of envelopes; `put` waits while full, `put_nowait` reports fullness."""

    __slots__ = ("_not_empty", "_not_full", "_queue", "capacity", "closed")

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self.closed = False
        self._queue: deque[Envelope] = deque()
        self._not_empty: anyio.Event | None = None
        self._not_full: anyio.Event | None = None

    def __len__(self) -> int:
        return len(self._queue)

    def put_nowait(self, envelope: Envelope) -> bool:
        """Append if there is room; False when full. The caller checks `closed` first."""
        if len(self._queue) >= self.capacity:
            return False
        self._queue.append(envelope)
        waiter = self._not_empty
        if waiter is not None:
            self._not_empty = None
            waiter.set()
        return True

    async def put(self, envelope: Envelope) -> None:
        """Append, waiting while the mailbox is full.

        Raises:
            MailboxClosedError: the mailbox was closed before there was room.
        """
        while not self.put_nowait(envelope):
            if self.closed:
                raise MailboxClosedError
            if self._not_full is None:
                self._not_full = anyio.Event()
            await self._not_full.wait()
            if self.closed:
                raise MailboxClosedError

    def get_nowait(self) -> Envelope | None:
        """The oldest envelope, or None when empty."""
        if not self._queue:
            return None
        envelope = self._queue.popleft()
        waiter = self._not_full
        if waiter is not None:
            self._not_full = None
            waiter.set()
        return envelope

    async def get(self) -> Envelope | None:
        """The oldest envelope, waiting while empty; None once closed and drained."""
        while True:
            envelope = self.get_nowait()
            if envelope is not None:
                return envelope
            if self.closed:
                return None
            if self._not_empty is None:
                self._not_empty = anyio.Event()
            await self._not_empty.wait()

    def close(self) -> None:
        """No more puts; wake every waiter (senders fail, the receiver drains then stops)."""
        self.closed = True
        for waiter in (self._not_empty, self._not_full):
            if waiter is not None:
                waiter.set()
        self._not_empty = self._not_full = None
