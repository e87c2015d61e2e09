"""Test harness (public API): the real system with any actor swapped for a fake, and probes.

Example::

    async with open_test_system(tmp_path, replace={LLM: scripted_llm([...])}) as harness:
        probe = harness.probe(TRIGGER)          # the trigger is now a probe
        ...
        msg = await probe.expect(DrawIngested, within=5)

Probes record every message they receive; `expect(kind, within=T)` waits for one of that kind,
`expect_nothing(for_=T)` checks that none arrives. On trio with
`MockClock(autojump_threshold=0)` the waits cost no real time when nothing else is running.
"""

from __future__ import annotations

from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar

import anyio

from actors.assembly import ActorFactory, WatcherSystem, open_system
from actors.config import Settings
from actors.runtime import Actor, handles
from actors.services import LLM, Services
from messages.base import Message, new_id
from messages.decisions import DecisionModel, StepAction, StepDecision
from messages.dispatch import JobFinished, JobProgress, JobStatus, RunJob
from messages.llm import Decide, Decision, ReleaseVRAM, VRAMReleased, VRAMReturned

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Callable, Iterable, Mapping
    from pathlib import Path

M = TypeVar("M", bound=Message)


class ProbeTimeoutError(AssertionError):
    """A probe did not receive the expected message in time."""


class UnexpectedMessageError(AssertionError):
    """A probe received a message while it was told to expect none."""


@dataclass
class ProbeRecord:
    """Everything a probe received, shared across restarts of the probe actor."""

    received: list[Message] = field(default_factory=list)
    changed: anyio.Event = field(default_factory=anyio.Event)
    reply: Callable[[Message], Any] | None = None
    """Builds the reply to an ask (None: reply None)."""

    def add(self, message: Message) -> None:
        self.received.append(message)
        self.changed.set()
        self.changed = anyio.Event()

    def of(self, kind: type[M]) -> list[M]:
        """The received messages of one kind, in arrival order."""
        return [m for m in self.received if isinstance(m, kind)]

    async def expect(self, kind: type[M], *, within: float, after: int = 0) -> M:
        """Wait until a message of `kind` (beyond the first `after` of them) has arrived.

        Raises:
            ProbeTimeoutError: none arrived within `within` seconds.
        """
        with anyio.move_on_after(within):
            while True:
                found = self.of(kind)
                if len(found) > after:
                    return found[after]
                await self.changed.wait()
        kinds = sorted({m.kind for m in self.received}) or ["nothing"]
        msg = f"no {kind.__name__} within {within:g} s; received: {', '.join(kinds)}"
        raise ProbeTimeoutError(msg)

    async def expect_nothing(self, *, for_: float, kind: type[Message] = Message) -> None:
        """Check that no message of `kind` arrives during the next `for_` seconds.

        Raises:
            UnexpectedMessageError: one did.
        """
        before = len(self.of(kind))
        await anyio.sleep(for_)
        extra = self.of(kind)[before:]
        if extra:
            msg = f"expected no {kind.__name__} for {for_:g} s; got {extra[0].kind}"
            raise UnexpectedMessageError(msg)


class ProbeActor(Actor):
    """An actor that records every message it gets (stand-in for any actor)."""

    def __init__(self, record: ProbeRecord) -> None:
        super().__init__()
        self.record = record

    async def on_any(self, message: Message) -> Any:
        """Record the message and reply as the record says."""
        self.record.add(message)
        return self.record.reply(message) if self.record.reply is not None else None

    fallback_handler = on_any


class ScriptedLLM(Actor):
    """A fake LLMActor: answers `Decide` from a script and plays the lease protocol."""

    def __init__(
        self,
        record: ProbeRecord,
        answers: list[DecisionModel],
        default: DecisionModel,
        freed_bytes: int,
    ) -> None:
        super().__init__()
        self.record = record
        self.answers = answers
        self.default = default
        self.freed_bytes = freed_bytes

    @handles(Decide)
    async def on_decide(self, msg: Decide) -> Decision:
        """The next scripted answer (then the default), with source `llm`."""
        self.record.add(msg)
        answer = self.answers.pop(0) if self.answers else self.default
        return Decision.caused_by(
            msg,
            sender=self.name,
            grammar_name=msg.grammar_name,
            answer=answer,
            source="llm",
            attempts=1,
        )

    @handles(ReleaseVRAM)
    async def on_release(self, msg: ReleaseVRAM) -> VRAMReleased:
        """Pretend to stop the worker."""
        self.record.add(msg)
        return VRAMReleased.caused_by(
            msg, sender=self.name, lease_id=msg.lease_id, freed_bytes=self.freed_bytes
        )

    @handles(VRAMReturned)
    async def on_returned(self, msg: VRAMReturned) -> None:
        """Note the lease's return."""
        self.record.add(msg)


@dataclass(frozen=True)
class ScriptedJob:
    """How a scripted job ends."""

    status: JobStatus = "completed"
    result: dict[str, Any] | None = None
    error: str | None = None
    side_effect: Callable[[RunJob], None] | None = None
    """Called while the job "runs" (e.g. to write the halt file mid-request)."""


class ScriptedGPU(Actor):
    """A fake GPUDispatchActor: answers `RunJob` from a script, taking the lease for real."""

    def __init__(
        self, record: ProbeRecord, jobs: list[ScriptedJob], default: ScriptedJob, lease: bool
    ) -> None:
        super().__init__()
        self.record = record
        self.jobs = jobs
        self.default = default
        self.lease = lease

    @handles(RunJob)
    async def on_run_job(self, msg: RunJob) -> JobFinished:
        """Take the lease (if asked to), "run", return the lease, reply the scripted end."""

        self.record.add(msg)
        job = self.jobs.pop(0) if self.jobs else self.default
        if job.side_effect is not None:
            job.side_effect(msg)
        lease_id = None
        if self.lease:
            lease_id = new_id()
            llm = self.system.ref(LLM)
            await llm.ask(
                ReleaseVRAM.caused_by(msg, lease_id=lease_id, reason="scripted", deadline_s=5),
                timeout=10,
            )
            await llm.tell(VRAMReturned.caused_by(msg, lease_id=lease_id))
        return JobFinished.caused_by(
            msg,
            sender=self.name,
            job=msg.job,
            run_id=msg.run_id,
            status=job.status,
            result=job.result,
            error=job.error,
            lease_id=lease_id,
        )


PROCEED = StepDecision(
    success_condition_met=True,
    confidence=0.9,
    reasoning="scripted proceed",
    recommended_action=StepAction.PROCEED,
)
ESCALATE = StepDecision(
    success_condition_met=False,
    confidence=0.2,
    reasoning="scripted escalate",
    recommended_action=StepAction.ESCALATE,
)


@dataclass
class Harness:
    """A running test system plus the records of its fakes, by actor name."""

    system: WatcherSystem
    records: dict[str, ProbeRecord]

    @property
    def services(self) -> Services:
        """The shared services (settings, paths, store, audit)."""
        return self.system.services

    def probe(self, name: str) -> ProbeRecord:
        """The record of the fake standing in for actor `name`."""
        return self.records[name]


def probe(reply: Callable[[Message], Any] | None = None) -> tuple[ProbeRecord, ActorFactory]:
    """A probe: its record, and the factory to pass in `replace`."""
    record = ProbeRecord(reply=reply)
    return record, lambda _services: ProbeActor(record)


def scripted_llm(
    answers: Iterable[DecisionModel] = (),
    *,
    default: DecisionModel = ESCALATE,
    freed_bytes: int = 0,
) -> tuple[ProbeRecord, ActorFactory]:
    """A scripted LLM: answers in order, then `default` (escalate: fail closed)."""
    record = ProbeRecord()
    script = list(answers)
    return record, lambda _s: ScriptedLLM(record, script, default, freed_bytes)


def scripted_gpu(
    jobs: Iterable[ScriptedJob] = (), *, default: ScriptedJob | None = None, lease: bool = True
) -> tuple[ProbeRecord, ActorFactory]:
    """A scripted GPU dispatcher: job endings in order, then `default` (completed)."""
    record = ProbeRecord()
    script = list(jobs)
    return record, lambda _s: ScriptedGPU(record, script, default or ScriptedJob(), lease)


def harness_settings(state_dir: Path, **sections: Mapping[str, Any]) -> Settings:
    """Settings for a test: the state dir, test mode, and per-section overrides."""
    data: dict[str, Any] = {"state_dir": str(state_dir), "test_mode": True}
    data.update({name: dict(values) for name, values in sections.items()})
    return Settings.model_validate(data)


@asynccontextmanager
async def open_test_system(
    state_dir: Path,
    *,
    fakes: Mapping[str, tuple[ProbeRecord, ActorFactory]] | None = None,
    settings: Settings | None = None,
    once: bool = True,
    progress: Callable[[JobProgress], None] | None = None,
) -> AsyncIterator[Harness]:
    """Start the real system in `state_dir` with the given actors replaced by fakes.

    `once=True` (the default) turns off folder watching, so tests drive the actors by message;
    `progress` receives every job progress event (as the foreground progress bar does).
    """
    fakes = dict(fakes or {})
    async with open_system(
        settings or harness_settings(state_dir),
        once=once,
        progress=progress,
        replace={name: factory for name, (_record, factory) in fakes.items()},
    ) as system:
        yield Harness(system, {name: record for name, (record, _f) in fakes.items()})
