"""Append draws to the history (blocking; runs in the store's worker thread, in a transaction).

Dedupe by `draw_id` and by (timestamp, value); a conflicting duplicate (same id, other content)
fails the whole file. Every appended draw extends a SHA-256 hash chain over the ordered history
of its stream, stored with it, so any prefix of the history has a fingerprint.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from actors.ingestion.parse import DrawFileError

if TYPE_CHECKING:
    import sqlite3

    from messages.ingestion import Draw

GENESIS = "0" * 64


@dataclass(frozen=True)
class Appended:
    """One draw that entered the history."""

    draw: Draw
    is_backfill: bool
    history_len: int
    fingerprint: str


@dataclass(frozen=True)
class AppendReport:
    """What one file did to the history."""

    appended: tuple[Appended, ...]
    duplicates: int


def utc_text(stamp: datetime) -> str:
    """A timestamp as UTC ISO text: sorts lexicographically in time order."""
    return stamp.astimezone(UTC).isoformat()


def chain(previous: str, draw: Draw) -> str:
    """The next link of the history hash chain."""
    text = f"{previous}|{draw.draw_id}|{utc_text(draw.timestamp)}|{draw.value}"
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def append_draws(
    conn: sqlite3.Connection, name: str, draws: tuple[Draw, ...], *, stream: str
) -> AppendReport:
    """Insert new draws of one file into `stream`; the caller holds the transaction.

    Raises:
        DrawFileError: a draw conflicts with the history (same id, different content).
    """
    row = conn.execute(
        "SELECT fingerprint, (SELECT COUNT(*) FROM draws WHERE stream = ?),"
        " (SELECT MAX(timestamp) FROM draws WHERE stream = ?)"
        " FROM draws WHERE stream = ? ORDER BY seq DESC LIMIT 1",
        (stream, stream, stream),
    ).fetchone()
    fingerprint, count, latest = (row[0], row[1], row[2]) if row else (GENESIS, 0, None)
    appended: list[Appended] = []
    duplicates = 0
    now = utc_text(datetime.now(UTC))
    for draw in draws:
        stamp = utc_text(draw.timestamp)
        existing = conn.execute(
            "SELECT value, timestamp FROM draws WHERE stream = ? AND draw_id = ?",
            (stream, draw.draw_id),
        ).fetchone()
        if existing is not None:
            if (existing[0], existing[1]) != (draw.value, stamp):
                detail = (
                    f"draw_id {draw.draw_id!r} is already in the history with value "
                    f"{existing[0]} at {existing[1]}; this file says {draw.value} at {stamp}"
                )
                raise DrawFileError(name, "conflicting duplicate draw_id", detail)
            duplicates += 1
            continue
        same = conn.execute(
            "SELECT 1 FROM draws WHERE stream = ? AND timestamp = ? AND value = ?",
            (stream, stamp, draw.value),
        ).fetchone()
        if same is not None:
            duplicates += 1
            continue
        is_backfill = latest is not None and stamp < latest
        fingerprint = chain(fingerprint, draw)
        count += 1
        conn.execute(
            "INSERT INTO draws (draw_id, stream, timestamp, value, source, is_backfill,"
            " fingerprint, metadata, ingested_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                draw.draw_id,
                stream,
                stamp,
                draw.value,
                draw.source,
                int(is_backfill),
                fingerprint,
                json.dumps(draw.metadata, sort_keys=True),
                now,
            ),
        )
        if latest is None or stamp > latest:
            latest = stamp
        appended.append(Appended(draw, is_backfill, count, fingerprint))
    return AppendReport(tuple(appended), duplicates)
