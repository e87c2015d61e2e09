"""GPU inventory: no-GPU detection here, NVML logic through stand-ins, bounded memory waits."""

from __future__ import annotations

import types
from typing import Any

import anyio
import pytest
import structlog
import trio.testing

from actors.gpu.inventory import (
    MIB,
    FakeInventory,
    GpuInfo,
    GpuInventory,
    GpuInventoryError,
    NoGpuInventory,
    NvmlInventory,
    detect_inventory,
    wait_for_free_memory,
)


def _mock_clock() -> pytest.MarkDecorator:
    """Run the test once, on trio with a virtual clock that jumps whenever all tasks sleep."""
    return pytest.mark.parametrize(
        "anyio_backend",
        [
            pytest.param(
                ("trio", {"clock": trio.testing.MockClock(autojump_threshold=0)}),
                id="trio-mockclock",
            )
        ],
    )


class FakeNvmlError(Exception):
    """Stand-in for pynvml.NVMLError."""


def _fake_nvml(
    count: int = 2, *, init_error: bool = False, util_error: bool = False
) -> types.SimpleNamespace:
    """A stand-in for the pynvml module with `count` GPUs of 8 GiB, 6 GiB free."""
    calls: list[str] = []

    def init() -> None:
        calls.append("init")
        if init_error:
            raise FakeNvmlError("NVML Shared Library Not Found")

    def handle(index: int) -> int:
        if not 0 <= index < count:
            raise FakeNvmlError("Invalid Argument")
        return index

    def util(h: int) -> types.SimpleNamespace:
        if util_error:
            raise FakeNvmlError("Not Supported")
        return types.SimpleNamespace(gpu=10 * (h + 1), memory=5)

    return types.SimpleNamespace(
        calls=calls,
        NVMLError=FakeNvmlError,
        nvmlInit=init,
        nvmlShutdown=lambda: calls.append("shutdown"),
        nvmlDeviceGetCount=lambda: count,
        nvmlDeviceGetHandleByIndex=handle,
        nvmlDeviceGetName=lambda h: b"Fake A100" if h == 0 else "Fake H100",
        nvmlDeviceGetMemoryInfo=lambda h: types.SimpleNamespace(
            total=8192 * MIB, free=6144 * MIB, used=2048 * MIB
        ),
        nvmlDeviceGetUtilizationRates=util,
    )


def test_this_machine_has_no_gpu_and_says_so_in_one_line() -> None:
    """Here (no driver) detection returns NoGpuInventory and logs one `gpu.none` line."""
    with structlog.testing.capture_logs() as logs:
        inventory = detect_inventory()
    assert isinstance(inventory, NoGpuInventory)
    assert inventory.gpus() == ()
    assert "NVML" in inventory.reason
    assert [entry["event"] for entry in logs] == ["gpu.none"]
    assert logs[0]["reason"] == inventory.reason
    with pytest.raises(GpuInventoryError, match="GPU 0 does not exist: no GPU mode"):
        inventory.free_bytes(0)


def test_missing_library_is_no_gpu_mode() -> None:
    """Without nvidia-ml-py the reason says it is not installed."""

    def loader() -> Any:
        raise ImportError("No module named 'pynvml'")

    with structlog.testing.capture_logs() as logs:
        inventory = detect_inventory(loader=loader)
    assert isinstance(inventory, NoGpuInventory)
    assert "not installed" in inventory.reason
    assert len(logs) == 1


def test_driver_missing_and_zero_gpus_are_no_gpu_mode() -> None:
    """An NVML init failure or zero GPUs both give no-GPU mode (NVML shut down again)."""
    broken = _fake_nvml(init_error=True)
    inventory = detect_inventory(loader=lambda: broken)
    assert isinstance(inventory, NoGpuInventory)
    assert "Shared Library Not Found" in inventory.reason
    empty = _fake_nvml(count=0)
    inventory = detect_inventory(loader=lambda: empty)
    assert isinstance(inventory, NoGpuInventory)
    assert inventory.reason == "NVML found no GPU"
    assert empty.calls == ["init", "shutdown"]


def test_nvml_inventory_reads_gpus_through_the_library() -> None:
    """With NVML present, gpus() and free_bytes() report what the library says."""
    nvml = _fake_nvml(count=2)
    with structlog.testing.capture_logs() as logs:
        inventory = detect_inventory(loader=lambda: nvml)
    assert isinstance(inventory, NvmlInventory)
    assert isinstance(inventory, GpuInventory)
    assert [entry["event"] for entry in logs] == ["gpu.found"]
    assert inventory.gpus() == (
        GpuInfo(
            index=0,
            name="Fake A100",
            total_bytes=8192 * MIB,
            free_bytes=6144 * MIB,
            used_bytes=2048 * MIB,
            utilization_percent=10,
        ),
        GpuInfo(
            index=1,
            name="Fake H100",
            total_bytes=8192 * MIB,
            free_bytes=6144 * MIB,
            used_bytes=2048 * MIB,
            utilization_percent=20,
        ),
    )
    assert inventory.free_bytes(1) == 6144 * MIB
    with pytest.raises(GpuInventoryError, match=r"GPU 2 does not exist; this machine has 2"):
        inventory.free_bytes(2)
    inventory.close()
    assert nvml.calls == ["init", "shutdown"]


def test_utilisation_not_supported_is_none() -> None:
    """A board that does not report utilisation gives None, not an error."""
    inventory = NvmlInventory(_fake_nvml(count=1, util_error=True))
    assert inventory.gpus()[0].utilization_percent is None


def test_fake_inventory_scripts_and_bounds() -> None:
    """The fake consumes scripted values in order, keeps the last, refuses impossible ones."""
    inventory = FakeInventory.with_gpus(1, total_mb=100, free_mb=10)
    inventory.script_free(0, [20 * MIB, 50 * MIB])
    assert [inventory.free_bytes(0) for _ in range(4)] == [20 * MIB, 50 * MIB, 50 * MIB, 50 * MIB]
    assert inventory.gpus()[0].used_bytes == 50 * MIB
    assert inventory.polls == {0: 4}
    with pytest.raises(ValueError, match="must lie in 0"):
        inventory.set_free(0, 101 * MIB)
    with pytest.raises(GpuInventoryError, match="GPU 3 does not exist"):
        inventory.free_bytes(3)


@pytest.mark.anyio
@_mock_clock()
async def test_wait_returns_once_memory_is_freed_after_the_llm_exits() -> None:
    """Free memory rises only after an event (the LLM exits): the wait then succeeds."""
    inventory = FakeInventory.with_gpus(1, total_mb=8192, free_mb=512)
    llm_exited = anyio.Event()
    result: list[bool] = []

    async with anyio.create_task_group() as tg:

        async def waiter() -> None:
            result.append(
                await wait_for_free_memory(inventory, 0, 6000 * MIB, deadline_s=30.0, poll_s=0.5)
            )

        tg.start_soon(waiter)
        await anyio.sleep(7.0)  # the LLM takes 7 (virtual) seconds to unload
        assert result == []
        inventory.set_free(0, 7000 * MIB)
        llm_exited.set()

    assert result == [True]
    assert 7.0 <= anyio.current_time() <= 7.5
    # Polled every 0.5 s: once at 0, then up to 7.5 s, not hammering NVML.
    assert 15 <= inventory.polls[0] <= 17


@pytest.mark.anyio
@_mock_clock()
async def test_wait_fails_cleanly_at_the_deadline() -> None:
    """Memory that never frees: False exactly at the deadline, with one log line."""
    inventory = FakeInventory.with_gpus(1, total_mb=8192, free_mb=512)
    start = anyio.current_time()
    with structlog.testing.capture_logs() as logs:
        ok = await wait_for_free_memory(inventory, 0, 6000 * MIB, deadline_s=10.0, poll_s=3.0)
    assert ok is False
    assert anyio.current_time() - start == pytest.approx(10.0)
    # Checks at 0, 3, 6, 9 and the deadline itself (10).
    assert inventory.polls[0] == 5
    assert [entry["event"] for entry in logs] == ["gpu.memory_wait_expired"]


@pytest.mark.anyio
async def test_wait_returns_at_once_when_memory_is_free() -> None:
    """Enough free memory: True on the first check, no sleep."""
    inventory = FakeInventory.with_gpus(2, total_mb=1024)
    assert await wait_for_free_memory(inventory, 1, 1024 * MIB, deadline_s=0, poll_s=1)
    assert inventory.polls == {0: 0, 1: 1}


@pytest.mark.anyio
async def test_wait_rejects_bad_arguments_and_unknown_gpu() -> None:
    """A non-positive poll interval is a ValueError; an unknown GPU propagates its error."""
    inventory = FakeInventory.with_gpus(1, total_mb=1024)
    with pytest.raises(ValueError, match="poll_s=0 must be > 0"):
        await wait_for_free_memory(inventory, 0, 1, deadline_s=1, poll_s=0)
    with pytest.raises(GpuInventoryError):
        await wait_for_free_memory(NoGpuInventory("test"), 0, 1, deadline_s=1, poll_s=1)
