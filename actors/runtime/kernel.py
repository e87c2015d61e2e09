"""`ActorSystem`: spawns actors, finds them by name, counts dead letters, shuts down in phases."""

from __future__ import annotations

from collections import deque
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import anyio
import structlog

from actors.runtime.cell import Cell, describe
from actors.runtime.deadlines import Deadlines
from messages.errors import ActorError

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Callable

    from anyio.abc import TaskGroup

    from actors.runtime.actor import Actor
    from actors.runtime.envelope import Envelope
    from actors.runtime.ref import ActorRef

log = structlog.get_logger("actors.runtime")


@dataclass(frozen=True)
class KernelSettings:
    """Kernel tunables (ARCHITECTURE §2); the config's `[kernel]` table maps onto these."""

    mailbox_capacity: int = 1024
    fairness_batch: int = 64
    """The receive loop yields to the scheduler after this many messages handled in a row."""
    max_restarts: int = 3
    restart_window_s: float = 5.0
    restart_backoff_s: float = 0.0
    phase_timeout_s: float = 5.0
    """Upper bound of each shutdown phase (one phase per actor, reverse spawn order)."""


@dataclass(frozen=True)
class DeadLetter:
    """A message that no handler took: to a stopped actor, of an unknown kind, or a crash."""

    actor: str
    kind: str
    message_id: str
    correlation_id: str
    reason: str
    error: str | None = None


@dataclass
class DeadLetters:
    """Counts and keeps the most recent dead letters (all are logged)."""

    count: int = 0
    recent: deque[DeadLetter] = field(default_factory=lambda: deque(maxlen=256))


@dataclass(frozen=True)
class ActorFailure:
    """Why the system stopped on its own: an actor went past its restart intensity."""

    actor: str
    error: str


class ActorSystem:
    """A set of named actors sharing one task group; see `open_actor_system`."""

    def __init__(self, task_group: TaskGroup, settings: KernelSettings) -> None:
        self.settings = settings
        self.dead_letters = DeadLetters()
        self.failure: ActorFailure | None = None
        self._task_group = task_group
        self._cells: dict[str, Cell] = {}
        self._inflight = 0
        self._idle: anyio.Event | None = None
        self._stop_requested = anyio.Event()
        self._shutting_down = False
        self.deadlines = Deadlines()
        task_group.start_soon(self.deadlines.run, name="ask-deadlines")

    # -- actors -------------------------------------------------------------------------------

    async def spawn(
        self, name: str, factory: Callable[[], Actor], *, capacity: int | None = None
    ) -> ActorRef:
        """Start an actor and return its ref once its first `on_start` has returned."""
        if name in self._cells:
            msg = f"an actor named {name!r} already exists"
            raise ActorError(msg)
        cell = Cell(self, name, factory, capacity or self.settings.mailbox_capacity)
        self._cells[name] = cell
        self._task_group.start_soon(cell.run, name=f"actor:{name}")
        await cell.started.wait()
        return cell.ref

    def ref(self, name: str) -> ActorRef:
        """The ref of the actor spawned under `name`."""
        try:
            return self._cells[name].ref
        except KeyError:
            known = ", ".join(self._cells) or "none"
            msg = f"no actor named {name!r}; known: {known}"
            raise ActorError(msg) from None

    @property
    def names(self) -> tuple[str, ...]:
        """Actor names in spawn order."""
        return tuple(self._cells)

    def snapshot(self) -> list[dict[str, object]]:
        """Per-actor status (alive, queued, restarts, busy), in spawn order."""
        return [describe(cell) for cell in self._cells.values()]

    # -- accounting ---------------------------------------------------------------------------

    def work_started(self) -> None:
        """A message was queued somewhere (kernel-internal)."""
        self._inflight += 1

    def work_finished(self) -> None:
        """A queued message was handled or dead-lettered (kernel-internal)."""
        self._inflight -= 1
        if self._inflight <= 0:
            self._inflight = 0
            if self._idle is not None:
                self._idle.set()
                self._idle = None

    @property
    def inflight(self) -> int:
        """Messages queued or being handled, across all actors."""
        return self._inflight

    async def wait_idle(self) -> None:
        """Wait until no message is queued or being handled anywhere."""
        while self._inflight:
            if self._idle is None:
                self._idle = anyio.Event()
            await self._idle.wait()

    def dead_letter(
        self, actor: str, envelope: Envelope, reason: str, *, error: BaseException | None = None
    ) -> None:
        """Record and log a message that no handler took."""
        message = envelope.message
        letter = DeadLetter(
            actor=actor,
            kind=message.kind,
            message_id=message.message_id,
            correlation_id=message.correlation_id,
            reason=reason,
            error=repr(error) if error is not None else None,
        )
        self.dead_letters.count += 1
        self.dead_letters.recent.append(letter)
        log.warning(
            "dead_letter",
            actor=actor,
            kind=letter.kind,
            reason=reason,
            error=letter.error,
            correlation_id=letter.correlation_id,
            message_id=letter.message_id,
            dead_letters=self.dead_letters.count,
        )

    # -- stopping -----------------------------------------------------------------------------

    def escalate(self, actor: str, error: BaseException) -> None:
        """An actor went past its restart intensity: record it and ask for a shutdown."""
        if self.failure is None:
            self.failure = ActorFailure(actor, repr(error))
        log.critical("system.actor_failed", actor=actor, error=repr(error))
        self.request_stop()

    def request_stop(self) -> None:
        """Ask whoever runs the system (the daemon, a test) to shut it down."""
        self._stop_requested.set()

    @property
    def stop_requested(self) -> bool:
        """True once a stop was requested (by a signal handler or an escalation)."""
        return self._stop_requested.is_set()

    async def wait_stop_requested(self) -> None:
        """Wait until `request_stop` is called."""
        await self._stop_requested.wait()

    async def shutdown(self) -> None:
        """Stop every actor in reverse spawn order, one bounded phase each.

        It first marks the stop as requested (if no signal did), so the actors that act at the
        first word of a shutdown (GPU dispatch stopping jobs, the LLM cutting a generation
        short) do so in a harness's shutdown too, not only in the daemon's."""
        if self._shutting_down:
            return
        self._shutting_down = True
        self._stop_requested.set()
        bound = self.settings.phase_timeout_s
        for name in reversed(self._cells):
            finished = await self._cells[name].stop(bound)
            log.info("shutdown.phase", actor=name, finished_in_bound=finished)


@asynccontextmanager
async def open_actor_system(settings: KernelSettings | None = None) -> AsyncIterator[ActorSystem]:
    """Run an actor system for the duration of the block, then shut it down in phases."""
    async with anyio.create_task_group() as tg:
        system = ActorSystem(tg, settings or KernelSettings())
        try:
            yield system
        finally:
            with anyio.CancelScope(shield=True):
                await system.shutdown()
            tg.cancel_scope.cancel()
