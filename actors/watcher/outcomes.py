"""The owner of `request_outcomes` and `incidents`: how requests ended, and what needs a look.

Blocking calls on one sqlite3 connection (the actor runs them through the store's worker
thread; `status`, the foreground runs and the console read through here too). A request's
outcome is written once: a second write for the same id changes nothing, so recovery after a
crash can never record a second terminal state.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from actors.store.rows import as_dicts
from messages.base import new_id

if TYPE_CHECKING:
    import sqlite3


def _now() -> str:
    return datetime.now(UTC).isoformat()


def record(
    conn: sqlite3.Connection,
    *,
    request_id: str,
    request_type: str,
    status: str,
    correlation_id: str,
    reason: str,
    detail: dict[str, Any],
    finished_at: str | None = None,
) -> bool:
    """Record a terminal outcome (once per request id); True when this call recorded it.

    Stamped now unless `finished_at` (ISO 8601) is given: the bundle self-test seeds a history
    on a fixed clock.
    """
    cursor = conn.execute(
        "INSERT INTO request_outcomes (request_id, request_type, status, correlation_id,"
        " reason, detail, finished_at) VALUES (?, ?, ?, ?, ?, ?, ?)"
        " ON CONFLICT (request_id) DO NOTHING",
        (
            request_id,
            request_type,
            status,
            correlation_id,
            reason,
            json.dumps(detail, default=str),
            _now() if finished_at is None else finished_at,
        ),
    )
    return cursor.rowcount == 1


def status_of(conn: sqlite3.Connection, request_id: str) -> str | None:
    """The terminal status of a request, or None while it has none."""
    row = conn.execute(
        "SELECT status FROM request_outcomes WHERE request_id = ?", (request_id,)
    ).fetchone()
    return None if row is None else str(row[0])


def outcome_of(conn: sqlite3.Connection, request_id: str) -> tuple[str, str] | None:
    """(status, reason) of a request, or None while it has none."""
    row = conn.execute(
        "SELECT status, reason FROM request_outcomes WHERE request_id = ?", (request_id,)
    ).fetchone()
    return None if row is None else (str(row[0]), str(row[1]))


def recent(conn: sqlite3.Connection, limit: int = 3) -> list[tuple[str, str, str, str]]:
    """The latest outcomes, newest first: (request_id, request_type, status, reason)."""
    rows = conn.execute(
        "SELECT request_id, request_type, status, reason"
        " FROM request_outcomes ORDER BY finished_at DESC LIMIT ?",
        (limit,),
    ).fetchall()
    return [(str(a), str(b), str(c), str(d)) for a, b, c, d in rows]


def latest(conn: sqlite3.Connection, limit: int) -> list[dict[str, Any]]:
    """The latest `limit` outcomes, newest first (ties: the greater request id first, so the
    bundle's tier 2 is deterministic), as dicts: request_id, request_type, status,
    correlation_id, reason, finished_at."""
    return as_dicts(
        conn.execute(
            "SELECT request_id, request_type, status, correlation_id, reason, finished_at"
            " FROM request_outcomes ORDER BY finished_at DESC, request_id DESC LIMIT ?",
            (limit,),
        )
    )


def outcome_row(conn: sqlite3.Connection, request_id: str) -> dict[str, Any] | None:
    """Every column of one request's outcome (detail still JSON text), or None."""
    rows = as_dicts(
        conn.execute("SELECT * FROM request_outcomes WHERE request_id = ?", (request_id,))
    )
    return rows[0] if rows else None


def oldest_first(conn: sqlite3.Connection) -> list[tuple[str, str, str, str, str]]:
    """Every outcome, oldest first: (request_id, request_type, status, correlation_id, reason)."""
    rows = conn.execute(
        "SELECT request_id, request_type, status, correlation_id, reason"
        " FROM request_outcomes ORDER BY finished_at, request_id"
    ).fetchall()
    return [(str(a), str(b), str(c), str(d), str(e)) for a, b, c, d, e in rows]


def counts_by_type(conn: sqlite3.Connection) -> list[tuple[str, str, int]]:
    """(request_type, status, count) of every outcome recorded, per type and status."""
    rows = conn.execute(
        "SELECT request_type, status, COUNT(*) FROM request_outcomes GROUP BY 1, 2"
    ).fetchall()
    return [(str(a), str(b), int(c)) for a, b, c in rows]


def open_incident(
    conn: sqlite3.Connection,
    *,
    severity: str,
    source: str,
    summary: str,
    correlation_id: str,
    incident_id: str | None = None,
    opened_at: str | None = None,
) -> str:
    """Open an incident (a failed or escalated request); returns its id.

    A fresh id, stamped now, unless `incident_id` / `opened_at` are given: the bundle self-test
    seeds fixed incidents on a fixed clock.
    """
    iid = new_id() if incident_id is None else incident_id
    conn.execute(
        "INSERT INTO incidents (incident_id, opened_at, severity, source, summary,"
        " correlation_id) VALUES (?, ?, ?, ?, ?, ?)",
        (
            iid,
            _now() if opened_at is None else opened_at,
            severity,
            source,
            summary,
            correlation_id,
        ),
    )
    return iid


def resolve_incidents(conn: sqlite3.Connection, source: str, at: str | None = None) -> int:
    """Close the open incidents of one source (a resumed or superseded request), stamped now
    unless `at` (ISO 8601) is given."""
    cursor = conn.execute(
        "UPDATE incidents SET resolved_at = ? WHERE source = ? AND resolved_at IS NULL",
        (_now() if at is None else at, source),
    )
    return cursor.rowcount


def open_incidents(conn: sqlite3.Connection, limit: int) -> list[dict[str, Any]]:
    """At most `limit` unresolved incidents, newest first (ties: the greater id first):
    incident_id, opened_at, severity, source, summary, correlation_id."""
    return as_dicts(
        conn.execute(
            "SELECT incident_id, opened_at, severity, source, summary, correlation_id"
            " FROM incidents WHERE resolved_at IS NULL"
            " ORDER BY opened_at DESC, incident_id DESC LIMIT ?",
            (limit,),
        )
    )
