"""The console inside a running system: the audit feed, the web server, the notifier.

`open_console` is entered by `open_system` once every actor is up (and left before they stop,
so intake from people stops first). It runs in its own task group: the feed follows the audit
trail; the server (when `[web] enabled`) serves the dashboard, `/metrics` and `/healthz`; the
notifier (when a target is configured) tells a person about items once. A port already in use
does not stop the daemon: the console logs why and says so in `web.json`, and the loop goes on.
`--once` runs start none of it: they are batch runs, with nothing to watch.
"""

from __future__ import annotations

import json
from contextlib import asynccontextmanager
from pathlib import Path
from typing import TYPE_CHECKING

import anyio
import anyio.to_thread
import structlog

from actors import banner
from actors.atomic import write_atomic
from actors.notify.notifier import Notifier
from actors.web.app import Console, create_app
from actors.web.feed import AuditFeed
from actors.web.metrics import ConsoleCollector, new_registry
from actors.web.server import BindError, open_socket, serve, url_of

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

    from anyio.abc import TaskGroup

    from actors.config import Settings
    from actors.runtime import ActorSystem
    from actors.services import Services

log = structlog.get_logger("web")

WEB_FILE = "web.json"
"""Written at start-up in the state directory: the dashboard's URL (or why it is not up)."""


def banner_line(settings: Settings) -> str | None:
    """The start-up banner's line: the dashboard's address (from web.json), or why it is not up."""
    if not settings.web.enabled:
        return None
    try:
        info = json.loads((settings.state_dir / WEB_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not info.get("url"):
        return f"dashboard NOT started: {info.get('error', 'unknown error')}"
    writes = "on (token)" if info.get("writes") else "off (set [web] token)"
    return f"dashboard {info['url']}  (write actions {writes}; metrics: {info['url']}metrics)"


banner.add_line(banner_line)


def read_token(settings: Settings) -> str:
    """The write token: from `[web] token_file` (relative to the state dir), else `[web] token`."""
    web = settings.web
    if web.token_file:
        path = Path(web.token_file)
        if not path.is_absolute():
            path = settings.state_dir / path
        try:
            return path.read_text(encoding="utf-8").strip()
        except OSError as exc:
            log.exception("web.token_file_unreadable", path=str(path), error=str(exc))
            # Fail closed: a token file that cannot be read means no writes, never open writes.
            return ""
    return web.token.strip()


@asynccontextmanager
async def open_console(services: Services, kernel: ActorSystem) -> AsyncIterator[Console | None]:
    """Run the feed, the server and the notifier for the block's duration."""
    settings = services.settings
    command = settings.notify.command or settings.watcher.notify_command
    wants_notify = bool(command or settings.notify.urls)
    if services.once or not (settings.web.enabled or wants_notify):
        yield None
        return
    paths = services.paths
    notifier = None
    if wants_notify:
        base = settings.web.public_url or f"http://{settings.web.bind}"
        notifier = Notifier(settings.notify, command, services.store, base)
    feed = AuditFeed(paths.audit, track=notifier.events if notifier else frozenset())
    collector = ConsoleCollector(
        paths, feed, kernel.snapshot, lambda: int(kernel.dead_letters.count)
    )
    console = Console(
        settings=settings,
        paths=paths,
        feed=feed,
        registry=new_registry(collector),
        config_path=services.config_path,
        audit=services.audit,
        token=read_token(settings),
        notifier=notifier,
    )
    services.audit_log.listeners.append(feed.poke)
    async with anyio.create_task_group() as tg:
        await tg.start(feed.run)
        url = ""
        if settings.web.enabled:
            url = await _start_server(console, tg)
            # Read the chart's history now, not when the first person opens the page (~3 s
            # for 100,000 draws on 2 cores).
            tg.start_soon(_warm, console)
            if notifier is not None and url and not settings.web.public_url:
                notifier.base_url = url
        if notifier is not None:
            await tg.start(notifier.run, feed)
        try:
            yield console
        finally:
            console.shutdown.set()
            if url:
                # The banner and `status` readers must not send anyone to a closed port.
                with anyio.CancelScope(shield=True):
                    await _write_web_file(
                        console,
                        {"bind": settings.web.bind, "url": None, "stopped": True, "was": url},
                    )
            feed.close()
            # The server returns within its graceful bound; the rest stops now.
            if console.stopped is not None:
                with anyio.move_on_after(2.0, shield=True):
                    await console.stopped.wait()
            tg.cancel_scope.cancel()


async def _warm(console: Console) -> None:
    await console.read(console.series.refresh)


async def _start_server(console: Console, tg: TaskGroup) -> str:
    settings = console.settings
    record: dict[str, object] = {"bind": settings.web.bind}
    try:
        sock = open_socket(settings.web.bind)
    except BindError as exc:
        # Not fatal: the loop runs without its dashboard; web.json and the banner say why.
        log.error("web.not_started", error=str(exc))  # noqa: TRY400 (the reason is the message)
        record.update(url=None, error=str(exc))
        await _write_web_file(console, record)
        return ""
    url = url_of(sock) + "/"
    console.stopped = anyio.Event()

    async def run() -> None:
        try:
            await serve(create_app(console), sock, console.shutdown)
        finally:
            assert console.stopped is not None
            console.stopped.set()

    tg.start_soon(run)
    record.update(url=url, writes=bool(console.token))
    await _write_web_file(console, record)
    log.info("web.started", url=url, writes=bool(console.token))
    return url.rstrip("/")


async def _write_web_file(console: Console, record: dict[str, object]) -> None:
    body = (json.dumps(record, indent=2) + "\n").encode("utf-8")
    await anyio.to_thread.run_sync(write_atomic, console.paths.root / WEB_FILE, body)
