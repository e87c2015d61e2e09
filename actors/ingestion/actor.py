"""IngestionActor: watches the inbox, validates draw files, appends them, tells Chapter 13.

Per file: parse (worker thread, outside the store's slot) → one transaction with the draws and
the file-log row → move to `processed/` → one `DrawIngested` per appended draw to the
TriggerActor → mark the file announced → audit. A file that breaks a rule goes to
`quarantine/` with a `.reason.json`, and the actor goes on. Draws committed but not announced
(a crash in between, or the one-shot CLI) are announced at start-up and on every rescan.

In test mode it also hosts the synthetic injector (see `actors.ingestion.synthetic`).
"""

from __future__ import annotations

import os
import sqlite3
import time
from pathlib import Path
from typing import TYPE_CHECKING

import anyio
import anyio.to_thread
import watchfiles

from actors.config import load_settings
from actors.ingestion.filelog import appended_of, mark_announced, pending_files, quarantined_row
from actors.ingestion.files import keep, reason_record, set_aside
from actors.ingestion.inflight import (
    MAX_ATTEMPTS,
    InFlight,
    clear_note,
    next_note,
    read_note,
    write_note,
)
from actors.ingestion.ingest import commit_file, sha256_of
from actors.ingestion.parse import DrawFileError, parse_draw_file
from actors.ingestion.synthetic import InjectorRefusedError, inject, refusal
from actors.runtime import Actor, handles
from actors.safefile import describe, inspect, lease_says_written, open_writers, read_regular
from actors.services import TRIGGER
from messages.base import new_id
from messages.errors import ConfigError, InputError
from messages.ingestion import DrawIngested, InboxFileSeen, IngestInbox, InjectDraws

if TYPE_CHECKING:
    from collections.abc import Sequence

    from actors.config import Settings
    from actors.ingestion.history import Appended
    from actors.ingestion.synthetic import Injection
    from actors.services import Services


def is_candidate(path: Path) -> bool:
    """Files still being written under a temporary name (dotfiles, `*.tmp`) are ignored until
    renamed; every other entry is handled (an unknown type is quarantined, not left behind)."""
    return not path.name.startswith(".") and not path.name.endswith(".tmp")


_WRITERS_TTL_S = 0.1
"""How long one scan of the inbox's writers is trusted (one scan serves a batch of files)."""


class IngestionActor(Actor):
    """Turns files dropped into `inbox/` into history rows and `DrawIngested` messages.

    `config_path`: the configuration file to re-read before every injection, so turning
    `test_mode` or `synthetic.enabled` off there stops the injector without a restart. When
    None, `services.config_path` is used if the system provides one; else the flags read at
    start-up hold until the daemon restarts.
    """

    def __init__(self, services: Services, *, config_path: Path | None = None) -> None:
        super().__init__()
        self.services = services
        self.paths = services.paths
        self.config = services.settings.ingestion
        self.mod = self.config.mod
        self.max_bytes = int(self.config.max_file_mb * 1024 * 1024)
        self.config_path: Path | None = config_path or services.config_path
        self._died_on: InFlight | None = None
        """The note a previous daemon left (the file it died on), until that file is met."""
        self._writers: set[str] = set()
        self._writers_at = -_WRITERS_TTL_S

    async def on_start(self) -> None:
        await anyio.to_thread.run_sync(self.paths.ensure)
        self._died_on = await anyio.to_thread.run_sync(read_note, self.paths.root)
        await self._quarantine_killer()
        if not self.services.once:
            self.start_soon(self._watch)
            self.start_soon(self._rescan)
            # Production (test_mode false at start-up) never even runs the injector's timer.
            if self.services.settings.test_mode:
                self.start_soon(self._inject_timer)
        await self.ref.tell(IngestInbox())

    async def _quarantine_killer(self) -> None:
        """A file the daemon died on MAX_ATTEMPTS times in a row is quarantined unread."""
        note = self._died_on
        if note is None or note.attempts < MAX_ATTEMPTS:
            return
        path = self.paths.inbox / note.name
        try:
            entry = await anyio.to_thread.run_sync(inspect, path)
        except FileNotFoundError:
            entry = None
        if entry is not None and entry.inode == note.inode:
            rule = f"file was being handled when the daemon died {note.attempts} times"
            detail = "no exception to report: the process itself ended (memory, a signal)"
            await self._quarantine(path, DrawFileError(path.name, rule, detail), "", new_id())
        self._died_on = None
        await anyio.to_thread.run_sync(clear_note, self.paths.root)

    # -- background tasks -------------------------------------------------------------------

    async def _watch(self) -> None:
        step = self.config.watch_step_ms
        # step=1 ms: with watchfiles' defaults a rename takes ~70 ms to be seen, with 1 ms ~2 ms.
        # rust_timeout=100 ms: cancelling awatch waits for its thread to return, which with the
        # default 5 s timeout held every shutdown (and restart) of this actor up to 5 s.
        inbox = self.paths.inbox
        async for changes in watchfiles.awatch(
            inbox, step=step, debounce=step * 10, rust_timeout=100, recursive=False
        ):
            for change, name in sorted(changes, key=lambda c: c[1]):
                path = Path(name)
                # Only the inbox's own entries: never what lies inside a directory dropped there.
                if path.parent != inbox:
                    continue
                if change != watchfiles.Change.deleted and is_candidate(path):
                    await self.ref.tell(InboxFileSeen(path=str(path)))

    async def _rescan(self) -> None:
        # A safety net: inotify can drop events under load (queue overflow); a rescan cannot.
        while True:
            await anyio.sleep(self.config.rescan_interval_s)
            await self.ref.tell(IngestInbox())

    async def _inject_timer(self) -> None:
        while True:
            settings = await self._current_settings()
            await anyio.sleep(settings.synthetic.interval_s)
            await self.ref.tell(InjectDraws(count=1))

    # -- handlers ---------------------------------------------------------------------------

    @handles(IngestInbox)
    async def on_ingest_inbox(self, msg: IngestInbox) -> int:
        """Announce what is pending, then ingest every inbox file, oldest first; returns how
        many files were handled."""
        await self._announce_pending()
        self._writers_at = -_WRITERS_TTL_S  # a scan looks at the writers afresh
        files = await anyio.to_thread.run_sync(self._list_inbox)
        for path in files:
            await self._ingest(path)
        return len(files)

    @handles(InboxFileSeen)
    async def on_inbox_file_seen(self, msg: InboxFileSeen) -> None:
        """Ingest one file, unless it is already gone (handled by an earlier event)."""
        path = Path(msg.path)
        if await anyio.to_thread.run_sync(os.path.lexists, path):
            await self._ingest(path)

    @handles(InjectDraws)
    async def on_inject_draws(self, msg: InjectDraws) -> int:
        """Inject synthetic draws if both flags are on right now; returns how many entered."""
        settings = await self._current_settings()
        reason = refusal(settings)
        if reason is not None:
            self.log.warning("injector.refused", reason=reason)
            return 0
        correlation_id = msg.correlation_id

        def run(conn: sqlite3.Connection) -> Injection:
            return inject(conn, settings, count=msg.count, correlation_id=correlation_id)

        try:
            injection = await self.services.store.transaction(run)
        except (InjectorRefusedError, DrawFileError) as exc:
            self.log.warning("injector.failed", error=str(exc), correlation_id=correlation_id)
            return 0
        appended = injection.report.appended
        self.log.info(
            "injector.injected",
            stream=injection.stream,
            first_position=injection.first_position,
            next_position=injection.next_position,
            appended=len(appended),
            correlation_id=correlation_id,
        )
        await self._announce(injection.file_id, injection.stream, appended, correlation_id)
        await self.services.audit(
            actor=self.name,
            entity="draw",
            entity_id=f"inject-{injection.first_position}",
            event="injected",
            correlation_id=correlation_id,
            to_state=injection.stream,
            appended=len(appended),
            next_position=injection.next_position,
        )
        return len(appended)

    # -- the steps --------------------------------------------------------------------------

    async def _current_settings(self) -> Settings:
        """The settings as the config file says now (or as started, without a file)."""
        settings = self.services.settings
        if self.config_path is None:
            return settings
        path = self.config_path
        try:
            return await anyio.to_thread.run_sync(
                lambda: load_settings(path, state_dir=settings.state_dir)
            )
        except ConfigError as exc:
            # Fail closed: a config that cannot be read now cannot vouch for test mode.
            self.log.warning("injector.config_unreadable", error=str(exc))
            return settings.model_copy(update={"test_mode": False})

    def _list_inbox(self) -> list[Path]:
        """Every candidate entry of the inbox (of any kind: non-regular ones are set aside),
        oldest first, from `lstat` (a symlink is never followed)."""
        entries = []
        for path in self.paths.inbox.iterdir():
            if not is_candidate(path):
                continue
            try:
                entries.append((inspect(path).mtime_ns, path.name, path))
            except FileNotFoundError:
                continue
        return [path for _mtime, _name, path in sorted(entries)]

    def _being_written(self, name: str) -> bool:
        """True when a process has `name` open for writing: a lease probe, else a look at
        /proc (one look serves the files of one scan, or the events of 0.1 s)."""
        leased = lease_says_written(self.paths.inbox / name)
        if leased is not None:
            return leased
        now = time.monotonic()
        if now - self._writers_at > _WRITERS_TTL_S:
            self._writers = open_writers(self.paths.inbox)
            self._writers_at = now
        return name in self._writers

    async def _ingest(self, path: Path) -> None:
        """Handle one inbox entry; whatever goes wrong with it ends with the entry quarantined
        (with the error as its reason) before this handler returns or the actor restarts."""
        correlation_id = new_id()
        sha256 = ""
        try:
            entry = await anyio.to_thread.run_sync(inspect, path)
            if not entry.regular:
                rule = f"not a regular file ({entry.kind})"
                error = DrawFileError(
                    path.name, rule, await anyio.to_thread.run_sync(describe, entry)
                )
                await self._quarantine(path, error, sha256, correlation_id)
                return
            if await anyio.to_thread.run_sync(self._being_written, path.name):
                # A writer still has it open: its close (an inotify event) or the rescan brings
                # it back. Files must be renamed in whole; this catches those written in place.
                self.log.info("ingest.file_still_written", file=path.name)
                return
            note = next_note(self._died_on, path.name, entry.inode)
            self._died_on = None
            await anyio.to_thread.run_sync(write_note, self.paths.root, note)
            data = await anyio.to_thread.run_sync(lambda: read_regular(path, self.max_bytes))
            self.log.info(
                "ingest.file_started",
                file=path.name,
                bytes=len(data),
                correlation_id=correlation_id,
            )
            sha256 = sha256_of(data)
            draws = await anyio.to_thread.run_sync(
                lambda: parse_draw_file(path.name, data, mod=self.mod, max_bytes=self.max_bytes)
            )

            def apply(conn: sqlite3.Connection) -> tuple[int, tuple[Appended, ...], int, str]:
                file_id, report = commit_file(
                    conn,
                    name=path.name,
                    sha256=sha256,
                    draws=draws,
                    origin="inbox",
                    correlation_id=correlation_id,
                )
                return file_id, report.appended, report.duplicates, report.stream

            file_id, appended, duplicates, stream = await self.services.store.transaction(apply)
        except FileNotFoundError:
            return  # gone meanwhile: an earlier event or a rescan handled it
        except DrawFileError as exc:
            await self._quarantine(path, exc, sha256, correlation_id)
            return
        except InputError as exc:  # not regular after all, too large (safefile)
            error = DrawFileError(path.name, exc.rule, exc.detail)
            await self._quarantine(path, error, sha256, correlation_id)
            return
        except sqlite3.OperationalError:
            # The store, not the file (locked, disk full): the file stays for a retry, and the
            # note goes (this is no death of the daemon on the file).
            await anyio.to_thread.run_sync(clear_note, self.paths.root)
            raise
        except Exception as exc:
            # Poison of a kind no rule foresaw: quarantined now, with the error as its reason,
            # so the actor's restart (if this re-raises later) never meets the file again.
            self.log.exception("ingest.file_crashed_handler", file=path.name)
            rule = "file crashed the ingestion handler"
            error = DrawFileError(path.name, rule, f"{type(exc).__name__}: {exc}"[:500])
            await self._quarantine(path, error, sha256, correlation_id)
            return
        await anyio.to_thread.run_sync(lambda: keep(path, self.paths.processed, move=True))
        await anyio.to_thread.run_sync(clear_note, self.paths.root)
        self.log.info(
            "ingest.file_processed",
            file=path.name,
            stream=stream,
            appended=len(appended),
            duplicates=duplicates,
            correlation_id=correlation_id,
        )
        await self._announce(file_id, stream, appended, correlation_id)
        await self.services.audit(
            actor=self.name,
            entity="draw",
            entity_id=path.name,
            event="ingested",
            correlation_id=correlation_id,
            to_state="processed",
            stream=stream,
            draws=[a.draw.draw_id for a in appended][:100],
            appended=len(appended),
            backfill=sum(1 for a in appended if a.is_backfill),
            duplicates=duplicates,
        )

    async def _announce(
        self, file_id: int, stream: str, appended: Sequence[Appended], correlation_id: str
    ) -> None:
        """Tell the TriggerActor about every appended draw, then note the file announced."""
        if not appended:
            return
        trigger = self.system.ref(TRIGGER)
        for item in appended:
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
        await self.services.store.run(lambda conn: mark_announced(conn, [file_id]))

    async def _announce_pending(self) -> None:
        pending = await self.services.store.run(pending_files)
        for item in pending:
            appended = await self.services.store.run(
                lambda conn, file_id=item.file_id: appended_of(conn, file_id)  # type: ignore[misc]
            )
            self.log.info(
                "ingest.announcing_pending",
                file=item.name,
                draws=len(appended),
                correlation_id=item.correlation_id,
            )
            await self._announce(item.file_id, item.stream, appended, item.correlation_id)

    async def _quarantine(
        self, path: Path, error: DrawFileError, sha256: str, correlation_id: str
    ) -> None:
        reason = reason_record(
            path.name, error, sha256=sha256, origin="inbox", correlation_id=correlation_id
        )
        try:
            await anyio.to_thread.run_sync(
                lambda: set_aside(path, self.paths.quarantine, reason, move=True)
            )
        except FileNotFoundError:
            return
        finally:
            await anyio.to_thread.run_sync(clear_note, self.paths.root)
        await self.services.store.transaction(
            lambda conn: quarantined_row(
                conn,
                name=path.name,
                sha256=sha256,
                origin="inbox",
                error=error,
                correlation_id=correlation_id,
            )
        )
        self.log.warning(
            "ingest.file_quarantined",
            file=path.name,
            rule=error.rule,
            record=error.record,
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
            record=error.record,
            detail_text=error.detail,
        )
