"""How far a request got, in the store (blocking: run through `Store.run`).

A request that halts or escalates mid-run keeps its run id and the index of the next unit, so
`resume` continues where it stopped instead of starting over.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from actors.store.rows import as_dicts

if TYPE_CHECKING:
    import sqlite3


@dataclass(frozen=True)
class Progress:
    """A request's run id, the unit to run next, and why it stopped (if it did)."""

    run_id: str
    next_unit: int
    status: str
    reason: str


def load(conn: sqlite3.Connection, request_id: str) -> Progress | None:
    """The saved progress of a request, or None if it never started."""
    row = conn.execute(
        "SELECT run_id, next_unit, status, reason FROM request_progress WHERE request_id = ?",
        (request_id,),
    ).fetchone()
    return None if row is None else Progress(str(row[0]), int(row[1]), str(row[2]), str(row[3]))


def save(conn: sqlite3.Connection, request_id: str, progress: Progress) -> None:
    """Record (or replace) a request's progress."""
    conn.execute(
        "INSERT INTO request_progress (request_id, run_id, next_unit, status, reason, updated_at)"
        " VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (request_id) DO UPDATE SET"
        " run_id = excluded.run_id, next_unit = excluded.next_unit, status = excluded.status,"
        " reason = excluded.reason, updated_at = excluded.updated_at",
        (
            request_id,
            progress.run_id,
            progress.next_unit,
            progress.status,
            progress.reason,
            datetime.now(UTC).isoformat(),
        ),
    )


def started(conn: sqlite3.Connection, request_id: str) -> bool:
    """Whether a request has saved progress (it began running at some point)."""
    row = conn.execute(
        "SELECT 1 FROM request_progress WHERE request_id = ?", (request_id,)
    ).fetchone()
    return row is not None


def progress_row(conn: sqlite3.Connection, request_id: str) -> dict[str, Any] | None:
    """Every column of one request's progress, or None if it never started."""
    rows = as_dicts(
        conn.execute("SELECT * FROM request_progress WHERE request_id = ?", (request_id,))
    )
    return rows[0] if rows else None


def waiting_for_a_person(conn: sqlite3.Connection) -> list[dict[str, Any]]:
    """Parked and escalated requests, oldest first: request_id, status, reason, updated_at."""
    return as_dicts(
        conn.execute(
            "SELECT request_id, status, reason, updated_at FROM request_progress"
            " WHERE status IN ('parked', 'escalated') ORDER BY updated_at"
        )
    )


def latest(conn: sqlite3.Connection, limit: int) -> list[dict[str, Any]]:
    """The `limit` most recently updated requests, newest first: request_id, status, reason,
    updated_at."""
    return as_dicts(
        conn.execute(
            "SELECT request_id, status, reason, updated_at FROM request_progress"
            " ORDER BY updated_at DESC LIMIT ?",
            (limit,),
        )
    )
