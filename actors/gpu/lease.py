"""The VRAM lease's records: the one module that reads and writes the `leases` table.

A lease is taken before a job is placed on the GPU that holds the LLM and returned, always,
when that job is over (ARCHITECTURE §5). Each lease is a row: taken (with the node and GPU
the job was placed on), returned (with how), or — found still out at start-up — closed after
a crash. Functions take a `sqlite3.Connection` and run inside the store's worker thread.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from actors.store.rows import as_dicts
from messages.errors import WatcherError

if TYPE_CHECKING:
    import sqlite3

__all__ = [
    "LeaseError",
    "close_abandoned",
    "lease_count",
    "leases_of",
    "leases_out",
    "open_count",
    "record_returned",
    "record_taken",
    "returned_durations",
]


class LeaseError(WatcherError):
    """The GPU could not be made ready for a job (memory not freed before the deadline)."""


def _now() -> str:
    return datetime.now(UTC).isoformat()


def record_taken(
    conn: sqlite3.Connection,
    lease_id: str,
    *,
    job: str,
    correlation_id: str,
    node: str = "",
    gpu: str = "",
) -> None:
    """A lease went out for `job`, placed on `node` / `gpu`."""
    conn.execute(
        "INSERT INTO leases (lease_id, job, correlation_id, taken_at, node, gpu)"
        " VALUES (?, ?, ?, ?, ?, ?)",
        (lease_id, job, correlation_id, _now(), node, gpu),
    )


def record_returned(conn: sqlite3.Connection, lease_id: str, outcome: str = "returned") -> None:
    """The lease came back (`outcome` says how)."""
    conn.execute(
        "UPDATE leases SET returned_at = ?, outcome = ? WHERE lease_id = ?",
        (_now(), outcome, lease_id),
    )


def close_abandoned(conn: sqlite3.Connection) -> list[tuple[str, str, str]]:
    """Close every lease still out (its holder died); return their (lease_id, job, cid)."""
    rows = conn.execute(
        "SELECT lease_id, job, correlation_id FROM leases WHERE returned_at IS NULL"
    ).fetchall()
    conn.execute(
        "UPDATE leases SET returned_at = ?, outcome = 'closed after a crash'"
        " WHERE returned_at IS NULL",
        (_now(),),
    )
    return [(str(r[0]), str(r[1]), str(r[2])) for r in rows]


def leases_out(conn: sqlite3.Connection) -> list[dict[str, Any]]:
    """The leases out now (for `status`)."""
    return [
        {"lease_id": r[0], "job": r[1], "taken_at": r[2], "node": r[3], "gpu": r[4]}
        for r in conn.execute(
            "SELECT lease_id, job, taken_at, node, gpu FROM leases WHERE returned_at IS NULL"
        )
    ]


def lease_count(conn: sqlite3.Connection) -> int:
    """Leases ever taken."""
    return int(conn.execute("SELECT COUNT(*) FROM leases").fetchone()[0])


def open_count(conn: sqlite3.Connection) -> int:
    """Leases out now (taken, not returned)."""
    return int(conn.execute("SELECT COUNT(*) FROM leases WHERE returned_at IS NULL").fetchone()[0])


def returned_durations(conn: sqlite3.Connection) -> list[float | None]:
    """Seconds each returned lease was held (None where a stamp does not parse)."""
    rows = conn.execute(
        "SELECT (julianday(returned_at) - julianday(taken_at)) * 86400.0"
        " FROM leases WHERE returned_at IS NOT NULL"
    ).fetchall()
    return [None if r[0] is None else float(r[0]) for r in rows]


def leases_of(
    conn: sqlite3.Connection, *, correlation_id: str | None = None
) -> list[dict[str, Any]]:
    """The latest 200 leases (of one flow when `correlation_id` is given), newest first, with
    their duration in seconds once returned."""
    where, params = ("WHERE correlation_id = ?", (correlation_id,)) if correlation_id else ("", ())
    return as_dicts(
        conn.execute(
            "SELECT lease_id, job, correlation_id, taken_at, returned_at, outcome,"
            " (julianday(returned_at) - julianday(taken_at)) * 86400.0 AS duration_s"
            f" FROM leases {where} ORDER BY taken_at DESC LIMIT 200",
            params,
        )
    )
