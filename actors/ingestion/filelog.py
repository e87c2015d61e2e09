"""The ingest file log (blocking, in the store's worker thread): one row per file handled.

A row is written in the same transaction as the file's draws, with `announced_at` NULL; the
actor sets it once every draw was told to the TriggerActor. Rows still NULL after a crash (or
written by the one-shot CLI, which has no TriggerActor to tell) are announced by the next
daemon: no committed draw goes unannounced.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Literal

from actors.ingestion.history import Appended, draws_of_file, utc_text

if TYPE_CHECKING:
    import sqlite3
    from collections.abc import Iterable

    from actors.ingestion.history import AppendReport
    from actors.ingestion.parse import DrawFileError

Origin = Literal["inbox", "cli", "injector"]


@dataclass(frozen=True)
class PendingFile:
    """A committed file whose draws were not all told to the TriggerActor."""

    file_id: int
    name: str
    stream: str
    correlation_id: str


def open_file_row(
    conn: sqlite3.Connection,
    *,
    name: str,
    sha256: str,
    origin: Origin,
    stream: str,
    records: int,
    correlation_id: str,
) -> int:
    """Insert a `processed` row (counts filled by `close_file_row`); return its id."""
    cursor = conn.execute(
        "INSERT INTO ingest_files (name, sha256, origin, outcome, stream, records,"
        " correlation_id, handled_at) VALUES (?, ?, ?, 'processed', ?, ?, ?, ?)",
        (name, sha256, origin, stream, records, correlation_id, utc_text(datetime.now(UTC))),
    )
    return int(cursor.lastrowid or 0)


def close_file_row(conn: sqlite3.Connection, file_id: int, report: AppendReport) -> None:
    """Record what the file did to the history; a file that appended nothing needs no news."""
    conn.execute(
        "UPDATE ingest_files SET appended = ?, duplicates = ?, backfill = ?,"
        " announced_at = CASE WHEN ? = 0 THEN handled_at END WHERE id = ?",
        (len(report.appended), report.duplicates, report.backfill, len(report.appended), file_id),
    )


def quarantined_row(
    conn: sqlite3.Connection,
    *,
    name: str,
    sha256: str,
    origin: Origin,
    error: DrawFileError,
    correlation_id: str,
) -> int:
    """Insert the row of a quarantined file (its draws were rolled back); return its id."""
    now = utc_text(datetime.now(UTC))
    cursor = conn.execute(
        "INSERT INTO ingest_files (name, sha256, origin, outcome, rule, correlation_id,"
        " handled_at, announced_at) VALUES (?, ?, ?, 'quarantined', ?, ?, ?, ?)",
        (name, sha256, origin, error.rule, correlation_id, now, now),
    )
    return int(cursor.lastrowid or 0)


def pending_files(conn: sqlite3.Connection) -> list[PendingFile]:
    """Committed files whose draws still await announcement, oldest first."""
    rows = conn.execute(
        "SELECT id, name, stream, correlation_id FROM ingest_files"
        " WHERE announced_at IS NULL ORDER BY id"
    )
    return [PendingFile(r[0], r[1], r[2], r[3]) for r in rows]


def appended_of(conn: sqlite3.Connection, file_id: int) -> list[Appended]:
    """The draws one file appended, in append order, as they were announced."""
    return draws_of_file(conn, file_id)


def mark_announced(conn: sqlite3.Connection, file_ids: Iterable[int]) -> None:
    """Note that every draw of these files was told to the TriggerActor."""
    now = utc_text(datetime.now(UTC))
    conn.executemany(
        "UPDATE ingest_files SET announced_at = ? WHERE id = ?", [(now, i) for i in file_ids]
    )


def outcome_counts(conn: sqlite3.Connection) -> dict[str, int]:
    """Handled files per outcome (processed, quarantined)."""
    rows = conn.execute("SELECT outcome, COUNT(*) FROM ingest_files GROUP BY outcome").fetchall()
    return {str(outcome): int(count) for outcome, count in rows}


def unannounced_count(conn: sqlite3.Connection) -> int:
    """Committed files that appended draws the TriggerActor has not been told yet."""
    row = conn.execute(
        "SELECT COUNT(*) FROM ingest_files WHERE announced_at IS NULL AND appended > 0"
    ).fetchone()
    return int(row[0])
