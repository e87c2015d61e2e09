"""GPU assignment: N GPUs run N jobs at once, pinned; impossible requests refused up front."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import BaseModel

from actors.gpu.assign import GpuAssignment, GpuRequestError, GpuSlots, check_fits
from actors.gpu.inventory import MIB, FakeInventory, GpuInfo
from actors.gpu.spec import JobSpec


def _job(name: str, *, gpus: int = 0, vram_mb: int = 0) -> JobSpec:
    return JobSpec(
        name=name,
        argv=("{python}",),
        result_model=BaseModel,
        timeout_s=1,
        needs_gpu=gpus > 0,
        gpus=gpus,
        vram_mb=vram_mb,
    )


def _gpus(count: int, total_mb: int = 8192) -> tuple[GpuInfo, ...]:
    return FakeInventory.with_gpus(count, total_mb=total_mb).gpus()


def test_n_gpus_run_n_jobs_each_pinned() -> None:
    """With 2 GPUs two GPU jobs get GPU 0 and GPU 1; a third waits until one is released."""
    slots = GpuSlots(_gpus(2))
    first = slots.try_assign(_job("a", gpus=1, vram_mb=4000))
    second = slots.try_assign(_job("b", gpus=1))
    assert first == GpuAssignment(indices=(0,), visible=(0,), vram_bytes=4000 * MIB)
    assert second is not None
    assert second.env() == {"CUDA_VISIBLE_DEVICES": "1"}
    assert slots.try_assign(_job("c", gpus=1)) is None
    slots.release(first.indices)
    third = slots.try_assign(_job("c", gpus=1))
    assert third is not None
    assert third.indices == (0,)
    assert slots.busy == {0, 1}


def test_cpu_jobs_take_no_gpu_and_are_hidden_from_them() -> None:
    """CPU jobs never wait for a GPU and see none (CUDA_VISIBLE_DEVICES is empty)."""
    slots = GpuSlots(_gpus(1))
    assert slots.try_assign(_job("g", gpus=1)) is not None
    cpu = slots.try_assign(_job("cpu"))
    assert cpu == GpuAssignment(visible=())
    assert cpu.env() == {"CUDA_VISIBLE_DEVICES": ""}


def test_no_gpu_mode_runs_gpu_jobs_unpinned() -> None:
    """Without GPUs a GPU job is not refused: it runs unpinned, with no memory to wait for."""
    slots = GpuSlots(())
    assert not slots.gpu_mode
    assignment = slots.try_assign(_job("g", gpus=2, vram_mb=10**6))
    assert assignment == GpuAssignment()
    assert assignment.env() == {}


@pytest.mark.parametrize(
    ("job", "match"),
    [
        (_job("many", gpus=3), "asks for 3 GPUs; this machine has 2"),
        (_job("big", gpus=1, vram_mb=9000), "asks for 9000 MiB on each of 1 GPU"),
    ],
)
def test_impossible_requests_are_refused_up_front(job: JobSpec, match: str) -> None:
    """More GPUs or more VRAM than exist is a GpuRequestError naming the job and the numbers."""
    with pytest.raises(GpuRequestError, match=match) as info:
        GpuSlots(_gpus(2)).try_assign(job)
    assert info.value.source == f"job {job.name!r}"


def test_vram_need_picks_a_gpu_large_enough() -> None:
    """On mixed GPUs a job needing 12 GiB gets the big one, even when it is not GPU 0."""
    small, big = _gpus(1, 8192)[0], _gpus(1, 16384)[0].model_copy(update={"index": 1})
    check_fits(_job("j", gpus=1, vram_mb=12000), [small, big])
    slots = GpuSlots([small, big])
    assignment = slots.try_assign(_job("j", gpus=1, vram_mb=12000))
    assert assignment is not None
    assert assignment.indices == (1,)
    assert slots.try_assign(_job("k", gpus=1, vram_mb=12000)) is None


def test_releasing_a_gpu_not_held_is_a_bug() -> None:
    """release() of an index that is not assigned raises ValueError."""
    with pytest.raises(ValueError, match=r"GPUs \[0\] are not assigned"):
        GpuSlots(_gpus(1)).release([0])


@settings(max_examples=100)
@given(
    count=st.integers(1, 4),
    ops=st.lists(st.tuples(st.booleans(), st.integers(1, 4)), max_size=30),
)
def test_property_never_over_assigns(count: int, ops: list[tuple[bool, int]]) -> None:
    """Whatever the order of assigns and releases, no GPU is held twice and none is lost."""
    slots = GpuSlots(_gpus(count))
    held: list[tuple[int, ...]] = []
    for assign, want in ops:
        if assign and want <= count:
            got = slots.try_assign(_job("j", gpus=want))
            if got is not None:
                held.append(got.indices)
        elif held:
            slots.release(held.pop(0))
        flat = [i for indices in held for i in indices]
        assert len(flat) == len(set(flat))
        assert set(flat) == slots.busy
        assert len(flat) <= count
