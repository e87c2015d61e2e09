"""Ask deadlines without a cancel scope per ask.

On asyncio a cancel scope costs several microseconds to enter and leave — as much as the rest
of an ask. Instead each pending ask registers its deadline here, and one task per system
sleeps until the earliest one and fails the asks whose time is up. A finished ask is dropped
lazily when its deadline comes up (or when the heap is compacted).
"""

from __future__ import annotations

import heapq
import itertools
from typing import TYPE_CHECKING

import anyio

from messages.errors import AskTimeoutError

if TYPE_CHECKING:
    from actors.runtime.envelope import ReplySlot


class Deadlines:
    """A heap of (deadline, slot) served by `run()`, which the system starts in its group."""

    def __init__(self) -> None:
        self._heap: list[tuple[float, int, ReplySlot, AskTimeoutError]] = []
        self._order = itertools.count()
        self._wake: anyio.Event | None = None
        self._sleeping_until = float("inf")

    def add(self, slot: ReplySlot, seconds: float, actor: str, kind: str) -> None:
        """Fail `slot` with AskTimeoutError unless it is set within `seconds`."""
        deadline = anyio.current_time() + seconds
        error = AskTimeoutError(actor, kind, seconds)
        heapq.heappush(self._heap, (deadline, next(self._order), slot, error))
        if deadline < self._sleeping_until and self._wake is not None:
            self._wake.set()
        # Finished asks stay in the heap until their deadline; compact when they dominate.
        if len(self._heap) > 4096 and len(self._heap) % 4096 == 0:
            self._heap = [item for item in self._heap if not item[2].is_set]
            heapq.heapify(self._heap)

    async def run(self) -> None:
        """Fail expired asks, forever (cancelled with the system)."""
        while True:
            now = anyio.current_time()
            heap = self._heap
            while heap and (heap[0][0] <= now or heap[0][2].is_set):
                _deadline, _n, slot, error = heapq.heappop(heap)
                slot.fail(error)
            self._wake = anyio.Event()
            self._sleeping_until = heap[0][0] if heap else float("inf")
            with anyio.move_on_after(self._sleeping_until - now):
                await self._wake.wait()
