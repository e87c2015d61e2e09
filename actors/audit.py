"""The audit trail (ARCHITECTURE §6): append-only JSON lines, one record per state transition.

A record is written with one `write()` on an O_APPEND descriptor and flushed to disk
(`fdatasync`) before `append` returns, off the event loop. The schema is versioned; readers
refuse a version they do not know.
"""

from __future__ import annotations

import json
import os
import threading
from datetime import datetime
from typing import TYPE_CHECKING, Any, Literal

import anyio.to_thread
from pydantic import Field, ValidationError

from messages.base import Model, new_id, utcnow
from messages.errors import WatcherError

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator
    from pathlib import Path

AUDIT_SCHEMA_VERSION = 1

Entity = Literal["draw", "request", "step", "lease", "decision", "promotion", "llm", "system"]


class AuditError(WatcherError):
    """Raised when the audit trail cannot be written or a line of it cannot be read."""


class AuditRecord(Model):
    """One state transition of one entity, in one flow."""

    schema_version: int = AUDIT_SCHEMA_VERSION
    record_id: str = Field(default_factory=new_id)
    recorded_at: datetime = Field(default_factory=utcnow)
    correlation_id: str
    entity: Entity
    entity_id: str
    event: str
    """What happened, e.g. `claimed`, `released`, `completed`."""
    from_state: str | None = None
    to_state: str | None = None
    actor: str
    detail: dict[str, Any] = Field(default_factory=dict)


class AuditLog:
    """Appends records to one audit file; safe to share between actors and threads."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._lock = threading.Lock()
        self._fd: int | None = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        self.listeners: list[Callable[[], None]] = []
        """Called (on the event loop, must not block) after each `append`: the console reads
        the new record at once instead of waiting for the file watcher (~10 ms)."""

    def append_sync(self, record: AuditRecord) -> None:
        """Write one record and flush it to disk (blocking: call from a worker thread)."""
        line = (record.model_dump_json() + "\n").encode("utf-8")
        with self._lock:
            if self._fd is None:
                msg = f"audit log {self.path} is closed; record {record.event!r} not written"
                raise AuditError(msg)
            os.write(self._fd, line)
            os.fdatasync(self._fd)

    async def append(self, record: AuditRecord) -> None:
        """Write one record without blocking the event loop, then tell the listeners."""
        await anyio.to_thread.run_sync(self.append_sync, record)
        for listener in self.listeners:
            listener()

    def close(self) -> None:
        """Close the file; later appends raise AuditError."""
        with self._lock:
            if self._fd is not None:
                os.close(self._fd)
                self._fd = None


def read_audit(path: Path) -> Iterator[AuditRecord]:
    """Yield every record of an audit file, in order.

    Raises:
        AuditError: a line is not a valid record (names the line number).
    """
    with path.open(encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            if line.strip():
                yield _parse_line(line, f"{path}:{number}")


def _parse_line(line: str, where: str) -> AuditRecord:
    try:
        data = json.loads(line)
        record = AuditRecord.model_validate(data)
    except (ValueError, ValidationError) as exc:
        msg = f"{where}: not a valid audit record: {exc}"
        raise AuditError(msg) from exc
    if record.schema_version != AUDIT_SCHEMA_VERSION:
        msg = f"{where}: unknown audit schema_version {record.schema_version!r}"
        raise AuditError(msg)
    return record
