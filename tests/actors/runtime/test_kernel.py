"""The actor kernel: ordering, backpressure, ask, supervision, dead letters, shutdown."""

from __future__ import annotations

from typing import Any, Literal

import anyio
import pytest
import trio.testing

from actors.runtime import Actor, ActorSystem, KernelSettings, handles, open_actor_system
from messages.base import Message
from messages.errors import ActorDeadError, ActorError, AskTimeoutError, MailboxFullError

pytestmark = pytest.mark.anyio

MOCK_CLOCK = pytest.param(
    ("trio", {"clock": trio.testing.MockClock(autojump_threshold=0)}), id="trio-mockclock"
)


class Note(Message):
    """A test message carrying a number."""

    kind: Literal["test_note"] = "test_note"
    n: int = 0


class Boom(Message):
    """A test message whose handler raises."""

    kind: Literal["test_boom"] = "test_boom"


class Hang(Message):
    """A test message whose handler waits on a gate."""

    kind: Literal["test_hang"] = "test_hang"


class Unknown(Message):
    """A test message that no actor handles."""

    kind: Literal["test_unknown"] = "test_unknown"


class Recorder(Actor):
    """Records notes, doubles them on ask, raises on Boom, waits on the gate for Hang."""

    def __init__(self, seen: list[int], gate: anyio.Event | None = None) -> None:
        super().__init__()
        self.seen = seen
        self.gate = gate

    @handles(Note)
    async def on_note(self, msg: Note) -> int:
        self.seen.append(msg.n)
        return msg.n * 2

    @handles(Boom)
    async def on_boom(self, msg: Boom) -> None:
        raise RuntimeError("boom on purpose")

    @handles(Hang)
    async def on_hang(self, msg: Hang) -> None:
        assert self.gate is not None
        await self.gate.wait()


async def spawn_recorder(
    system: ActorSystem, seen: list[int], gate: anyio.Event | None = None, **kw: Any
) -> Any:
    return await system.spawn("rec", lambda: Recorder(seen, gate), **kw)


async def test_messages_from_one_sender_arrive_in_order() -> None:
    """A thousand tells from one task are handled in the order they were sent."""
    seen: list[int] = []
    async with open_actor_system() as system:
        ref = await spawn_recorder(system, seen)
        for n in range(1000):
            await ref.tell(Note(n=n))
        await system.wait_idle()
    assert seen == list(range(1000))


async def test_full_mailbox_makes_tell_wait_and_tell_nowait_raise() -> None:
    """With capacity 2 and the actor busy, tell_nowait raises and tell waits for room."""
    seen: list[int] = []
    gate = anyio.Event()
    async with open_actor_system() as system:
        ref = await spawn_recorder(system, seen, gate, capacity=2)
        await ref.tell(Hang())
        await anyio.wait_all_tasks_blocked()  # the actor is now inside on_hang
        ref.tell_nowait(Note(n=1))
        ref.tell_nowait(Note(n=2))
        with pytest.raises(MailboxFullError, match="mailbox of actor 'rec' is full"):
            ref.tell_nowait(Note(n=3))
        told = anyio.Event()

        async def third() -> None:
            await ref.tell(Note(n=3))
            told.set()

        async with anyio.create_task_group() as tg:
            tg.start_soon(third)
            await anyio.wait_all_tasks_blocked()
            assert not told.is_set()
            gate.set()
        await system.wait_idle()
    assert seen == [1, 2, 3]


async def test_ask_returns_the_handlers_reply_and_checks_its_type() -> None:
    """ask() gives back what the handler returned; `expect` rejects another type."""
    async with open_actor_system() as system:
        ref = await spawn_recorder(system, [])
        assert await ref.ask(Note(n=21), timeout=5) == 42
        assert await ref.ask(Note(n=2), timeout=5, expect=int) == 4
        with pytest.raises(ActorError, match="expected str"):
            await ref.ask(Note(n=2), timeout=5, expect=str)


@pytest.mark.parametrize("anyio_backend", [MOCK_CLOCK])
async def test_ask_timeout_names_actor_kind_and_seconds() -> None:
    """An ask with no reply raises AskTimeoutError naming actor, kind and seconds."""
    async with open_actor_system() as system:
        ref = await spawn_recorder(system, [], anyio.Event())
        start = anyio.current_time()
        with pytest.raises(AskTimeoutError) as info:
            await ref.ask(Hang(), timeout=2.5)
        assert anyio.current_time() - start == pytest.approx(2.5)
        assert str(info.value) == "ask 'test_hang' to actor 'rec' got no reply within 2.5 s"
        assert (info.value.actor, info.value.kind, info.value.seconds) == ("rec", "test_hang", 2.5)
        system.ref("rec")  # still registered
        await system.shutdown()


async def test_failed_ask_goes_back_to_the_caller_and_the_actor_carries_on() -> None:
    """A handler error on an ask is raised in the caller; the actor is not restarted."""
    seen: list[int] = []
    async with open_actor_system() as system:
        ref = await spawn_recorder(system, seen)
        with pytest.raises(RuntimeError, match="boom on purpose"):
            await ref.ask(Boom(), timeout=5)
        assert await ref.ask(Note(n=1), timeout=5) == 2
        assert system.snapshot()[0]["restarts"] == 0


async def test_crash_restarts_the_actor_and_keeps_its_mailbox() -> None:
    """A crashing tell restarts the actor; messages queued behind it are still handled."""
    seen: list[int] = []
    instances: list[Recorder] = []

    def factory() -> Recorder:
        actor = Recorder(seen)
        instances.append(actor)
        return actor

    async with open_actor_system() as system:
        ref = await system.spawn("rec", factory)
        ref.tell_nowait(Note(n=1))
        ref.tell_nowait(Boom())
        ref.tell_nowait(Note(n=2))
        await system.wait_idle()
        assert seen == [1, 2]
        assert len(instances) == 2
        assert system.snapshot()[0]["restarts"] == 1
        letter = system.dead_letters.recent[-1]
        assert (letter.kind, letter.reason) == ("test_boom", "handler crashed")
        assert letter.error is not None
        assert "boom on purpose" in letter.error
        assert system.failure is None


@pytest.mark.parametrize("anyio_backend", [MOCK_CLOCK])
async def test_crashes_past_the_intensity_stop_the_system() -> None:
    """A fourth crash within 5 s records the failure, stops the actor and asks for shutdown."""
    async with open_actor_system(KernelSettings(max_restarts=3, restart_window_s=5)) as system:
        ref = await spawn_recorder(system, [])
        for _ in range(4):
            ref.tell_nowait(Boom())
        await system.wait_stop_requested()
        assert system.failure is not None
        assert system.failure.actor == "rec"
        assert not ref.is_alive
        with pytest.raises(ActorDeadError):
            await ref.ask(Note(n=1), timeout=1)


@pytest.mark.parametrize("anyio_backend", [MOCK_CLOCK])
async def test_crashes_spread_out_in_time_are_restarted() -> None:
    """Crashes further apart than the window never exceed the intensity."""
    async with open_actor_system(KernelSettings(max_restarts=1, restart_window_s=5)) as system:
        ref = await spawn_recorder(system, [])
        for _ in range(4):
            ref.tell_nowait(Boom())
            await system.wait_idle()
            await anyio.sleep(6)
        assert system.failure is None
        assert system.snapshot()[0]["restarts"] == 4


async def test_unknown_kinds_and_stopped_actors_make_dead_letters() -> None:
    """Unhandled kinds and messages to a stopped actor are counted as dead letters."""
    async with open_actor_system() as system:
        ref = await spawn_recorder(system, [])
        await ref.tell(Unknown())
        await system.wait_idle()
        assert system.dead_letters.count == 1
        with pytest.raises(ActorError, match="does not handle kind 'test_unknown'"):
            await ref.ask(Unknown(), timeout=5)
        await system.shutdown()
        await ref.tell(Note(n=1))
        with pytest.raises(ActorDeadError, match="actor 'rec' stopped"):
            await ref.ask(Note(n=1), timeout=5)
        assert system.dead_letters.count == 4
        assert [d.reason for d in system.dead_letters.recent][-2:] == ["actor stopped"] * 2


@pytest.mark.parametrize("anyio_backend", [MOCK_CLOCK])
async def test_shutdown_cancels_a_stuck_actor_at_the_phase_bound() -> None:
    """A handler that never finishes is cancelled when its phase bound runs out."""
    async with open_actor_system(KernelSettings(phase_timeout_s=3)) as system:
        ref = await spawn_recorder(system, [], anyio.Event())
        await ref.tell(Hang())
        await anyio.wait_all_tasks_blocked()
        start = anyio.current_time()
        await system.shutdown()
        assert anyio.current_time() - start == pytest.approx(3)
        assert not ref.is_alive


async def test_stop_fails_pending_asks() -> None:
    """Asks still queued when an actor is cancelled at shutdown fail with ActorDeadError."""
    errors: list[BaseException] = []
    async with open_actor_system(KernelSettings(phase_timeout_s=0.05)) as system:
        ref = await spawn_recorder(system, [], anyio.Event())
        await ref.tell(Hang())

        async def asker() -> None:
            try:
                await ref.ask(Note(n=1), timeout=30)
            except ActorDeadError as exc:
                errors.append(exc)

        async with anyio.create_task_group() as tg:
            tg.start_soon(asker)
            await anyio.wait_all_tasks_blocked()
            await system.shutdown()
    assert len(errors) == 1


async def test_shutdown_drains_queued_tells_in_order_then_stops() -> None:
    """A graceful stop lets messages already queued be handled before the actor stops."""
    seen: list[int] = []
    async with open_actor_system() as system:
        ref = await spawn_recorder(system, seen)
        for n in range(5):
            ref.tell_nowait(Note(n=n))
    assert seen == [0, 1, 2, 3, 4]
    assert not ref.is_alive


class Background(Actor):
    """Starts a background task that records its own cancellation."""

    def __init__(self, events: list[str]) -> None:
        super().__init__()
        self.events = events

    async def on_start(self) -> None:
        self.start_soon(self.forever)

    async def forever(self) -> None:
        try:
            await anyio.sleep_forever()
        finally:
            self.events.append("background cancelled")

    async def on_stop(self) -> None:
        self.events.append("on_stop")


async def test_no_task_outlives_the_system() -> None:
    """Leaving the system's block cancels background tasks and runs on_stop once."""
    events: list[str] = []
    async with open_actor_system() as system:
        await system.spawn("bg", lambda: Background(events))
        await anyio.wait_all_tasks_blocked()
    assert events == ["background cancelled", "on_stop"]


async def test_system_refuses_duplicate_names_and_names_known_actors() -> None:
    """Spawning a name twice fails; looking up an unknown name lists the known ones."""
    async with open_actor_system() as system:
        await spawn_recorder(system, [])
        with pytest.raises(ActorError, match="already exists"):
            await spawn_recorder(system, [])
        with pytest.raises(ActorError, match="no actor named 'nope'; known: rec"):
            system.ref("nope")


async def test_fairness_lets_other_actors_run_during_a_long_drain() -> None:
    """An actor draining a full mailbox yields every fairness_batch messages to others."""
    order: list[str] = []

    class Tagger(Actor):
        def __init__(self, tag: str) -> None:
            super().__init__()
            self.tag = tag

        @handles(Note)
        async def on_note(self, msg: Note) -> None:
            order.append(self.tag)

    async with open_actor_system(KernelSettings(fairness_batch=10)) as system:
        a = await system.spawn("a", lambda: Tagger("a"))
        b = await system.spawn("b", lambda: Tagger("b"))
        for _ in range(50):
            a.tell_nowait(Note())
        for _ in range(50):
            b.tell_nowait(Note())
        await system.wait_idle()
    first_b = order.index("b")
    assert first_b < 50, "b waited for all of a's messages: no yielding"


class Deferring(Actor):
    """Replies to asks later, from a background task."""

    def __init__(self, gate: anyio.Event) -> None:
        super().__init__()
        self.gate = gate

    @handles(Note)
    async def on_note(self, msg: Note) -> None:
        slot = self.defer_reply()
        self.start_soon(self.answer_later, msg.n, slot)

    async def answer_later(self, n: int, slot: Any) -> None:
        await self.gate.wait()
        slot.set(n + 100)


async def test_defer_reply_answers_from_a_task_while_the_mailbox_flows() -> None:
    """A deferred reply arrives when the task gives it; the actor meanwhile handles more."""
    gate = anyio.Event()
    replies: list[int] = []
    async with open_actor_system() as system:
        ref = await system.spawn("deferring", lambda: Deferring(gate))

        async def ask(n: int) -> None:
            replies.append(await ref.ask(Note(n=n), timeout=5))

        async with anyio.create_task_group() as tg:
            tg.start_soon(ask, 1)
            tg.start_soon(ask, 2)
            await anyio.wait_all_tasks_blocked()
            assert replies == []
            gate.set()
    assert sorted(replies) == [101, 102]


async def test_fallback_handler_takes_every_kind() -> None:
    """An actor with a fallback handler gets kinds it has no handler for; no dead letter."""
    got: list[str] = []

    class CatchAll(Actor):
        async def anything(self, msg: Message) -> str:
            got.append(msg.kind)
            return "ok"

        fallback_handler = anything

    async with open_actor_system() as system:
        ref = await system.spawn("all", CatchAll)
        assert await ref.ask(Unknown(), timeout=5) == "ok"
        await ref.tell(Note(n=1))
        await system.wait_idle()
        assert system.dead_letters.count == 0
    assert got == ["test_unknown", "test_note"]


class Crashy(Actor):
    """Its background task crashes once, on the first incarnation."""

    incarnations = 0

    async def on_start(self) -> None:
        Crashy.incarnations += 1
        if Crashy.incarnations == 1:
            self.start_soon(self.explode)

    async def explode(self) -> None:
        raise RuntimeError("background failure")


async def test_a_crashing_background_task_restarts_the_actor() -> None:
    """A failure in a background task is the actor's failure: it is restarted."""
    Crashy.incarnations = 0
    async with open_actor_system() as system:
        await system.spawn("crashy", Crashy)
        await system.wait_idle()
        await anyio.wait_all_tasks_blocked()
        assert Crashy.incarnations == 2
        assert system.snapshot()[0]["restarts"] == 1
        assert system.failure is None


async def test_wait_idle_covers_a_restart_in_progress() -> None:
    """wait_idle does not return between a crash and the new incarnation's on_start."""
    started: list[int] = []

    class SlowStart(Recorder):
        async def on_start(self) -> None:
            started.append(1)
            await anyio.sleep(0.01)
            if len(started) == 2:
                await self.ref.tell(Note(n=99))

    seen: list[int] = []
    async with open_actor_system() as system:
        ref = await system.spawn("slow", lambda: SlowStart(seen))
        await ref.tell(Boom())
        await system.wait_idle()
        assert seen == [99]


async def test_logs_inside_a_handler_carry_the_flow_ids() -> None:
    """A log line from a handler has the actor as logger and the message's ids."""
    from structlog.testing import capture_logs

    from actors.logconfig import add_flow_ids

    class Logger(Actor):
        @handles(Note)
        async def on_note(self, msg: Note) -> None:
            self.log.info("noted")

    note = Note(n=1)
    with capture_logs(processors=[add_flow_ids]) as logs:
        async with open_actor_system() as system:
            ref = await system.spawn("logger", Logger)
            await ref.ask(note, timeout=5)
    line = next(entry for entry in logs if entry["event"] == "noted")
    assert line["logger"] == "logger"
    assert line["correlation_id"] == note.correlation_id
    assert line["message_id"] == note.message_id
