"""The owner of `step_outcomes`: what the advisor decided after each unit of a run.

Blocking calls on one sqlite3 connection (the executor writes through the store's worker
thread; the console reads through here on its read-only connection).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from actors.store.rows import as_dicts

if TYPE_CHECKING:
    import sqlite3


def record(
    conn: sqlite3.Connection,
    *,
    run_id: str,
    request_id: str,
    step_id: int,
    attempt: int,
    status: str,
    action: str,
    confidence: float,
    summary: str,
    correlation_id: str,
    recorded_at: str | None = None,
) -> None:
    """Record one evaluated step (a row per unit and attempt), stamped now unless
    `recorded_at` (ISO 8601) is given: the bundle self-test seeds a history on a fixed clock."""
    conn.execute(
        "INSERT INTO step_outcomes (run_id, request_id, step_id, attempt, status, action,"
        " confidence, summary, correlation_id, recorded_at)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (
            run_id,
            request_id,
            step_id,
            attempt,
            status,
            action,
            confidence,
            summary,
            correlation_id,
            datetime.now(UTC).isoformat() if recorded_at is None else recorded_at,
        ),
    )


def steps_of(conn: sqlite3.Connection, request_id: str) -> list[dict[str, Any]]:
    """A request's steps in the order they were recorded: step_id, attempt, status, action,
    confidence, summary, recorded_at, run_id."""
    return as_dicts(
        conn.execute(
            "SELECT step_id, attempt, status, action, confidence, summary, recorded_at, run_id"
            " FROM step_outcomes WHERE request_id = ? ORDER BY id",
            (request_id,),
        )
    )


def newest(conn: sqlite3.Connection, limit: int) -> list[dict[str, Any]]:
    """The last `limit` steps of any request, newest first (ties: the later row first):
    recorded_at, status, request_id, run_id, step_id, attempt, action, confidence, summary, id."""
    return as_dicts(
        conn.execute(
            "SELECT recorded_at, status, request_id, run_id, step_id, attempt, action,"
            " confidence, summary, id FROM step_outcomes"
            " ORDER BY recorded_at DESC, id DESC LIMIT ?",
            (limit,),
        )
    )
