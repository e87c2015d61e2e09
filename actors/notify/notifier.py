"""Notifications: items that await a person reach them once, through a command or Apprise URLs.

Driven by the audit trail, the one record of what happened: each record whose `entity/event`
is in `[notify] events` (escalations, pending decisions, no signal, promotions, rollbacks,
halts) is one item, keyed `entity:entity_id:event`. The key is claimed in the store
(`notifications`, migration 50) before anything is sent, so an item is notified once across
restarts; a delivery that fails is retried `attempts` times, then recorded as failed with its
error. How far the audit trail was read is kept too (`notify_cursor`), so records written while
no daemon ran (a CLI halt) are notified at the next start; a state directory that never had a
notifier starts from the end of its audit trail, not from its history.

A crash between the claim and the send loses that one notification rather than sending it
twice; the row says `sending`, and `status`-style tools can show it.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import partial
from typing import TYPE_CHECKING, Any

import anyio
import anyio.to_thread
import structlog

if TYPE_CHECKING:
    import sqlite3

    from anyio.abc import TaskStatus

    from actors.config import NotifyConfig
    from actors.store import Store
    from actors.web.feed import AuditFeed, Record

log = structlog.get_logger("notify")


@dataclass(frozen=True)
class Notification:
    """One item to tell a person about."""

    key: str
    record_id: str
    entity: str
    entity_id: str
    event: str
    title: str
    body: str
    url: str
    env: dict[str, str]


def item_key(record: Record) -> str:
    """The item a record is about: notified once, whatever restarts happen.

    `_nth` (from the feed) counts earlier records of the same entity and event, so a request
    that escalates again after a resume is a new item, while the same line read twice (after
    a crash, from an older cursor) is the same one.
    """
    entity, ident, event = record.get("entity"), record.get("entity_id"), record.get("event")
    return f"{entity}:{ident}:{event}:{record.get('_nth', 0)}"


def link_for(base_url: str, entity: str, entity_id: str) -> str:
    """The item's dashboard page."""
    base = base_url.rstrip("/")
    if entity == "decision":
        return f"{base}/pending#{entity_id}"
    if entity == "request":
        return f"{base}/requests/{entity_id}"
    if entity == "promotion":
        return f"{base}/loop"
    return f"{base}/pending"


def notification_for(record: Record, base_url: str) -> Notification:
    """Title, body, link and the command's environment for one audit record."""
    entity, event = str(record.get("entity", "")), str(record.get("event", ""))
    entity_id = str(record.get("entity_id", ""))
    detail = record.get("detail") or {}
    reason = str(
        detail.get("reason")
        or "; ".join(str(r) for r in detail.get("reasons") or [])
        or detail.get("rule")
        or ""
    )
    url = link_for(base_url, entity, entity_id)
    title = f"Watcher: {entity} {event} ({entity_id[:24]})"
    lines = [f"{entity} {entity_id}: {event}", reason]
    if detail.get("resume"):
        lines.append(f"resume: {detail['resume']}")
    lines.append(url)
    env = {
        # `escalation` for a request keeps scripts written for watcher.notify_command working.
        "WATCHER_EVENT": "escalation" if (entity, event) == ("request", "escalation") else event,
        "WATCHER_ENTITY": entity,
        "WATCHER_ITEM_ID": entity_id,
        "WATCHER_REASON": reason,
        "WATCHER_URL": url,
        "WATCHER_TITLE": title,
    }
    if entity == "request":
        env["WATCHER_REQUEST_ID"] = entity_id
    if detail.get("resume"):
        env["WATCHER_RESUME_COMMAND"] = str(detail["resume"])
    return Notification(
        key=item_key(record),
        record_id=str(record.get("record_id", "")),
        entity=entity,
        entity_id=entity_id,
        event=event,
        title=title,
        body="\n".join(line for line in lines if line),
        url=url,
        env=env,
    )


def _now() -> str:
    return datetime.now(UTC).isoformat()


def claim(conn: sqlite3.Connection, note: Notification) -> bool:
    """Record the item as being sent; False when it was already (sent, failed or sending)."""
    cursor = conn.execute(
        "INSERT OR IGNORE INTO notifications (item_key, record_id, entity, entity_id, event,"
        " status, url, created_at) VALUES (?, ?, ?, ?, ?, 'sending', ?, ?)",
        (note.key, note.record_id, note.entity, note.entity_id, note.event, note.url, _now()),
    )
    return cursor.rowcount == 1


def settle(conn: sqlite3.Connection, key: str, *, ok: bool, attempts: int, error: str) -> None:
    """Record how the delivery ended."""
    conn.execute(
        "UPDATE notifications SET status = ?, attempts = ?, error = ?, sent_at = ?"
        " WHERE item_key = ?",
        ("sent" if ok else "failed", attempts, error[:2000], _now(), key),
    )


def load_cursor(conn: sqlite3.Connection) -> int | None:
    """How far into the audit trail the notifier has read (None: never ran here)."""
    row = conn.execute("SELECT audit_offset FROM notify_cursor WHERE id = 1").fetchone()
    return None if row is None else int(row[0])


def save_cursor(conn: sqlite3.Connection, offset: int) -> None:
    """Remember the audit offset read up to."""
    conn.execute(
        "INSERT INTO notify_cursor (id, audit_offset, updated_at) VALUES (1, ?, ?)"
        " ON CONFLICT (id) DO UPDATE SET audit_offset = excluded.audit_offset,"
        " updated_at = excluded.updated_at",
        (offset, _now()),
    )


def sent(conn: sqlite3.Connection) -> list[dict[str, Any]]:
    """Every notification row, oldest first (for tests and the console)."""
    cursor = conn.execute("SELECT * FROM notifications ORDER BY created_at, item_key")
    names = [d[0] for d in cursor.description]
    return [dict(zip(names, tuple(r), strict=True)) for r in cursor.fetchall()]


class Notifier:
    """Follows the audit feed and delivers each configured item once."""

    def __init__(
        self,
        config: NotifyConfig,
        command: tuple[str, ...],
        store: Store,
        base_url: str,
    ) -> None:
        self.config = config
        self.command = command
        self.store = store
        self.base_url = base_url
        self.ready = False
        """True once the backlog is handled (`/healthz` says so)."""
        self.events: frozenset[tuple[str, str]] = frozenset(
            (entity, event) for entity, _, event in (e.partition("/") for e in config.events)
        )

    @property
    def configured(self) -> bool:
        """True when there is anyone to tell."""
        return bool(self.command or self.config.urls)

    def wanted(self, record: Record) -> bool:
        """True for the records that notify."""
        return (str(record.get("entity")), str(record.get("event"))) in self.events

    async def run(
        self, feed: AuditFeed, *, task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED
    ) -> None:
        """Catch up from the stored cursor, then follow the feed until cancelled."""
        stream = feed.subscribe()
        start = feed.position
        cursor = await self.store.run(load_cursor)
        # What was written while no notifier ran (a CLI halt, a crash before the cursor moved).
        # A state directory that never had one starts at the end: no flood of old items.
        backlog = [
            r for r in feed.tracked if cursor is not None and int(r.get("_offset", 0)) > cursor
        ]
        for record in backlog:
            await self.handle(record)
        await self.store.transaction(lambda c: save_cursor(c, start))
        self.ready = True
        task_status.started()
        async with stream:
            async for record in stream:
                await self.handle(record)
                offset = record.get("_offset")
                if isinstance(offset, int) and stream.statistics().current_buffer_used == 0:
                    await self.store.transaction(partial(save_cursor, offset=offset))

    async def handle(self, record: Record) -> None:
        """Deliver one record's notification if it is wanted and new."""
        if not self.wanted(record):
            return
        note = notification_for(record, self.base_url)
        if not await self.store.transaction(lambda c: claim(c, note)):
            log.info("notify.duplicate", key=note.key)
            return
        error, attempts = "", 0
        for attempts in range(1, self.config.attempts + 1):
            error = await self._deliver(note)
            if not error:
                break
            # 1 s, 2 s, 4 s ...: a receiver restarting gets a few seconds.
            await anyio.sleep(min(2 ** (attempts - 1), 30))
        await self.store.transaction(
            lambda c: settle(c, note.key, ok=not error, attempts=attempts, error=error)
        )
        if error:
            log.error("notify.failed", key=note.key, attempts=attempts, error=error)
        else:
            log.info("notify.sent", key=note.key, url=note.url, attempts=attempts)

    async def _deliver(self, note: Notification) -> str:
        errors = []
        if self.command:
            errors.append(await self._run_command(note))
        if self.config.urls:
            errors.append(await self._apprise(note))
        return "; ".join(e for e in errors if e)

    async def _run_command(self, note: Notification) -> str:
        env = {**os.environ, **note.env}
        try:
            with anyio.fail_after(self.config.timeout_s):
                done = await anyio.run_process(list(self.command), env=env, check=False)
        except (OSError, TimeoutError) as exc:
            return f"command {self.command[0]!r}: {exc!r}"
        if done.returncode != 0:
            tail = done.stderr.decode("utf-8", errors="replace")[-300:]
            return f"command {self.command[0]!r} exited {done.returncode}: {tail}"
        return ""

    async def _apprise(self, note: Notification) -> str:
        import apprise

        def send() -> str:
            box = apprise.Apprise()
            bad = [url for url in self.config.urls if not box.add(url)]
            if bad:
                return f"apprise refused {len(bad)} URL(s) (check their scheme)"
            ok = box.notify(title=note.title, body=note.body)
            return "" if ok else "apprise: a target did not accept the notification"

        result = f"apprise: timed out after {self.config.timeout_s} s"
        with anyio.move_on_after(self.config.timeout_s * max(1, len(self.config.urls))):
            result = await anyio.to_thread.run_sync(send, abandon_on_cancel=True)
        return result
