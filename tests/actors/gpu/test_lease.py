"""The VRAM lease: whatever happens to a job, every release is matched by a return."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import anyio
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from actors.gpu.actor import GPUDispatchActor
from actors.gpu.inventory import MIB, FakeInventory
from actors.gpu.registry import NOOP_JOB, JobRegistry
from actors.gpu.spec import JobSpec
from actors.runtime import Actor, handles
from actors.services import GPU, LLM, TRIGGER
from actors.testing import ProbeRecord, harness_settings, open_test_system, probe
from messages.dispatch import CancelJobs, JobFinished, RunJob
from messages.lifecycle import Describe, Described
from messages.llm import ReleaseVRAM, VRAMReleased, VRAMReturned

pytestmark = pytest.mark.anyio


def gpu_job(name: str, code: str, timeout_s: float = 30.0) -> JobSpec:
    """A GPU-class job running `code` in Python, writing the noop result when it gets there."""
    # Braces doubled: argv elements are templates ({name} placeholders).
    write = "import sys; open(sys.argv[-1], 'w').write('{{\"ok\": true}}')"
    return JobSpec(
        name=name,
        argv=("{python}", "-c", f"{code}\n{write}", "{result_json}"),
        result_model=NOOP_JOB.result_model,
        timeout_s=timeout_s,
        needs_gpu=True,
    )


REGISTRY = JobRegistry(
    [
        NOOP_JOB,
        gpu_job("ok", "pass"),
        gpu_job("fail", "raise SystemExit(3)"),
        gpu_job("hang", "import time; time.sleep(60)", timeout_s=0.5),
        gpu_job("slow", "import time; time.sleep(60)"),
    ]
)

LlmMode = Literal["answers", "silent", "dead"]


class FaultyLLM(Actor):
    """A fake LLM that answers ReleaseVRAM, never answers it, or is not there at all."""

    def __init__(self, record: ProbeRecord, mode: LlmMode) -> None:
        super().__init__()
        self.record = record
        self.mode = mode

    @handles(ReleaseVRAM)
    async def on_release(self, msg: ReleaseVRAM) -> VRAMReleased | None:
        self.record.add(msg)
        if self.mode == "silent":
            self.defer_reply()  # the reply never comes: GPU dispatch must time out
            return None
        if self.mode == "dead":
            raise RuntimeError("the LLM actor failed while releasing")
        return VRAMReleased.caused_by(msg, lease_id=msg.lease_id, freed_bytes=1)

    @handles(VRAMReturned)
    async def on_returned(self, msg: VRAMReturned) -> None:
        self.record.add(msg)


async def running_jobs(gpu: Any) -> int:
    """How many jobs GPU dispatch is running now (it says so when described)."""
    described = await gpu.ask(Describe(), timeout=10, expect=Described)
    return int(described.state["running_jobs"])


async def run_case(state: Path, job: str, mode: LlmMode, interrupt: str) -> ProbeRecord:
    """One job under one fault; returns what the LLM saw."""
    record = ProbeRecord()
    settings_ = harness_settings(state, llm={"release_deadline_s": 0.2}, gpu={"kill_grace_s": 0.2})
    fakes: dict[str, Any] = {
        TRIGGER: probe(),
        LLM: (record, lambda _s: FaultyLLM(record, mode)),
        GPU: (ProbeRecord(), lambda s: GPUDispatchActor(s, registry=REGISTRY)),
    }
    async with open_test_system(state, fakes=fakes, settings=settings_) as h:
        gpu = h.system.ref(GPU)
        if interrupt == "none":
            finished = await gpu.ask(RunJob(job=job, run_id="r"), timeout=60, expect=JobFinished)
            assert finished.status in {"completed", "failed", "timed_out"}
        else:
            async with anyio.create_task_group() as tg:
                tg.start_soon(gpu.ask, RunJob(job="slow", run_id="r"))
                await record.expect(ReleaseVRAM, within=30)
                with anyio.fail_after(30):
                    # Polling: the job is a real process; nothing in-process signals its start.
                    while not await running_jobs(gpu):  # noqa: ASYNC110
                        await anyio.sleep(0.02)
                if interrupt == "cancel":
                    await gpu.tell(CancelJobs(reason="test"))
                else:  # shutdown mid-job: leave the block with the job running
                    tg.cancel_scope.cancel()

        def unreturned(conn: Any) -> int:
            sql = "SELECT COUNT(*) FROM leases WHERE returned_at IS NULL"
            return int(conn.execute(sql).fetchone()[0])

        if interrupt != "shutdown":
            await h.system.wait_idle()
            assert await h.services.store.run(unreturned) == 0
    return record


@pytest.mark.parametrize("anyio_backend", ["asyncio"])
@settings(
    max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    job=st.sampled_from(["ok", "fail", "hang"]),
    mode=st.sampled_from(["answers", "silent", "dead"]),
    interrupt=st.sampled_from(["none", "none", "cancel", "shutdown"]),
)
async def test_every_release_is_returned(
    tmp_path_factory: pytest.TempPathFactory, job: str, mode: LlmMode, interrupt: str
) -> None:
    """Success, failure, timeout, cancellation, shutdown, an LLM that never answers or fails:
    the LLM sees as many VRAMReturned as ReleaseVRAM, and no lease stays out in the store."""
    record = await run_case(tmp_path_factory.mktemp("lease"), job, mode, interrupt)
    releases = record.of(ReleaseVRAM)
    returns = record.of(VRAMReturned)
    assert len(releases) == 1
    assert [m.lease_id for m in returns] == [m.lease_id for m in releases]


async def test_cpu_jobs_take_no_lease(tmp_path: Path) -> None:
    """A job that does not need a GPU runs without asking the LLM for anything."""
    record = ProbeRecord()
    fakes: dict[str, Any] = {
        TRIGGER: probe(),
        LLM: (record, lambda _s: FaultyLLM(record, "answers")),
        GPU: (ProbeRecord(), lambda s: GPUDispatchActor(s, registry=REGISTRY)),
    }
    async with open_test_system(tmp_path, fakes=fakes) as h:
        finished = await h.system.ref(GPU).ask(
            RunJob(job="noop", run_id="r"), timeout=60, expect=JobFinished
        )
        assert finished.status == "completed"
    assert record.received == []


class FreeingLLM(Actor):
    """A fake LLM whose release frees the fake GPU's memory (or does not)."""

    def __init__(self, record: ProbeRecord, inventory: FakeInventory, frees: bool) -> None:
        super().__init__()
        self.record = record
        self.inventory = inventory
        self.frees = frees

    @handles(ReleaseVRAM)
    async def on_release(self, msg: ReleaseVRAM) -> VRAMReleased:
        self.record.add(msg)
        if self.frees:
            self.inventory.set_free(0, 900 * MIB)
        return VRAMReleased.caused_by(msg, lease_id=msg.lease_id, freed_bytes=800 * MIB)

    @handles(VRAMReturned)
    async def on_returned(self, msg: VRAMReturned) -> None:
        self.record.add(msg)


@pytest.mark.parametrize("frees", [True, False])
async def test_the_job_waits_for_the_memory_the_llm_frees(tmp_path: Path, frees: bool) -> None:
    """With a (fake) GPU, the job starts once its VRAM is free, or fails at the deadline."""
    inventory = FakeInventory.with_gpus(1, total_mb=1000, free_mb=100)
    big = gpu_job("big", "pass").model_copy(update={"vram_mb": 500})
    registry = JobRegistry([NOOP_JOB, big])
    record = ProbeRecord()
    settings_ = harness_settings(tmp_path, gpu={"vram_wait_s": 0.5})
    fakes: dict[str, Any] = {
        TRIGGER: probe(),
        LLM: (record, lambda _s: FreeingLLM(record, inventory, frees)),
        GPU: (ProbeRecord(), lambda s: GPUDispatchActor(s, registry=registry, inventory=inventory)),
    }
    async with open_test_system(tmp_path, fakes=fakes, settings=settings_) as h:
        finished = await h.system.ref(GPU).ask(
            RunJob(job="big", run_id="r"), timeout=60, expect=JobFinished
        )
    if frees:
        assert finished.status == "completed"
    else:
        assert finished.status == "failed"
        assert finished.error == "GPU 0 did not have 500 MB free within 0.5 s of the lease"
    assert [type(m) for m in record.received] == [ReleaseVRAM, VRAMReturned]


async def test_a_job_bigger_than_the_gpu_is_rejected_up_front(tmp_path: Path) -> None:
    """A job asking for more VRAM than any GPU has is refused before any lease is taken."""
    inventory = FakeInventory.with_gpus(1, total_mb=1000)
    huge = gpu_job("huge", "pass").model_copy(update={"vram_mb": 4000})
    registry = JobRegistry([NOOP_JOB, huge])
    record = ProbeRecord()
    fakes: dict[str, Any] = {
        TRIGGER: probe(),
        LLM: (record, lambda _s: FreeingLLM(record, inventory, True)),
        GPU: (ProbeRecord(), lambda s: GPUDispatchActor(s, registry=registry, inventory=inventory)),
    }
    async with open_test_system(tmp_path, fakes=fakes) as h:
        finished = await h.system.ref(GPU).ask(
            RunJob(job="huge", run_id="r"), timeout=60, expect=JobFinished
        )
    assert finished.status == "rejected"
    assert "4000" in (finished.error or "")
    assert record.received == []
