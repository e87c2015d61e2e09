"""The `Actor` base class: typed handlers per message kind and the lifecycle hooks."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Coroutine
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar

import structlog

from actors.runtime.context import HandlingContext, current
from messages.base import Message

if TYPE_CHECKING:
    from anyio.abc import TaskGroup

    from actors.runtime.envelope import Envelope, ReplySlot
    from actors.runtime.kernel import ActorSystem
    from actors.runtime.ref import ActorRef

M = TypeVar("M", bound=Message)
Handler = Callable[[Any, Any], Awaitable[Any]]
_HANDLES_ATTR = "__watcher_handles__"


def handles(*kinds: type[Message]) -> Callable[[Handler], Handler]:
    """Mark an async method as the handler of one or more message classes.

    The handler's return value is the reply when the message was sent with `ask`.
    """

    def mark(func: Handler) -> Handler:
        setattr(func, _HANDLES_ATTR, kinds)
        return func

    return mark


class Actor:
    """Base of every actor: subclass it, add `@handles(...)` methods, override the hooks.

    An instance lives for one incarnation: after a crash the supervisor builds a fresh one from
    the same factory, and it reads the same mailbox. Keep durable state in the store.
    """

    handlers: ClassVar[dict[type[Message], Handler]] = {}
    fallback_handler: ClassVar[Handler | None] = None
    """Handles every kind without a handler of its own (probes use it); None: dead letter."""

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        table: dict[type[Message], Handler] = {}
        for klass in reversed(cls.__mro__):
            for attr in vars(klass).values():
                for kind in getattr(attr, _HANDLES_ATTR, ()):
                    table[kind] = attr
        cls.handlers = table

    def __init__(self) -> None:
        self._ref: ActorRef | None = None
        self._system: ActorSystem | None = None
        self._task_group: TaskGroup | None = None
        self._current: Envelope | None = None
        self.log: Any = structlog.get_logger()

    # -- wiring (done by the kernel before on_start) -------------------------------------------

    def _bind(self, ref: ActorRef, system: ActorSystem, task_group: TaskGroup) -> None:
        self._ref = ref
        self._system = system
        self._task_group = task_group
        self.log = structlog.get_logger().bind(logger=ref.name)

    @property
    def ref(self) -> ActorRef:
        """This actor's own reference (to tell itself, or to hand to others)."""
        if self._ref is None:
            msg = f"{type(self).__name__} is not started: no ref before on_start"
            raise RuntimeError(msg)
        return self._ref

    @property
    def name(self) -> str:
        """The name this actor was spawned under."""
        return self.ref.name

    @property
    def system(self) -> ActorSystem:
        """The system this actor runs in (to find other actors by name)."""
        if self._system is None:
            msg = f"{type(self).__name__} is not started: no system before on_start"
            raise RuntimeError(msg)
        return self._system

    def start_soon(
        self,
        func: Callable[..., Coroutine[Any, Any, Any]],
        *args: Any,
        name: str = "",
        flow: Message | None = None,
    ) -> None:
        """Run a background task for this incarnation; its failure is this actor's failure.

        Its log lines carry the ids of `flow` (the message it works for), if given.
        """
        if self._task_group is None:
            msg = f"{type(self).__name__} is not started: no background task before on_start"
            raise RuntimeError(msg)
        actor = self.name

        async def run() -> None:
            # Its own context: its logs must not borrow the id of the message being handled.
            current.set(HandlingContext(actor, flow))
            await func(*args)

        self._task_group.start_soon(run, name=name or f"{actor}:{func.__name__}")

    def defer_reply(self) -> ReplySlot | None:
        """Take over the reply of the message being handled, to give it later from a task.

        The kernel then does not reply with the handler's return value; whoever holds the slot
        must `set` or `fail` it exactly once. Returns None when the message was a tell.
        """
        envelope = self._current
        if envelope is None:
            return None
        slot, envelope.reply = envelope.reply, None
        return slot

    # -- hooks --------------------------------------------------------------------------------

    async def on_start(self) -> None:
        """Called before the first message of each incarnation."""

    async def on_stop(self) -> None:
        """Called once when the actor stops for good (not on a crash), within the phase bound."""

    async def on_failure(self, error: BaseException, envelope: Envelope | None) -> None:
        """Called after a crash, before the restart decision; `envelope` is the message, if any."""

    async def on_unhandled(self, envelope: Envelope) -> None:
        """Called for a message of a kind this actor has no handler for (after dead-lettering)."""
