"""One file through validation into the history (blocking): the path every draw takes.

The IngestionActor runs the steps separately (parsing off the store's thread slot); the
one-shot CLI runs `ingest_bytes`. Either way a file is parsed whole, then committed in one
transaction together with its file-log row, or rolled back and recorded as quarantined.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import TYPE_CHECKING, TypeVar

from actors.ingestion.filelog import close_file_row, open_file_row, quarantined_row
from actors.ingestion.history import AppendReport, append_draws
from actors.ingestion.parse import DrawFileError, parse_draw_file, stream_of
from actors.store import in_transaction

if TYPE_CHECKING:
    import sqlite3
    from collections.abc import Sequence

    from actors.ingestion.filelog import Origin
    from messages.ingestion import Draw

T = TypeVar("T")


@dataclass(frozen=True)
class FileOutcome:
    """What happened to one file: its draws appended (`report`) or its rule broken (`error`)."""

    name: str
    sha256: str
    correlation_id: str
    file_id: int
    report: AppendReport | None = None
    error: DrawFileError | None = None

    @property
    def quarantined(self) -> bool:
        """True when the file broke a rule and nothing of it entered the history."""
        return self.error is not None


def sha256_of(data: bytes) -> str:
    """The hex SHA-256 of a file's bytes (kept in the file log and the reason file)."""
    return hashlib.sha256(data).hexdigest()


def commit_file(
    conn: sqlite3.Connection,
    *,
    name: str,
    sha256: str,
    draws: Sequence[Draw],
    origin: Origin,
    correlation_id: str,
) -> tuple[int, AppendReport]:
    """Append a parsed file's draws and its file-log row; the caller holds the transaction.

    Raises:
        DrawFileError: a conflicting duplicate, or synthetic and real draws mixed.
    """
    stream = stream_of(name, draws)
    file_id = open_file_row(
        conn,
        name=name,
        sha256=sha256,
        origin=origin,
        stream=stream,
        records=len(draws),
        correlation_id=correlation_id,
    )
    report = append_draws(conn, name, draws, stream=stream, ingest_file=file_id)
    close_file_row(conn, file_id, report)
    return file_id, report


def ingest_bytes(
    conn: sqlite3.Connection,
    name: str,
    data: bytes,
    *,
    mod: int,
    max_bytes: int,
    origin: Origin,
    correlation_id: str,
) -> FileOutcome:
    """Parse, validate and commit one file's bytes (or record it as quarantined)."""
    sha256 = sha256_of(data)
    try:
        draws = parse_draw_file(name, data, mod=mod, max_bytes=max_bytes)
        file_id, report = in_transaction(
            conn,
            lambda c: commit_file(
                c,
                name=name,
                sha256=sha256,
                draws=draws,
                origin=origin,
                correlation_id=correlation_id,
            ),
        )
    except DrawFileError as exc:
        error = exc
        file_id = in_transaction(
            conn,
            lambda c: quarantined_row(
                c,
                name=name,
                sha256=sha256,
                origin=origin,
                error=error,
                correlation_id=correlation_id,
            ),
        )
        return FileOutcome(name, sha256, correlation_id, file_id, error=error)
    return FileOutcome(name, sha256, correlation_id, file_id, report=report)
