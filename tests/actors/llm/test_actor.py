"""LLMActor in the running system: heuristic without a model, the lease, the real worker."""

from __future__ import annotations

import json
import os
import signal
import sys
from pathlib import Path
from typing import Any

import anyio
import pytest

from actors.llm.actor import LLMActor
from actors.llm.client import WorkerClient
from actors.services import LLM, TRIGGER
from actors.testing import Harness, harness_settings, open_test_system, probe
from messages.decisions import Chapter13Proposal, MetricThreshold, StepAction, StepDecision
from messages.llm import Decide, Decision, ReleaseVRAM, VRAMReleased, VRAMReturned
from messages.llm_worker import GenerateText

pytestmark = pytest.mark.anyio

FAKE_WORKER = Path(__file__).with_name("fake_worker.py")
PASSING = (MetricThreshold(metric="scored", min=1),)


async def ask_decide(h: Harness, grammar: str = "agent_decision", **metrics: Any) -> Decision:
    ref = h.system.ref(LLM)
    msg = Decide(prompt="Judge step 3.", grammar_name=grammar, metrics=metrics, thresholds=PASSING)
    return await ref.ask(msg, timeout=120, expect=Decision)


async def test_without_a_model_the_heuristic_answers(tmp_path: Path) -> None:
    """llm.model = none: decisions come from the heuristic, and say so."""
    async with open_test_system(tmp_path, fakes={TRIGGER: probe()}) as h:
        good = await ask_decide(h, scored=5)
        assert good.source == "heuristic"
        assert isinstance(good.answer, StepDecision)
        assert good.answer.recommended_action is StepAction.PROCEED
        missing = await ask_decide(h)
        assert isinstance(missing.answer, StepDecision)
        assert missing.answer.recommended_action is StepAction.ESCALATE
        chapter = await ask_decide(h, "chapter_13", regime_shift=True)
        assert isinstance(chapter.answer, Chapter13Proposal)
        released = await h.system.ref(LLM).ask(
            ReleaseVRAM(lease_id="L1", reason="test", deadline_s=5), timeout=10, expect=VRAMReleased
        )
        assert released.freed_bytes == 0


# The real model on one backend: ~18 s a test on 2 cores; the actor's backend-sensitive paths
# (deferred replies, the idle timer, the worker process) run on both backends with the tiny model.
ONE_BACKEND = pytest.mark.parametrize("anyio_backend", ["asyncio"])


@pytest.mark.llm
@ONE_BACKEND
async def test_real_worker_decides_releases_and_reloads(tmp_path: Path, gemma_model: Path) -> None:
    """With gemma: a grammar-valid answer; release stops the worker; return lets it load again."""
    settings = harness_settings(tmp_path, llm={"model": str(gemma_model), "max_tokens": 200})
    async with open_test_system(tmp_path, fakes={TRIGGER: probe()}, settings=settings) as h:
        loaded = _llm_actor(h).client
        assert loaded is not None  # loaded (grammars compiled) at start-up, not at first use
        assert loaded.loaded is not None
        assert set(loaded.loaded.grammars) >= {"agent_decision", "chapter_13"}
        first = await ask_decide(h, scored=5)
        assert first.source in {"llm", "heuristic"}  # a base model may ramble past its budget
        assert first.attempts >= 1
        actor = _llm_actor(h)
        pid = actor.client.pid if actor.client else None
        assert pid is not None
        released = await h.system.ref(LLM).ask(
            ReleaseVRAM(lease_id="L1", reason="test", deadline_s=30),
            timeout=60,
            expect=VRAMReleased,
        )
        assert released.freed_bytes > 50 * 2**20
        assert not await anyio.Path(f"/proc/{pid}").exists()
        during = await ask_decide(h, scored=5)
        assert during.source == "heuristic"  # the lease is out: the model may not load
        await h.system.ref(LLM).tell(VRAMReturned(lease_id="L1"))
        again = await ask_decide(h, scored=5)
        assert again.attempts >= 1
        assert actor.client is not None
        assert actor.client.pid != pid


@pytest.mark.llm
@ONE_BACKEND
async def test_killed_worker_is_replaced_and_the_caller_gets_an_answer(
    tmp_path: Path, gemma_model: Path
) -> None:
    """kill -9 of the worker mid-generation (once the generate request is in flight, not
    after a guessed sleep): the decision falls back; the next one works."""
    settings = harness_settings(
        tmp_path, llm={"model": str(gemma_model), "reload": "eager", "temperature": 1.0}
    )
    async with open_test_system(tmp_path, fakes={TRIGGER: probe()}, settings=settings) as h:
        actor = _llm_actor(h)
        assert actor.client is not None
        pid = actor.client.pid
        answers: list[Decision] = []

        async def decide() -> None:
            answers.append(await ask_decide(h, "json_generic"))

        async with anyio.create_task_group() as tg:
            tg.start_soon(decide)
            # The generate request is written to the worker and unanswered: kill it then.
            with anyio.fail_after(60):
                await actor.client.wait_in_flight(GenerateText.model_fields["kind"].default)
            os.kill(pid, signal.SIGKILL)
        assert answers[0].source == "heuristic"
        after = await ask_decide(h, scored=5)
        assert after.attempts >= 1
        assert actor.client is not None
        assert actor.client.pid != pid


async def test_a_shutdown_cuts_a_generation_short(
    tmp_path: Path, tiny_model: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A stop requested while the worker generates ends the worker at once (it would read
    `exit` only after the generation) and the caller gets the heuristic's answer: a minute-long
    answer on a CPU can no longer stretch the daemon's shutdown. No new worker starts."""
    start = WorkerClient.start  # the real one, bound to the class

    async def hanging(_cls: type[WorkerClient], path: Path, /, **kwargs: Any) -> WorkerClient:
        # The fake worker sleeps inside the generation without reading stdin, as llama.cpp does.
        return await start(path, command=[sys.executable, str(FAKE_WORKER), "hang"], **kwargs)

    monkeypatch.setattr(WorkerClient, "start", classmethod(hanging))
    settings = harness_settings(tmp_path, llm={"model": str(tiny_model)})
    async with open_test_system(tmp_path, fakes={TRIGGER: probe()}, settings=settings) as h:
        actor = _llm_actor(h)
        assert actor.client is not None
        pid = actor.client.pid
        answers: list[Decision] = []

        async def decide() -> None:
            answers.append(await ask_decide(h, scored=5))

        # A safety net, not a speed limit: before the fix the answer never came.
        with anyio.fail_after(60):
            async with anyio.create_task_group() as tg:
                tg.start_soon(decide)
                await actor.client.wait_in_flight(GenerateText.model_fields["kind"].default)
                h.system.kernel.request_stop()
        assert answers[0].source == "heuristic"
    assert not await anyio.Path(f"/proc/{pid}").exists()
    # One stop, the cut: no worker was started again while stopping (its stop would be here).
    stops = [
        json.loads(line)
        for line in (tmp_path / "audit.jsonl").read_text().splitlines()
        if '"worker_stopped"' in line
    ]
    assert [r["detail"]["reason"] for r in stops] == ["shutdown during a generation"]


def _llm_actor(h: Harness) -> LLMActor:
    """Reach the live LLMActor instance behind its ref (tests only)."""
    cell = h.system.ref(LLM)._cell
    instance = cell.current_instance
    assert isinstance(instance, LLMActor)
    return instance


async def test_idle_worker_is_unloaded(tmp_path: Path, tiny_model: Path) -> None:
    """With llm.idle_unload_s, a worker nobody asked anything stops by itself."""
    settings = harness_settings(tmp_path, llm={"model": str(tiny_model), "idle_unload_s": 0.3})
    async with open_test_system(tmp_path, fakes={TRIGGER: probe()}, settings=settings) as h:
        actor = _llm_actor(h)
        assert actor.client is not None
        pid = actor.client.pid
        proc = anyio.Path(f"/proc/{pid}")
        with anyio.fail_after(20):
            # Polling: the unload is the actor's own timer; nothing to wait on from outside.
            while actor.client is not None or await proc.exists():  # noqa: ASYNC110
                await anyio.sleep(0.05)
        again = await ask_decide(h, scored=5)  # the next decision loads it again
        assert again.attempts >= 1
        assert actor.client is not None


async def test_while_leased_wait_holds_decisions_until_the_lease_returns(
    tmp_path: Path, tiny_model: Path
) -> None:
    """llm.while_leased = wait: a decision asked during a lease is answered after its return."""
    settings = harness_settings(tmp_path, llm={"model": str(tiny_model), "while_leased": "wait"})
    async with open_test_system(tmp_path, fakes={TRIGGER: probe()}, settings=settings) as h:
        llm = h.system.ref(LLM)
        await llm.ask(
            ReleaseVRAM(lease_id="L1", reason="test", deadline_s=10),
            timeout=30,
            expect=VRAMReleased,
        )
        answers: list[Decision] = []

        async def decide() -> None:
            answers.append(await ask_decide(h, scored=5))

        async with anyio.create_task_group() as tg:
            tg.start_soon(decide)
            await anyio.sleep(0.5)
            assert answers == []  # held while the lease is out, the mailbox still flowing
            await llm.tell(VRAMReturned(lease_id="L1"))
        assert len(answers) == 1
        assert answers[0].attempts >= 1  # answered by the model, reloaded after the lease
