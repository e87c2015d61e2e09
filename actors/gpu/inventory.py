"""GPU inventory: which GPUs exist and how much memory they have free.

The only module that imports `pynvml` (package nvidia-ml-py). Without the library or the
driver the dispatcher runs in "no GPU" mode: `detect_inventory()` logs one line (`gpu.none`
with the reason) and returns a `NoGpuInventory`. `FakeInventory` lets tests script free
memory, e.g. a GPU whose memory frees up only after the LLM worker exits.
"""

from __future__ import annotations

from collections import deque
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

import anyio
import structlog
from pydantic import Field

from messages.base import Model
from messages.errors import WatcherError

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Sequence

__all__ = [
    "MIB",
    "FakeInventory",
    "GpuInfo",
    "GpuInventory",
    "GpuInventoryError",
    "NoGpuInventory",
    "NvmlInventory",
    "detect_inventory",
    "wait_for_free_memory",
]

_log = structlog.get_logger("actors.gpu.inventory")

MIB = 1024 * 1024
"""Bytes in a MiB: `vram_mb` in the registry counts MiB, NVML counts bytes."""


class GpuInventoryError(WatcherError):
    """Raised when a GPU index does not exist or NVML fails while reading a GPU."""


class GpuInfo(Model):
    """One GPU as NVML sees it at the moment of the query."""

    index: int = Field(ge=0)
    name: str
    total_bytes: int = Field(ge=0)
    free_bytes: int = Field(ge=0)
    used_bytes: int = Field(ge=0)
    utilization_percent: int | None = Field(default=None, ge=0, le=100)
    """GPU busy percentage over the last sample period; None when the driver does not say."""


@runtime_checkable
class GpuInventory(Protocol):
    """What the dispatcher needs to know about GPUs."""

    def gpus(self) -> tuple[GpuInfo, ...]:
        """Every GPU, in index order (empty in no-GPU mode)."""
        ...

    def free_bytes(self, index: int) -> int:
        """Free memory of GPU `index` now; raises GpuInventoryError for an unknown index."""
        ...


class NoGpuInventory:
    """The inventory of a machine without a usable GPU; says why."""

    def __init__(self, reason: str) -> None:
        self.reason = reason

    def gpus(self) -> tuple[GpuInfo, ...]:
        """No GPUs."""
        return ()

    def free_bytes(self, index: int) -> int:
        """Always raises: there is no GPU to ask about."""
        msg = f"GPU {index} does not exist: no GPU mode ({self.reason})"
        raise GpuInventoryError(msg)


class NvmlInventory:
    """The inventory read from NVML; `nvml` is the initialised `pynvml` module (or a stand-in)."""

    def __init__(self, nvml: Any) -> None:
        self._nvml = nvml
        self._count = int(nvml.nvmlDeviceGetCount())

    def gpus(self) -> tuple[GpuInfo, ...]:
        """Every GPU with its memory and utilisation now."""
        return tuple(self._info(index) for index in range(self._count))

    def free_bytes(self, index: int) -> int:
        """Free memory of GPU `index` in bytes."""
        self._check(index)
        try:
            handle = self._nvml.nvmlDeviceGetHandleByIndex(index)
            return int(self._nvml.nvmlDeviceGetMemoryInfo(handle).free)
        except self._nvml.NVMLError as exc:
            msg = f"NVML could not read the memory of GPU {index}: {exc}"
            raise GpuInventoryError(msg) from exc

    def close(self) -> None:
        """Release NVML (nvmlShutdown); the inventory must not be used afterwards."""
        try:
            self._nvml.nvmlShutdown()
        except self._nvml.NVMLError as exc:
            _log.warning("gpu.nvml_shutdown_failed", error=str(exc))

    def _check(self, index: int) -> None:
        if not 0 <= index < self._count:
            msg = (
                f"GPU {index} does not exist; this machine has {self._count} (0..{self._count - 1})"
            )
            raise GpuInventoryError(msg)

    def _info(self, index: int) -> GpuInfo:
        nvml = self._nvml
        try:
            handle = nvml.nvmlDeviceGetHandleByIndex(index)
            name = nvml.nvmlDeviceGetName(handle)
            memory = nvml.nvmlDeviceGetMemoryInfo(handle)
        except nvml.NVMLError as exc:
            msg = f"NVML could not read GPU {index}: {exc}"
            raise GpuInventoryError(msg) from exc
        try:
            utilization: int | None = int(nvml.nvmlDeviceGetUtilizationRates(handle).gpu)
        except nvml.NVMLError:
            # Some boards (and MIG slices) do not report utilisation: unknown, not an error.
            utilization = None
        if isinstance(name, bytes):  # nvidia-ml-py < 11.5 returns bytes
            name = name.decode("utf-8", errors="replace")
        return GpuInfo(
            index=index,
            name=str(name),
            total_bytes=int(memory.total),
            free_bytes=int(memory.free),
            used_bytes=int(memory.used),
            utilization_percent=utilization,
        )


class FakeInventory:
    """A scripted inventory for tests: fixed GPUs whose free memory the test controls."""

    def __init__(self, gpus: Sequence[GpuInfo]) -> None:
        self._gpus = {gpu.index: gpu for gpu in gpus}
        self._scripts: dict[int, deque[int]] = {}
        self.polls: dict[int, int] = dict.fromkeys(self._gpus, 0)
        """How many times free_bytes() was called, per GPU."""

    @classmethod
    def with_gpus(cls, count: int, *, total_mb: int, free_mb: int | None = None) -> FakeInventory:
        """`count` identical GPUs named "Fake GPU i" with `total_mb` MiB, `free_mb` free."""
        free = total_mb if free_mb is None else free_mb
        return cls(
            [
                GpuInfo(
                    index=i,
                    name=f"Fake GPU {i}",
                    total_bytes=total_mb * MIB,
                    free_bytes=free * MIB,
                    used_bytes=(total_mb - free) * MIB,
                    utilization_percent=0,
                )
                for i in range(count)
            ]
        )

    def gpus(self) -> tuple[GpuInfo, ...]:
        """Every GPU with its current scripted free memory."""
        return tuple(self._gpus[i] for i in sorted(self._gpus))

    def free_bytes(self, index: int) -> int:
        """Free memory of GPU `index`; consumes the next scripted value if there is one."""
        gpu = self._gpu(index)
        self.polls[index] += 1
        script = self._scripts.get(index)
        if script:
            self._set(gpu, script.popleft())
        return self._gpus[index].free_bytes

    def set_free(self, index: int, free_bytes: int) -> None:
        """Set the free memory of GPU `index` from now on (drops any pending script)."""
        self._scripts.pop(index, None)
        self._set(self._gpu(index), free_bytes)

    def script_free(self, index: int, values: Iterable[int]) -> None:
        """Each later free_bytes(index) returns the next value; the last one then stays."""
        self._gpu(index)
        self._scripts[index] = deque(values)

    def _gpu(self, index: int) -> GpuInfo:
        try:
            return self._gpus[index]
        except KeyError:
            msg = f"GPU {index} does not exist in the fake inventory ({len(self._gpus)} GPUs)"
            raise GpuInventoryError(msg) from None

    def _set(self, gpu: GpuInfo, free_bytes: int) -> None:
        if not 0 <= free_bytes <= gpu.total_bytes:
            msg = f"free_bytes={free_bytes} must lie in 0..{gpu.total_bytes} for GPU {gpu.index}"
            raise ValueError(msg)
        self._gpus[gpu.index] = gpu.model_copy(
            update={"free_bytes": free_bytes, "used_bytes": gpu.total_bytes - free_bytes}
        )


def _import_pynvml() -> Any:
    # Imported on use: the module must load (and say "no GPU") where nvidia-ml-py is absent.
    import pynvml

    return pynvml


def detect_inventory(*, loader: Callable[[], Any] | None = None) -> GpuInventory:
    """NVML's inventory when the library, the driver and a GPU are there; else no-GPU mode.

    Logs exactly one line: `gpu.found` (count and names) or `gpu.none` (the reason).
    `loader` returns the pynvml module; tests pass a stand-in.
    """
    try:
        nvml = (loader or _import_pynvml)()
    except ImportError as exc:
        return _none(f"nvidia-ml-py (pynvml) is not installed ({exc})")
    try:
        nvml.nvmlInit()
    except (nvml.NVMLError, OSError) as exc:
        return _none(f"NVML is unavailable: {exc}")
    try:
        inventory = NvmlInventory(nvml)
        gpus = inventory.gpus()
    except (nvml.NVMLError, GpuInventoryError) as exc:
        nvml.nvmlShutdown()
        return _none(f"NVML could not list the GPUs: {exc}")
    if not gpus:
        inventory.close()
        return _none("NVML found no GPU")
    _log.info("gpu.found", count=len(gpus), names=[gpu.name for gpu in gpus])
    return inventory


def _none(reason: str) -> NoGpuInventory:
    _log.info("gpu.none", reason=reason)
    return NoGpuInventory(reason)


async def wait_for_free_memory(
    inventory: GpuInventory,
    index: int,
    need_bytes: int,
    *,
    deadline_s: float,
    poll_s: float,
) -> bool:
    """Poll until GPU `index` has `need_bytes` free (True) or `deadline_s` passes (False).

    The last check happens at the deadline itself. Uses anyio's clock, so it runs under
    trio's MockClock. Errors of the inventory (unknown GPU, NVML failure) propagate.
    """
    if poll_s <= 0 or deadline_s < 0:
        msg = f"poll_s={poll_s!r} must be > 0 and deadline_s={deadline_s!r} must be >= 0"
        raise ValueError(msg)
    end = anyio.current_time() + deadline_s
    while True:
        free = inventory.free_bytes(index)
        if free >= need_bytes:
            return True
        left = end - anyio.current_time()
        if left <= 0:
            _log.info(
                "gpu.memory_wait_expired",
                gpu=index,
                need_bytes=need_bytes,
                free_bytes=free,
                deadline_s=deadline_s,
            )
            return False
        await anyio.sleep(min(poll_s, left))
