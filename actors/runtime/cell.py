"""A cell: one actor's mailbox, receive loop and supervisor (one-for-one, OTP-style intensity).

Where failures go, written once (STYLE.md):
- an `ask` whose handler raises: the error goes back to the caller; the actor carries on;
- a `tell` whose handler raises, or a background task that raises: the actor crashes; the
  message goes to dead letters with the error, `on_failure` runs, and a fresh instance is built
  from the factory to read the same mailbox — unless that would exceed the restart intensity,
  in which case the system is told to shut down and the daemon exits non-zero;
- when an actor stops, every queued `ask` fails with `ActorDeadError` and every queued `tell`
  is a dead letter. Cancellation is never swallowed.
"""

from __future__ import annotations

from collections import deque
from typing import TYPE_CHECKING, Any

import anyio
import anyio.lowlevel
import structlog

from actors.runtime.context import HandlingContext, current
from actors.runtime.mailbox import Mailbox, MailboxClosedError
from actors.runtime.ref import ActorRef
from messages.errors import ActorDeadError, ActorError

if TYPE_CHECKING:
    from collections.abc import Callable

    from actors.runtime.actor import Actor
    from actors.runtime.envelope import Envelope
    from actors.runtime.kernel import ActorSystem

log = structlog.get_logger("actors.runtime")


def unwrap(error: BaseException) -> BaseException:
    """The single exception inside (nested) one-member exception groups, else the group."""
    while isinstance(error, BaseExceptionGroup) and len(error.exceptions) == 1:
        error = error.exceptions[0]
    return error


class Cell:
    """Owns one actor's mailbox and runs its incarnations; the mailbox outlives restarts."""

    def __init__(
        self, system: ActorSystem, name: str, factory: Callable[[], Actor], capacity: int
    ) -> None:
        self.system = system
        self.name = name
        self.factory = factory
        self.capacity = capacity
        self.ref = ActorRef(self)
        self.accepting = True
        self.processing: Envelope | None = None
        self.current_instance: Actor | None = None
        """The live incarnation (for status and tests; actors never reach into each other)."""
        self.restarts = 0
        self.started = anyio.Event()
        self.done = anyio.Event()
        self.mailbox = Mailbox(capacity)
        self._run_scope: anyio.CancelScope | None = None
        self._crash_times: deque[float] = deque()
        self._restart_pending = False
        """True from a crash until the next incarnation has started (counted as work)."""

    # -- intake -------------------------------------------------------------------------------

    def _refuse(self, envelope: Envelope) -> None:
        self.system.dead_letter(self.name, envelope, "actor stopped")
        if envelope.reply is not None:
            kind = envelope.message.kind
            error = ActorDeadError(f"actor {self.name!r} stopped; {kind!r} not handled")
            envelope.reply.fail(error)

    def offer(self, envelope: Envelope) -> bool:
        """Queue without waiting; False when full. A stopped actor dead-letters instead."""
        if not self.accepting:
            self._refuse(envelope)
            return True
        if not self.mailbox.put_nowait(envelope):
            return False
        self.system.work_started()
        return True

    async def put(self, envelope: Envelope) -> None:
        """Queue, waiting while the mailbox is full (backpressure)."""
        if not self.accepting:
            self._refuse(envelope)
            return
        # Counted before the wait: the receiver may handle it before this task resumes.
        self.system.work_started()
        try:
            await self.mailbox.put(envelope)
        except MailboxClosedError:
            self.system.work_finished()
            self._refuse(envelope)
        except BaseException:
            self.system.work_finished()
            raise

    @property
    def queued(self) -> int:
        """Messages waiting in the mailbox."""
        return len(self.mailbox)

    # -- running ------------------------------------------------------------------------------

    async def run(self) -> None:
        """Run incarnations until stopped, cancelled, or past the restart intensity."""
        instance: Actor | None = None
        try:
            with anyio.CancelScope() as scope:
                self._run_scope = scope
                while True:
                    instance = self.factory()
                    self.current_instance = instance
                    try:
                        await self._incarnation(instance)
                    except Exception as exc:  # noqa: BLE001  (the supervisor: every crash lands here)
                        if not await self._crashed(instance, unwrap(exc)):
                            break
                    else:
                        break
        finally:
            with anyio.CancelScope(shield=True):
                await self._finish(instance)

    async def _incarnation(self, instance: Actor) -> None:
        async with anyio.create_task_group() as tg:
            instance._bind(self.ref, self.system, tg)
            current.set(HandlingContext(self.name))
            if not self._restart_pending:
                self.system.work_started()  # starting is work: `wait_idle` must not pass it
            self._restart_pending = False
            try:
                await instance.on_start()
            finally:
                self.system.work_finished()
            self.started.set()
            await self._receive_loop(instance)
            tg.cancel_scope.cancel()

    async def _receive_loop(self, instance: Actor) -> None:
        mailbox = self.mailbox
        fairness = self.system.settings.fairness_batch
        context = HandlingContext(self.name)
        current.set(context)
        batch = 0
        while True:
            envelope = mailbox.get_nowait()
            if envelope is None:
                batch = 0
                context.message = None
                envelope = await mailbox.get()
                if envelope is None:
                    return
            else:
                # Drained without a scheduler round-trip; yield every `fairness` messages.
                batch += 1
                if batch >= fairness:
                    batch = 0
                    await anyio.lowlevel.checkpoint()
            context.message = envelope.message
            await self._handle(instance, envelope)

    async def _handle(self, instance: Actor, envelope: Envelope) -> None:
        message = envelope.message
        handler = instance.handlers.get(type(message)) or type(instance).fallback_handler
        if handler is None:
            self.system.dead_letter(self.name, envelope, f"no handler for kind {message.kind!r}")
            if envelope.reply is not None:
                envelope.reply.fail(
                    ActorError(f"actor {self.name!r} does not handle kind {message.kind!r}")
                )
            self.system.work_finished()
            await instance.on_unhandled(envelope)
            return
        self.processing = envelope
        instance._current = envelope
        try:
            result = await handler(instance, message)
        except Exception as exc:
            if envelope.reply is None:
                raise  # a tell: the actor crashed; the supervisor takes it from here
            self.processing = None
            self.system.work_finished()
            instance.log.warning("ask.failed", kind=message.kind, error=repr(exc))
            envelope.reply.fail(exc)
            return
        self.processing = None
        if envelope.reply is not None:
            envelope.reply.set(result)
        self.system.work_finished()

    async def _crashed(self, instance: Actor, error: BaseException) -> bool:
        """Handle a crash; return True to restart, False to give up."""
        self.system.work_started()  # the restart is work in flight until on_start returns
        self._restart_pending = True
        envelope, self.processing = self.processing, None
        if envelope is not None:
            self.system.dead_letter(self.name, envelope, "handler crashed", error=error)
            self.system.work_finished()
        log.error(
            "actor.crashed",
            actor=self.name,
            error=repr(error),
            kind=envelope.message.kind if envelope else None,
            correlation_id=envelope.message.correlation_id if envelope else None,
        )
        try:
            await instance.on_failure(error, envelope)
        except Exception as hook_error:
            log.exception("actor.on_failure_failed", actor=self.name, error=repr(hook_error))
        settings = self.system.settings
        now = anyio.current_time()
        self._crash_times.append(now)
        while self._crash_times and now - self._crash_times[0] > settings.restart_window_s:
            self._crash_times.popleft()
        if not self.accepting or len(self._crash_times) > settings.max_restarts:
            self._restart_pending = False
            self.system.work_finished()
            if self.accepting:
                self.system.escalate(self.name, error)
            self.started.set()
            return False
        self.restarts += 1
        log.warning("actor.restarting", actor=self.name, restarts=self.restarts)
        if settings.restart_backoff_s > 0:
            await anyio.sleep(settings.restart_backoff_s * len(self._crash_times))
        return True

    async def _finish(self, instance: Actor | None) -> None:
        self.accepting = False
        if instance is not None and instance._ref is not None:
            with anyio.move_on_after(self.system.settings.phase_timeout_s) as scope:
                try:
                    await instance.on_stop()
                except Exception as exc:
                    log.exception("actor.on_stop_failed", actor=self.name, error=repr(exc))
            if scope.cancelled_caught:
                log.error("actor.on_stop_timeout", actor=self.name)
        if self.processing is not None:
            self._refuse(self.processing)
            self.processing = None
            self.system.work_finished()
        self.mailbox.close()
        while (envelope := self.mailbox.get_nowait()) is not None:
            self._refuse(envelope)
            self.system.work_finished()
        self.started.set()
        self.done.set()

    async def stop(self, bound: float) -> bool:
        """Stop intake, let queued work finish within `bound` seconds, then cancel.

        Returns True when the actor finished within the bound.
        """
        if self.done.is_set():
            return True
        self.accepting = False
        self.mailbox.close()
        with anyio.move_on_after(bound):
            await self.done.wait()
            return True
        if self._run_scope is not None:
            self._run_scope.cancel()
        await self.done.wait()
        return False


def describe(cell: Cell) -> dict[str, Any]:
    """A snapshot of a cell for status output."""
    return {
        "name": cell.name,
        "alive": cell.accepting,
        "queued": cell.queued,
        "restarts": cell.restarts,
        "busy": cell.processing is not None,
    }
