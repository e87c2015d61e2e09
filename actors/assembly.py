"""Assembly of the six actors: `open_system(settings)` runs the whole system in-process.

The daemon (`actors.system`), the foreground dispatches (`actors.foreground`), the test harness
(`actors.testing`) and embedders all start the system here, so none of them imports another:
the CLI's module depends on this one, never the other way round.
"""

from __future__ import annotations

import json
import os
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING

import anyio
import anyio.to_thread
import structlog

from actors import status
from actors.atomic import write_atomic
from actors.audit import AuditLog
from actors.bundle import BundleActor
from actors.gpu.actor import GPUDispatchActor
from actors.ingestion import IngestionActor
from actors.llm.actor import LLMActor
from actors.paths import StatePaths
from actors.runtime import Actor, handles, open_actor_system
from actors.services import (
    BUNDLE,
    GPU,
    INGESTION,
    LLM,
    SPAWN_ORDER,
    TRIGGER,
    WATCHER,
    Services,
)
from actors.store import open_store
from actors.trigger import TriggerActor
from actors.watcher import WatcherActor
from actors.web import open_console
from messages.base import new_id
from messages.errors import ActorError, WatcherError
from messages.lifecycle import Describe, Described, Shutdown, SystemStarted

if TYPE_CHECKING:
    from pathlib import Path

    from actors.config import Settings
    from actors.runtime import ActorRef, ActorSystem
    from messages.dispatch import JobProgress

ActorFactory = Callable[[Services], Actor]

DEFAULT_ACTORS: Mapping[str, ActorFactory] = {
    BUNDLE: BundleActor,
    LLM: LLMActor,
    GPU: GPUDispatchActor,
    WATCHER: WatcherActor,
    TRIGGER: TriggerActor,
    INGESTION: IngestionActor,
}

log = structlog.get_logger("system")
SYSTEM = "system"
"""The lifecycle actor: spawned first, so it stops last."""
# The heartbeat's period; `status` calls a daemon whose heartbeat is 3 periods old stale.
HEARTBEAT_S = 2.0


class LifecycleActor(Actor):
    """Turns `Shutdown` into an orderly stop; writes the heartbeat that `status` reads."""

    def __init__(self, services: Services) -> None:
        super().__init__()
        self.services = services
        self.started_at = datetime.now(UTC).isoformat()

    @handles(SystemStarted)
    async def on_system_started(self, msg: SystemStarted) -> None:
        """Every actor is up: start the heartbeat that `status` reads."""
        self.log.info("system.all_started", actors=list(msg.actors))
        self.start_soon(self._heartbeat)

    async def on_stop(self) -> None:
        await self._write_status(running=False)

    @handles(Shutdown)
    async def on_shutdown(self, msg: Shutdown) -> None:
        """Ask whoever runs the system to shut it down (reverse start order, bounded)."""
        self.log.info("system.shutdown_requested", reason=msg.reason, sender=msg.sender)
        self.system.request_stop()

    async def _heartbeat(self) -> None:
        while True:
            await self._write_status(running=True)
            await anyio.sleep(HEARTBEAT_S)

    async def _write_status(self, *, running: bool) -> None:
        described: dict[str, object] = {}
        if running:
            for name in (LLM, GPU):
                try:
                    reply = await self.system.ref(name).ask(Describe(), timeout=2, expect=Described)
                    described[name] = reply.state
                except ActorError as exc:
                    described[name] = {"error": str(exc)}
        state = {
            "pid": os.getpid(),
            "running": running,
            "started_at": self.started_at,
            "updated_at": datetime.now(UTC).isoformat(),
            "actors": self.system.snapshot(),
            "dead_letters": self.system.dead_letters.count,
            **described,
        }
        body = (json.dumps(state, indent=2, default=str) + "\n").encode("utf-8")
        path = self.services.paths.root / status.STATUS_FILE
        await anyio.to_thread.run_sync(write_atomic, path, body)


@dataclass(frozen=True)
class WatcherSystem:
    """A running system: its services, its kernel and the refs of its actors."""

    services: Services
    kernel: ActorSystem

    @property
    def paths(self) -> StatePaths:
        """The state directory's layout."""
        return self.services.paths

    def ref(self, name: str) -> ActorRef:
        """The ref of one of the six actors (or of a fake standing in for it)."""
        return self.kernel.ref(name)

    async def wait_idle(self) -> None:
        """Wait until no message is queued or being handled and no job is running."""
        await self.kernel.wait_idle()


@asynccontextmanager
async def open_system(
    settings: Settings,
    *,
    once: bool = False,
    replace: Mapping[str, ActorFactory] | None = None,
    progress: Callable[[JobProgress], None] | None = None,
    config_path: Path | None = None,
) -> AsyncIterator[WatcherSystem]:
    """Run the six actors (any of them replaced by `replace[name]`) for the block's duration.

    With `once`, actors do not watch folders: they process what is pending when told.
    """
    factories = {**DEFAULT_ACTORS, **(replace or {})}
    unknown = set(factories) - set(SPAWN_ORDER)
    if unknown:
        msg = f"no actor named {', '.join(sorted(unknown))}; known: {', '.join(SPAWN_ORDER)}"
        raise WatcherError(msg)
    paths = StatePaths(settings.state_dir)
    await anyio.to_thread.run_sync(paths.ensure)
    audit_log = AuditLog(paths.audit)
    run_id = new_id()
    try:
        async with open_store(paths.db) as store:
            services = Services(settings, paths, store, audit_log, once, progress, config_path)
            await services.audit(
                actor="system",
                entity="system",
                entity_id=run_id,
                event="started",
                correlation_id=run_id,
                to_state="running",
                state_dir=str(paths.root),
                once=once,
            )
            async with open_actor_system(settings.kernel.settings()) as kernel:
                await kernel.spawn(SYSTEM, lambda: LifecycleActor(services))
                for name in SPAWN_ORDER:
                    factory = factories[name]
                    await kernel.spawn(name, lambda f=factory: f(services))  # type: ignore[misc]
                await kernel.ref(SYSTEM).tell(SystemStarted(actors=kernel.names))
                log.info("system.started", actors=list(SPAWN_ORDER), state_dir=str(paths.root))
                # The console (dashboard, /metrics, notifications) stops before the actors do.
                async with open_console(services, kernel):
                    yield WatcherSystem(services, kernel)
                log.info("system.stopping")
            failure = kernel.failure
            await services.audit(
                actor="system",
                entity="system",
                entity_id=run_id,
                event="stopped",
                correlation_id=run_id,
                from_state="running",
                to_state="stopped",
                failure=None
                if failure is None
                else {"actor": failure.actor, "error": failure.error},
                dead_letters=kernel.dead_letters.count,
            )
            log.info(
                "system.stopped",
                dead_letters=kernel.dead_letters.count,
                failed_actor=None if failure is None else failure.actor,
            )
    finally:
        audit_log.close()
