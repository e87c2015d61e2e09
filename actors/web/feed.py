"""The audit trail as a live feed: the console's one view of what happened, and when.

`AuditFeed` reads `audit.jsonl` from its start once, then follows it (inotify through watchfiles,
with a 1 s re-check as a safety net). Every complete line becomes a plain dict that is folded
into running totals (for `/metrics`), kept when it marks the loop's chart, and handed to every
subscriber (the SSE streams, the notifier). The file is the source of truth: records written by
other processes (the CLI's approve, halt, resume) arrive here as the daemon's own do.

A line that is not JSON is counted and skipped, never fatal: the audit's own reader names it.
"""

from __future__ import annotations

import json
import os
from collections import Counter, deque
from typing import TYPE_CHECKING, Any

import anyio
import structlog
import watchfiles

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path

    from anyio.abc import TaskStatus
    from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream

log = structlog.get_logger("web.feed")

Record = dict[str, Any]

# Records that mark the loop's chart: (entity, event) pairs; `decision` markers come from the
# trigger_decisions table, which knows each decision's draw index.
MARKER_EVENTS = frozenset(
    {
        ("decision", "change_alarm"),
        ("decision", "no_signal"),
        ("request", "escalation"),
        ("request", "completed"),
        ("request", "failed"),
        ("promotion", "promoted"),
        ("promotion", "rejected"),
        ("promotion", "rolled_back"),
        ("system", "halted"),
        ("system", "resumed"),
    }
)
# Markers kept in memory: a year of hourly draws with a marker each is ~9,000.
MAX_MARKERS = 20_000
# Job and LLM timings kept for the histograms (the totals above never forget).
MAX_TIMINGS = 50_000
# A subscriber that falls this many records behind is dropped (its browser reconnects).
SUBSCRIBER_BUFFER = 1_000
RECHECK_S = 1.0
# ~20,000 records per read: the start-up pass over a 1 GB trail holds 8 MiB at a time.
CHUNK_BYTES = 8 << 20


class AuditFeed:
    """Follows one audit file; keeps totals and markers; fans records out to subscribers."""

    def __init__(self, path: Path, track: frozenset[tuple[str, str]] = frozenset()) -> None:
        self.path = path
        self.track = track
        """(entity, event) pairs whose records are numbered per item and kept (the notifier's)."""
        self.tracked: list[Record] = []
        self._nth: Counter[tuple[str, str, str]] = Counter()
        self.offset = 0
        self.records = 0
        self.bad_lines = 0
        self.counts: Counter[tuple[str, str]] = Counter()
        self.markers: deque[Record] = deque(maxlen=MAX_MARKERS)
        self.job_seconds: deque[tuple[str, float]] = deque(maxlen=MAX_TIMINGS)
        self.llm_seconds: deque[float] = deque(maxlen=MAX_TIMINGS)
        self.llm_sources: Counter[str] = Counter()
        self.last: deque[Record] = deque(maxlen=200)
        self._subscribers: list[MemoryObjectSendStream[Record]] = []
        self._listeners: list[Callable[[Record], None]] = []
        self._partial = b""
        self._changed = anyio.Event()

    @property
    def more(self) -> bool:
        """True when the file holds bytes not read yet (after a bounded read)."""
        try:
            return os.stat(self.path).st_size > self.offset
        except FileNotFoundError:
            return False

    @property
    def position(self) -> int:
        """Byte offset just after the last complete record read."""
        return self.offset - len(self._partial)

    # -- consumers ----------------------------------------------------------------------------

    def subscribe(self) -> MemoryObjectReceiveStream[Record]:
        """A stream of every record from now on (closed when the subscriber falls behind)."""
        send, receive = anyio.create_memory_object_stream[Record](SUBSCRIBER_BUFFER)
        self._subscribers.append(send)
        return receive

    def listen(self, callback: Callable[[Record], None]) -> None:
        """Call `callback(record)` for each new record (synchronously; it must not block)."""
        self._listeners.append(callback)

    # -- reading ------------------------------------------------------------------------------

    def read_new(self) -> list[Record]:
        """Read what was appended since the last call (blocking: run it in a worker thread)."""
        try:
            size = os.stat(self.path).st_size
        except FileNotFoundError:
            return []
        if size < self.offset:
            # Replaced or truncated by hand: start again from its beginning.
            log.warning("web.audit_truncated", path=str(self.path), size=size, offset=self.offset)
            self.offset, self._partial = 0, b""
        if size == self.offset:
            return []
        with self.path.open("rb") as handle:
            handle.seek(self.offset)
            # Bounded: a years-old trail is read in pieces, never all at once (`more` says so).
            chunk = handle.read(min(size - self.offset, CHUNK_BYTES))
        begin = self.offset - len(self._partial)
        self.offset += len(chunk)
        data = self._partial + chunk
        lines = data.split(b"\n")
        # The last piece is a line still being written (or b"" after a newline).
        self._partial = lines.pop()
        out: list[Record] = []
        end = begin
        for line in lines:
            end += len(line) + 1
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except ValueError:
                self.bad_lines += 1
                continue
            if isinstance(record, dict):
                # Where the next record starts: a reader's resumable position (the notifier's).
                record["_offset"] = end
                out.append(record)
            else:
                self.bad_lines += 1
        return out

    def fold(self, records: list[Record], *, publish: bool) -> None:
        """Add records to the totals and markers; hand them on when `publish`."""
        for record in records:
            self.records += 1
            entity, event = str(record.get("entity", "")), str(record.get("event", ""))
            self.counts[entity, event] += 1
            detail = record.get("detail") or {}
            if (entity, event) in MARKER_EVENTS:
                self.markers.append(record)
            if (entity, event) in self.track:
                # The how-many-th record of this (entity, id, event): the same number for the
                # same line on every read of the append-only file, so it keys an item.
                item = (entity, str(record.get("entity_id", "")), event)
                record["_nth"] = self._nth[item]
                self._nth[item] += 1
                self.tracked.append(record)
            if entity == "step" and event.startswith("job_") and event != "job_started":
                duration = detail.get("duration_s")
                if isinstance(duration, int | float):
                    self.job_seconds.append((str(detail.get("job", "")), float(duration)))
            if entity == "decision" and event == "advised":
                self.llm_sources[str(detail.get("source", "unknown"))] += 1
                latency = detail.get("latency_s")
                if isinstance(latency, int | float):
                    self.llm_seconds.append(float(latency))
            self.last.append(record)
            if publish:
                self._publish(record)

    def _publish(self, record: Record) -> None:
        for callback in self._listeners:
            callback(record)
        for send in list(self._subscribers):
            try:
                send.send_nowait(record)
            except (anyio.WouldBlock, anyio.BrokenResourceError, anyio.ClosedResourceError):
                # Too slow, or gone: drop it; an SSE client reconnects and re-reads the page.
                self._subscribers.remove(send)
                send.close()

    def load(self) -> None:
        """Fold everything in the file so far, publishing nothing (blocking: a worker thread)."""
        while True:
            batch = self.read_new()
            self.fold(batch, publish=False)
            if not batch and not self.more:
                return

    def poke(self) -> None:
        """Something may have been appended: read now (used by tests and in-process writers)."""
        self._changed.set()

    # -- the task -----------------------------------------------------------------------------

    async def run(self, *, task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        """Read the whole file, report ready, then follow it until cancelled."""
        await anyio.to_thread.run_sync(self.load)
        log.info("web.audit_loaded", records=self.records, bad_lines=self.bad_lines)
        task_status.started()
        async with anyio.create_task_group() as tg:
            tg.start_soon(self._watch)
            tg.start_soon(self._recheck)
            while True:
                await self._changed.wait()
                self._changed = anyio.Event()
                new = await anyio.to_thread.run_sync(self.read_new)
                self.fold(new, publish=True)
                if self.more:
                    self._changed.set()

    async def _watch(self) -> None:
        name = self.path.name
        # Not recursive: the state directory's subfolders (runs/, logs/) change all the time.
        async for _changes in watchfiles.awatch(
            self.path.parent,
            watch_filter=lambda _change, changed: os.path.basename(changed) == name,
            recursive=False,
            step=5,
            debounce=20,
            rust_timeout=100,
        ):
            self._changed.set()

    async def _recheck(self) -> None:
        # A safety net: inotify can drop events under load (queue overflow); a stat cannot.
        while True:
            await anyio.sleep(RECHECK_S)
            self._changed.set()

    def close(self) -> None:
        """Close every subscriber's stream."""
        for send in self._subscribers:
            send.close()
        self._subscribers.clear()
