"""Materialise the draw history from the store as the JSON Lines file jobs read."""

from __future__ import annotations

import hashlib
import json
import os
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import sqlite3
    from pathlib import Path


def write_history(conn: sqlite3.Connection, path: Path, *, stream: str = "real") -> tuple[int, str]:
    """Write `stream`'s draws in history order to `path` (atomically); return (count, sha256).

    Each line is `{"draw_id": ..., "timestamp": ..., "value": ...}` — the reference pipeline's
    input format. Backfill draws are included at their place in time order.
    """
    digest = hashlib.sha256()
    count = 0
    tmp = path.with_name(f".{path.name}.tmp")
    with tmp.open("w", encoding="utf-8") as handle:
        rows = conn.execute(
            "SELECT draw_id, timestamp, value FROM draws WHERE stream = ? ORDER BY timestamp, seq",
            (stream,),
        )
        for draw_id, timestamp, value in rows:
            line = json.dumps({"draw_id": draw_id, "timestamp": timestamp, "value": value}) + "\n"
            handle.write(line)
            digest.update(line.encode("utf-8"))
            count += 1
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)
    return count, digest.hexdigest()
