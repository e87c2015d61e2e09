"""The draw history (blocking; runs in the store's worker thread): append, verify, summarise.

This module owns the `draws` table: every other module reads it through the functions here
(`stream_counts`, `latest_fingerprint`, `recent_draws`, `values_in_time_order`,
`draws_in_time_order`, `draw_position`, `draws_of_file`, `stream_summaries`), so its columns
and their meaning are defined in one place.

Dedupe by `draw_id` and by (timestamp, value); a conflicting duplicate (same id, other content)
fails the whole file. Every appended draw extends a SHA-256 hash chain over its stream's
history in append order, stored with it, so any prefix of the history has a fingerprint.
Lookups are batched (a few queries per file, not one per draw): a 100,000-draw file costs
~20 queries instead of 200,000.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from actors.ingestion.parse import DrawFileError
from messages.ingestion import Draw

if TYPE_CHECKING:
    from collections.abc import Iterator, Sequence

GENESIS = "0" * 64
# SQLite allows 32,766 bound parameters (since 3.32); 900 keeps every query far below it and
# below the 999 of older builds.
_CHUNK = 900


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
    stream: str = "real"

    @property
    def backfill(self) -> int:
        """How many of the appended draws are backfill (older than the latest before them)."""
        return sum(1 for a in self.appended if a.is_backfill)


@dataclass(frozen=True)
class ChainCheck:
    """The result of recomputing a stream's hash chain from the genesis value."""

    stream: str
    ok: bool
    checked: int
    fingerprint: str
    """The recomputed head (GENESIS for an empty stream)."""
    first_bad_seq: int | None = None
    detail: str = ""


def utc_text(stamp: datetime) -> str:
    """A timestamp as UTC ISO text: sorts lexicographically in time order."""
    return stamp.astimezone(UTC).isoformat()


def chain(previous: str, draw: Draw) -> str:
    """The next link of the history hash chain."""
    return chain_text(previous, draw.draw_id, utc_text(draw.timestamp), draw.value)


def chain_text(previous: str, draw_id: str, stamp: str, value: int) -> str:
    """The next link, from the stored form of a draw (UTC ISO text timestamp)."""
    text = f"{previous}|{draw_id}|{stamp}|{value}"
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _chunks(items: Sequence[str]) -> Iterator[Sequence[str]]:
    for start in range(0, len(items), _CHUNK):
        yield items[start : start + _CHUNK]


def stream_head(conn: sqlite3.Connection, stream: str) -> tuple[str, int, str | None]:
    """(fingerprint, length, latest timestamp) of a stream; (GENESIS, 0, None) when empty."""
    row = conn.execute(
        "SELECT fingerprint, history_len, seq FROM draws WHERE stream = ?"
        " ORDER BY seq DESC LIMIT 1",
        (stream,),
    ).fetchone()
    if row is None:
        return GENESIS, 0, None
    fingerprint, length = row[0], row[1]
    if length is None:  # a row written before history_len existed (schema < 5)
        length = conn.execute(
            "SELECT COUNT(*) FROM draws WHERE stream = ? AND seq <= ?", (stream, row[2])
        ).fetchone()[0]
    latest = conn.execute(
        "SELECT MAX(timestamp) FROM draws WHERE stream = ?", (stream,)
    ).fetchone()[0]
    return str(fingerprint), int(length), latest


def _existing_ids(
    conn: sqlite3.Connection, stream: str, ids: Sequence[str]
) -> dict[str, tuple[int, str]]:
    found: dict[str, tuple[int, str]] = {}
    for chunk in _chunks(ids):
        marks = ",".join("?" * len(chunk))
        rows = conn.execute(
            "SELECT draw_id, value, timestamp FROM draws"
            f" WHERE stream = ? AND draw_id IN ({marks})",
            (stream, *chunk),
        )
        found.update({r[0]: (r[1], r[2]) for r in rows})
    return found


def _existing_stamps(
    conn: sqlite3.Connection, stream: str, stamps: Sequence[str]
) -> set[tuple[str, int]]:
    found: set[tuple[str, int]] = set()
    for chunk in _chunks(stamps):
        marks = ",".join("?" * len(chunk))
        rows = conn.execute(
            f"SELECT timestamp, value FROM draws WHERE stream = ? AND timestamp IN ({marks})",
            (stream, *chunk),
        )
        found.update((r[0], r[1]) for r in rows)
    return found


def append_draws(
    conn: sqlite3.Connection,
    name: str,
    draws: Sequence[Draw],
    *,
    stream: str,
    ingest_file: int | None = None,
) -> AppendReport:
    """Insert the new draws of one file into `stream`; the caller holds the transaction.

    Raises:
        DrawFileError: a draw conflicts with the history (same id, different content).
    """
    head = stream_head(conn, stream)
    latest = head[2]
    stamps = [utc_text(d.timestamp) for d in draws]
    if latest is None or min(stamps, default=latest) > latest:
        # The usual case, every draw newer than the history: no (timestamp, value) repeat is
        # possible and a reused draw_id trips the UNIQUE index, so skip the lookups (they
        # cost ~20 % of a 100,000-draw file) and fall back to them only on a collision.
        try:
            return _insert(conn, name, draws, stamps, head, {}, set(), stream, ingest_file)
        except sqlite3.IntegrityError:
            pass  # the failed statement was rolled back by SQLite; take the careful path
    known_ids = _existing_ids(conn, stream, [d.draw_id for d in draws])
    known_pairs = _existing_stamps(conn, stream, sorted(set(stamps)))
    return _insert(conn, name, draws, stamps, head, known_ids, known_pairs, stream, ingest_file)


def _insert(
    conn: sqlite3.Connection,
    name: str,
    draws: Sequence[Draw],
    stamps: list[str],
    head: tuple[str, int, str | None],
    known_ids: dict[str, tuple[int, str]],
    known_pairs: set[tuple[str, int]],
    stream: str,
    ingest_file: int | None,
) -> AppendReport:
    fingerprint, count, latest = head
    appended: list[Appended] = []
    rows: list[tuple[Any, ...]] = []
    duplicates = 0
    now = utc_text(datetime.now(UTC))
    for draw, stamp in zip(draws, stamps, strict=True):
        existing = known_ids.get(draw.draw_id)
        if existing is not None:
            if existing != (draw.value, stamp):
                detail = (
                    f"draw_id {draw.draw_id!r} is already in the history with value "
                    f"{existing[0]} at {existing[1]}; this file says {draw.value} at {stamp}"
                )
                raise DrawFileError(name, "conflicting duplicate draw_id", detail)
            duplicates += 1
            continue
        if (stamp, draw.value) in known_pairs:
            duplicates += 1
            continue
        is_backfill = latest is not None and stamp < latest
        fingerprint = chain_text(fingerprint, draw.draw_id, stamp, draw.value)
        count += 1
        known_pairs.add((stamp, draw.value))
        rows.append(
            (
                draw.draw_id,
                stream,
                stamp,
                draw.value,
                draw.source,
                int(is_backfill),
                fingerprint,
                json.dumps(draw.metadata, sort_keys=True) if draw.metadata else "{}",
                now,
                ingest_file,
                count,
            )
        )
        if latest is None or stamp > latest:
            latest = stamp
        appended.append(Appended(draw, is_backfill, count, fingerprint))
    conn.executemany(
        "INSERT INTO draws (draw_id, stream, timestamp, value, source, is_backfill,"
        " fingerprint, metadata, ingested_at, ingest_file, history_len)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        rows,
    )
    return AppendReport(tuple(appended), duplicates, stream)


def stream_counts(conn: sqlite3.Connection) -> dict[str, int]:
    """Draws per stream."""
    rows = conn.execute("SELECT stream, COUNT(*) FROM draws GROUP BY stream ORDER BY stream")
    return {str(stream): int(count) for stream, count in rows}


def latest_fingerprint(conn: sqlite3.Connection, stream: str = "real") -> str | None:
    """The stream's hash-chain head (what a snapshot of its history is), None when empty."""
    row = conn.execute(
        "SELECT fingerprint FROM draws WHERE stream = ? ORDER BY seq DESC LIMIT 1", (stream,)
    ).fetchone()
    return None if row is None else str(row[0])


def recent_draws(
    conn: sqlite3.Connection, stream: str = "real", limit: int = 5
) -> list[dict[str, Any]]:
    """The last `limit` draws of `stream`, newest first (id, timestamp, value, backfill)."""
    rows = conn.execute(
        "SELECT draw_id, timestamp, value, is_backfill FROM draws WHERE stream = ?"
        " ORDER BY seq DESC LIMIT ?",
        (stream, limit),
    )
    return [
        {"draw_id": r[0], "timestamp": r[1], "value": r[2], "backfill": bool(r[3])} for r in rows
    ]


def values_in_time_order(conn: sqlite3.Connection, stream: str = "real") -> list[tuple[str, int]]:
    """(draw_id, value) of the whole stream in time order (backfill at its place in time)."""
    rows = conn.execute(
        "SELECT draw_id, value FROM draws WHERE stream = ? ORDER BY timestamp, seq", (stream,)
    )
    return [(str(r[0]), int(r[1])) for r in rows]


def draws_of_file(conn: sqlite3.Connection, file_id: int) -> list[Appended]:
    """The draws one ingested file appended, in append order, as they were announced."""
    rows = conn.execute(
        "SELECT draw_id, timestamp, value, source, metadata, is_backfill, history_len,"
        " fingerprint FROM draws WHERE ingest_file = ? ORDER BY seq",
        (file_id,),
    )
    return [Appended(draw_from_row(r), bool(r[5]), int(r[6]), r[7]) for r in rows]


def draw_from_row(row: Sequence[Any]) -> Draw:
    """A `Draw` from the stored columns (draw_id, timestamp, value, source, metadata)."""
    return Draw(
        draw_id=row[0],
        timestamp=datetime.fromisoformat(row[1]),
        value=row[2],
        source=row[3],
        metadata=json.loads(row[4]),
    )


def verify_chain(conn: sqlite3.Connection, stream: str) -> ChainCheck:
    """Recompute `stream`'s hash chain in append order and compare it with the stored one."""
    fingerprint = GENESIS
    checked = 0
    rows = conn.execute(
        "SELECT seq, draw_id, timestamp, value, fingerprint FROM draws WHERE stream = ?"
        " ORDER BY seq",
        (stream,),
    )
    for seq, draw_id, stamp, value, stored in rows:
        fingerprint = chain_text(fingerprint, draw_id, stamp, value)
        checked += 1
        if fingerprint != stored:
            detail = (
                f"draw {draw_id!r} (seq {seq}) stores {stored[:12]}…, "
                f"recomputed {fingerprint[:12]}…"
            )
            return ChainCheck(stream, False, checked, fingerprint, seq, detail)
    return ChainCheck(stream, True, checked, fingerprint)


def stream_summaries(conn: sqlite3.Connection, *, last: int = 5) -> dict[str, Any]:
    """Per stream: draws, backfill, first and latest timestamp, fingerprint, the `last` draws.

    Pure reads; JSON-ready (the streams part of `actors.ingestion.summary.history_summary`).
    """
    streams: dict[str, Any] = {}
    groups = conn.execute(
        "SELECT stream, COUNT(*), SUM(is_backfill), MIN(timestamp), MAX(timestamp)"
        " FROM draws GROUP BY stream ORDER BY stream"
    ).fetchall()
    for stream, count, backfill, first, latest in groups:
        fingerprint, _length, _latest = stream_head(conn, stream)
        recent = conn.execute(
            "SELECT draw_id, timestamp, value, source, is_backfill FROM draws"
            " WHERE stream = ? ORDER BY seq DESC LIMIT ?",
            (stream, last),
        ).fetchall()
        streams[stream] = {
            "draws": count,
            "backfill": backfill or 0,
            "first_timestamp": first,
            "latest_timestamp": latest,
            "fingerprint": fingerprint,
            "last_draws": [
                {
                    "draw_id": r[0],
                    "timestamp": r[1],
                    "value": r[2],
                    "source": r[3],
                    "is_backfill": bool(r[4]),
                }
                for r in recent
            ],
        }
    return streams


def draw_position(conn: sqlite3.Connection, stream: str, draw_id: str) -> tuple[str, int] | None:
    """(timestamp, seq) of one draw of `stream` — where it sits in time order — or None."""
    row = conn.execute(
        "SELECT timestamp, seq FROM draws WHERE stream = ? AND draw_id = ?", (stream, draw_id)
    ).fetchone()
    return None if row is None else (str(row[0]), int(row[1]))


def draws_in_time_order(
    conn: sqlite3.Connection, stream: str, *, start: tuple[str, int] | None = None
) -> Iterator[tuple[str, str, int]]:
    """(draw_id, timestamp, value) of `stream` in time order, lazily, from the draw at `start`
    (a `draw_position`) on when given; backfill at its place in time."""
    where = "stream = ?"
    params: list[Any] = [stream]
    if start is not None:
        where += " AND (timestamp > ? OR (timestamp = ? AND seq >= ?))"
        params += [start[0], start[0], start[1]]
    rows = conn.execute(
        f"SELECT draw_id, timestamp, value FROM draws WHERE {where} ORDER BY timestamp, seq",
        params,
    )
    yield from rows
