"""IngestionActor: watches the inbox, validates draw files, appends them, tells Chapter 13."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import TYPE_CHECKING

import anyio
import anyio.to_thread
import watchfiles

from actors.ingestion.history import AppendReport, append_draws
from actors.ingestion.parse import SUFFIXES, DrawFileError, parse_draw_file
from actors.runtime import Actor, handles
from actors.services import TRIGGER
from actors.watcher.spool import write_atomic
from messages.base import new_id
from messages.ingestion import DrawIngested, InboxFileSeen, IngestInbox

if TYPE_CHECKING:
    import sqlite3

    from actors.services import Services


def is_candidate(path: Path) -> bool:
    """Files still being written (dotfiles, `*.tmp`) are ignored until renamed."""
    return (
        not path.name.startswith(".")
        and not path.name.endswith(".tmp")
        and path.suffix.lower() in SUFFIXES
    )


def _unique_target(folder: Path, name: str) -> Path:
    target = folder / name
    if target.exists():
        target = folder / f"{Path(name).stem}.{new_id()[:8]}{Path(name).suffix}"
    return target


class IngestionActor(Actor):
    """Turns files dropped into `inbox/` into history rows and `DrawIngested` messages."""

    def __init__(self, services: Services) -> None:
        super().__init__()
        self.services = services
        self.paths = services.paths
        self.mod = services.settings.ingestion.mod

    async def on_start(self) -> None:
        await anyio.to_thread.run_sync(self.paths.ensure)
        if not self.services.once:
            self.start_soon(self._watch)
            self.start_soon(self._rescan)
        await self.ref.tell(IngestInbox())

    async def _watch(self) -> None:
        step = self.services.settings.ingestion.watch_step_ms
        # step=1 ms: with watchfiles' defaults a rename takes ~70 ms to be seen, with 1 ms ~2 ms.
        async for changes in watchfiles.awatch(self.paths.inbox, step=step, debounce=step * 10):
            for change, name in sorted(changes, key=lambda c: c[1]):
                path = Path(name)
                if change != watchfiles.Change.deleted and is_candidate(path):
                    await self.ref.tell(InboxFileSeen(path=str(path)))

    async def _rescan(self) -> None:
        # A safety net: inotify can drop events under load (queue overflow); a rescan cannot.
        while True:
            await anyio.sleep(self.services.settings.ingestion.rescan_interval_s)
            await self.ref.tell(IngestInbox())

    @handles(IngestInbox)
    async def on_ingest_inbox(self, msg: IngestInbox) -> int:
        """Ingest every file in the inbox, oldest first; returns how many were handled."""
        files = await anyio.to_thread.run_sync(self._list_inbox)
        for path in files:
            await self._ingest(path)
        return len(files)

    @handles(InboxFileSeen)
    async def on_inbox_file_seen(self, msg: InboxFileSeen) -> None:
        """Ingest one file, unless it is already gone (handled by an earlier event)."""
        path = Path(msg.path)
        if await anyio.to_thread.run_sync(path.exists):
            await self._ingest(path)

    def _list_inbox(self) -> list[Path]:
        entries = [p for p in self.paths.inbox.iterdir() if p.is_file() and is_candidate(p)]
        return sorted(entries, key=lambda p: (p.stat().st_mtime_ns, p.name))

    async def _ingest(self, path: Path) -> AppendReport | None:
        correlation_id = new_id()
        try:
            data = await anyio.to_thread.run_sync(path.read_bytes)
        except FileNotFoundError:
            return None
        try:
            draws = await anyio.to_thread.run_sync(
                lambda: parse_draw_file(path.name, data, mod=self.mod)
            )
            stream = "synthetic" if any(d.source == "synthetic" for d in draws) else "real"

            def apply(conn: sqlite3.Connection) -> AppendReport:
                return append_draws(conn, path.name, draws, stream=stream)

            report = await self.services.store.transaction(apply)
        except DrawFileError as exc:
            await self._quarantine(path, exc, correlation_id)
            return None
        target = _unique_target(self.paths.processed, path.name)
        await anyio.to_thread.run_sync(path.rename, target)
        self.log.info(
            "ingest.file_processed",
            file=path.name,
            appended=len(report.appended),
            duplicates=report.duplicates,
            correlation_id=correlation_id,
        )
        await self.services.audit(
            actor=self.name,
            entity="draw",
            entity_id=path.name,
            event="ingested",
            correlation_id=correlation_id,
            to_state="processed",
            draws=[a.draw.draw_id for a in report.appended][:100],
            appended=len(report.appended),
            duplicates=report.duplicates,
        )
        trigger = self.system.ref(TRIGGER)
        for item in report.appended:
            await trigger.tell(
                DrawIngested(
                    correlation_id=correlation_id,
                    sender=self.name,
                    draw=item.draw,
                    stream=stream,
                    is_backfill=item.is_backfill,
                    history_len=item.history_len,
                    fingerprint=item.fingerprint,
                )
            )
        return report

    async def _quarantine(self, path: Path, error: DrawFileError, correlation_id: str) -> None:
        target = _unique_target(self.paths.quarantine, path.name)
        reason = {
            "file": path.name,
            "rule": error.rule,
            "detail": error.detail,
            "record": error.record,
            "correlation_id": correlation_id,
        }

        def move() -> None:
            body = json.dumps(reason, indent=2, sort_keys=True).encode("utf-8")
            write_atomic(target.with_name(target.name + ".reason.json"), body)
            os.replace(path, target)

        await anyio.to_thread.run_sync(move)
        self.log.warning(
            "ingest.file_quarantined",
            file=path.name,
            rule=error.rule,
            detail=error.detail,
            correlation_id=correlation_id,
        )
        await self.services.audit(
            actor=self.name,
            entity="draw",
            entity_id=path.name,
            event="quarantined",
            correlation_id=correlation_id,
            to_state="quarantine",
            rule=error.rule,
            detail_text=error.detail,
        )
