"""The history section of `status`: draws, handled files and the injector, each from its owner."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from actors.ingestion.filelog import outcome_counts, unannounced_count
from actors.ingestion.history import stream_summaries
from actors.ingestion.synthetic import injector_positions

if TYPE_CHECKING:
    import sqlite3


def history_summary(conn: sqlite3.Connection, *, last: int = 5) -> dict[str, Any]:
    """The history section of `status`: per stream counts, last draws, fingerprint; files.

    Pure reads; JSON-ready. `files` counts handled files by outcome, `unannounced` those whose
    draws the TriggerActor has not been told yet; `injector` gives each synthetic stream's position.
    """
    outcomes = outcome_counts(conn)
    return {
        "streams": stream_summaries(conn, last=last),
        "files": {
            "processed": outcomes.get("processed", 0),
            "quarantined": outcomes.get("quarantined", 0),
            "unannounced": unannounced_count(conn),
        },
        "injector": injector_positions(conn),
    }
