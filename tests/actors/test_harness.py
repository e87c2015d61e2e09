"""The harness: the real system with fakes. Also the wiring: lease around GPU jobs, fail closed."""

from __future__ import annotations

import asyncio
import json
from typing import TYPE_CHECKING

import anyio
import pytest
import trio.testing

from actors.gpu.actor import GPUDispatchActor
from actors.gpu.registry import NOOP_JOB, JobRegistry
from actors.services import GPU, LLM, TRIGGER, WATCHER
from actors.system import SYSTEM
from actors.testing import (
    PROCEED,
    ProbeTimeoutError,
    ScriptedJob,
    UnexpectedMessageError,
    open_test_system,
    probe,
    scripted_gpu,
    scripted_llm,
)
from actors.watcher.spool import submit
from messages.dispatch import JobFinished, RunJob
from messages.ingestion import DrawIngested, IngestInbox
from messages.lifecycle import Shutdown
from messages.llm import ReleaseVRAM, VRAMReturned
from messages.requests import LearningLoop, ProcessSpool, RequestFinished

if TYPE_CHECKING:
    from pathlib import Path

pytestmark = pytest.mark.anyio

DRAW = {"draw_id": "d1", "timestamp": "2026-11-24T10:00:00Z", "value": 7}


def write_draw(state_dir: Path, name: str = "d1.json", payload: object = DRAW) -> None:
    inbox = state_dir / "inbox"
    inbox.mkdir(parents=True, exist_ok=True)
    (inbox / name).write_text(json.dumps(payload))


async def test_probe_receives_what_ingestion_sends(tmp_path: Path) -> None:
    """With the trigger replaced by a probe, a draw file shows up as DrawIngested."""
    write_draw(tmp_path)
    trigger = probe()
    async with open_test_system(tmp_path, fakes={TRIGGER: trigger}) as harness:
        got = await harness.probe(TRIGGER).expect(DrawIngested, within=10)
        assert got.draw.draw_id == "d1"
        assert got.history_len == 1
        assert got.sender == "ingestion"


@pytest.mark.parametrize(
    "anyio_backend",
    [pytest.param(("trio", {"clock": trio.testing.MockClock(autojump_threshold=0)}), id="mock")],
)
async def test_probe_expectations_fail_clearly(tmp_path: Path) -> None:
    """expect() times out naming what arrived; expect_nothing() reports what did."""
    trigger = probe()
    async with open_test_system(tmp_path, fakes={TRIGGER: trigger}) as harness:
        record = harness.probe(TRIGGER)
        await record.expect_nothing(for_=5)
        with pytest.raises(ProbeTimeoutError, match="no DrawIngested within 1 s"):
            await record.expect(DrawIngested, within=1)
        await harness.system.ref(TRIGGER).tell(IngestInbox())
        with pytest.raises(UnexpectedMessageError, match="ingest_inbox"):
            await record.expect_nothing(for_=1)


async def test_scripted_llm_proceed_completes_and_the_lease_goes_back(tmp_path: Path) -> None:
    """A confident proceed completes the request; the scripted GPU took and returned a lease."""
    llm = scripted_llm(default=PROCEED)
    gpu = scripted_gpu(default=ScriptedJob(result={"ok": True}))
    trigger = probe()
    async with open_test_system(
        tmp_path,
        fakes={LLM: llm, GPU: gpu, TRIGGER: trigger},
    ) as harness:
        request = LearningLoop(request_id="r-proceed")
        await anyio.to_thread.run_sync(submit, harness.services.paths, request)
        await harness.system.ref(WATCHER).tell(ProcessSpool())
        finished = await harness.probe(TRIGGER).expect(RequestFinished, within=10)
        assert finished.status == "completed"
        kinds = [type(m).__name__ for m in harness.probe(LLM).received]
        # Steps 3, 5, 6: each job inside release/return, each result then judged.
        assert kinds == ["ReleaseVRAM", "VRAMReturned", "Decide"] * 3
    assert (tmp_path / "watcher_requests" / "done" / "r-proceed.json").exists()


async def test_real_gpu_actor_takes_and_returns_the_lease(tmp_path: Path) -> None:
    """With the real GPU actor and a scripted LLM, a GPU job is wrapped in release/return."""
    gpu_noop = NOOP_JOB.model_copy(update={"name": "noop_gpu", "needs_gpu": True, "gpus": 1})
    registry = JobRegistry([NOOP_JOB, gpu_noop])
    llm = scripted_llm([])
    async with open_test_system(
        tmp_path,
        fakes={LLM: llm, GPU: (llm[0], lambda s: GPUDispatchActor(s, registry=registry))},
    ) as h:
        finished = await h.system.ref(GPU).ask(
            RunJob(job="noop_gpu", run_id="r1"), timeout=30, expect=JobFinished
        )
        assert finished.status == "completed"
        assert finished.result == {"schema_version": 1, "ok": True, "message": "noop"}
        kinds = [type(m) for m in h.probe(LLM).received]
        assert kinds == [ReleaseVRAM, VRAMReturned]

        def unreturned(conn: object) -> int:
            return int(
                conn.execute(  # type: ignore[attr-defined]
                    "SELECT COUNT(*) FROM leases WHERE returned_at IS NULL"
                ).fetchone()[0]
            )

        assert await h.services.store.run(unreturned) == 0
        cpu = await h.system.ref(GPU).ask(
            RunJob(job="noop", run_id="r2"), timeout=30, expect=JobFinished
        )
        assert cpu.status == "completed"
        assert len(h.probe(LLM).received) == 2  # a CPU job takes no lease
        bad = await h.system.ref(GPU).ask(
            RunJob(job="rm -rf", run_id="r3"), timeout=30, expect=JobFinished
        )
        assert bad.status == "rejected"
        assert "rm -rf" in (bad.error or "")


async def test_shutdown_message_asks_for_an_orderly_stop(tmp_path: Path) -> None:
    """`Shutdown` told to the lifecycle actor sets the stop request that the daemon waits on."""
    async with open_test_system(tmp_path, fakes={TRIGGER: probe()}) as h:
        assert not h.system.kernel.stop_requested
        await h.system.ref(SYSTEM).tell(Shutdown(reason="test"))
        with anyio.fail_after(5):
            await h.system.kernel.wait_stop_requested()


@pytest.mark.parametrize("anyio_backend", ["asyncio"])
async def test_no_task_outlives_the_system(tmp_path: Path) -> None:
    """After the system's block, no task it started is left on the event loop."""
    before = asyncio.all_tasks()
    async with open_test_system(tmp_path, once=False) as h:
        await h.system.wait_idle()
    await asyncio.sleep(0)
    assert asyncio.all_tasks() == before
