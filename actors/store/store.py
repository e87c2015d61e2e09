"""Async access to the state store: every SQLite call runs in a worker thread, one at a time."""

from __future__ import annotations

from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, TypeVar

import anyio
import anyio.to_thread

from actors.store.schema import connect

if TYPE_CHECKING:
    import sqlite3
    from collections.abc import AsyncIterator, Callable
    from pathlib import Path

T = TypeVar("T")


def in_transaction(conn: sqlite3.Connection, func: Callable[[sqlite3.Connection], T]) -> T:
    """Run `func(conn)` inside BEGIN IMMEDIATE … COMMIT (ROLLBACK if it raises); blocking."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        result = func(conn)
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")
    return result


class Store:
    """One connection to the state store, shared by the actors of one system."""

    def __init__(self, conn: sqlite3.Connection, path: Path) -> None:
        self.path = path
        self._conn = conn
        # One slot: a sqlite3 connection must never be used from two threads at once.
        self._slot = anyio.CapacityLimiter(1)

    async def run(self, func: Callable[[sqlite3.Connection], T]) -> T:
        """Run `func(connection)` in a worker thread and return its result."""
        return await anyio.to_thread.run_sync(func, self._conn, limiter=self._slot)

    async def transaction(self, func: Callable[[sqlite3.Connection], T]) -> T:
        """Run `func(connection)` inside BEGIN IMMEDIATE … COMMIT (ROLLBACK if it raises)."""
        return await self.run(lambda conn: in_transaction(conn, func))

    def close(self) -> None:
        """Close the connection (blocking; call at shutdown)."""
        self._conn.close()


@asynccontextmanager
async def open_store(path: Path) -> AsyncIterator[Store]:
    """Open (creating and migrating) the store for the duration of the block."""
    conn = await anyio.to_thread.run_sync(connect, path)
    store = Store(conn, path)
    try:
        yield store
    finally:
        with anyio.CancelScope(shield=True):
            await anyio.to_thread.run_sync(store.close)
