"""The state store's schema: forward-only migrations, applied in order at open.

One SQLite file (WAL) is the source of truth (ARCHITECTURE §7). Each table has one owning actor
that writes it; the others only read. A migration is never edited once released: add a new one.
"""

from __future__ import annotations

import sqlite3
from typing import TYPE_CHECKING

from actors.store.migrations import load_migrations
from messages.errors import WatcherError

if TYPE_CHECKING:
    from pathlib import Path


class StoreError(WatcherError):
    """Raised when the state store cannot be opened or is newer than this code."""


MIGRATIONS = load_migrations()

SCHEMA_VERSION = MIGRATIONS[-1][0]


def connect(path: Path) -> sqlite3.Connection:
    """Open (creating if needed) the store at `path`, in WAL mode, migrated to SCHEMA_VERSION.

    The connection may be handed between worker threads (never used by two at once: the async
    wrapper serialises access).
    """
    try:
        conn = sqlite3.connect(path, check_same_thread=False, isolation_level=None, timeout=30)
    except sqlite3.Error as exc:
        msg = f"cannot open state store {path}: {exc}"
        raise StoreError(msg) from exc
    conn.row_factory = sqlite3.Row
    conn.execute("PRAGMA journal_mode=WAL")
    # NORMAL is durable across application crashes in WAL mode; only power loss can drop the tail.
    conn.execute("PRAGMA synchronous=NORMAL")
    conn.execute("PRAGMA foreign_keys=ON")
    migrate(conn, path)
    return conn


def migrate(conn: sqlite3.Connection, path: Path) -> int:
    """Apply every migration newer than the file's `user_version`; return the final version."""
    current = int(conn.execute("PRAGMA user_version").fetchone()[0])
    if current > SCHEMA_VERSION:
        msg = (
            f"state store {path} has schema version {current}, newer than this code's "
            f"{SCHEMA_VERSION}; refusing to open it"
        )
        raise StoreError(msg)
    for version, _owner, sql in MIGRATIONS:
        if version <= current:
            continue
        # executescript() would commit first; running statement by statement keeps each
        # migration and its version bump in one transaction.
        conn.execute("BEGIN IMMEDIATE")
        try:
            for statement in sql.split(";"):
                if statement.strip():
                    conn.execute(statement)
            conn.execute(f"PRAGMA user_version = {version}")
        except sqlite3.Error as exc:
            conn.execute("ROLLBACK")
            msg = f"migration {version} of state store {path} failed: {exc}"
            raise StoreError(msg) from exc
        conn.execute("COMMIT")
        current = version
    return current
