"""Materialise the draw history from the store as the JSON Lines file jobs read."""

from __future__ import annotations

import hashlib
import json
import os
from typing import TYPE_CHECKING

from actors.ingestion.history import draw_position, draws_in_time_order
from messages.errors import InputError

if TYPE_CHECKING:
    import sqlite3
    from pathlib import Path


class HistoryStartError(InputError):
    """Raised when a job's history should start at a draw the store does not hold."""


def write_history(
    conn: sqlite3.Connection,
    path: Path,
    *,
    stream: str = "real",
    start_draw_id: str | None = None,
) -> tuple[int, str]:
    """Write `stream`'s draws in history order to `path` (atomically); return (count, sha256).

    Each line is `{"draw_id": ..., "timestamp": ..., "value": ...}` — the reference pipeline's
    input format. Backfill draws are included at their place in time order. With
    `start_draw_id` the file starts at that draw (Chapter 13's regime: after a detected change
    the jobs see the new regime only, so survivor anchors and train/holdout splits lie in it).

    Raises:
        HistoryStartError: `start_draw_id` is not a draw of `stream`.
    """
    start = None
    if start_draw_id is not None:
        start = draw_position(conn, stream, start_draw_id)  # the draws table's owner
        if start is None:
            raise HistoryStartError(
                f"history_from {start_draw_id!r}",
                f"is not a draw of stream {stream!r}",
                "the job's history cannot start there",
            )
    digest = hashlib.sha256()
    count = 0
    tmp = path.with_name(f".{path.name}.tmp")
    with tmp.open("w", encoding="utf-8") as handle:
        rows = draws_in_time_order(conn, stream, start=start)
        for draw_id, timestamp, value in rows:
            line = json.dumps({"draw_id": draw_id, "timestamp": timestamp, "value": value}) + "\n"
            handle.write(line)
            digest.update(line.encode("utf-8"))
            count += 1
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)
    return count, digest.hexdigest()
