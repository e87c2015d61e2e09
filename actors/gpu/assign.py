"""GPU assignment, pure: which GPUs a job may use, and whether it can ever fit.

With N GPUs up to N single-GPU jobs run at once, each pinned with `CUDA_VISIBLE_DEVICES`. A
job asking for more GPUs, or more memory per GPU, than the machine has is refused up front
rather than left waiting forever. CPU jobs take no GPU; on a GPU machine they are pinned to
none so that they cannot take GPU memory without a lease. In no-GPU mode (no NVML) GPU jobs
run unpinned on the CPU fallback of the array-module helper.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from pydantic import Field

from actors.gpu.inventory import MIB
from messages.base import Model
from messages.errors import InputError

if TYPE_CHECKING:
    from collections.abc import Iterable, Sequence

    from actors.gpu.inventory import GpuInfo
    from actors.gpu.spec import JobSpec

__all__ = ["GpuAssignment", "GpuRequestError", "GpuSlots", "check_fits"]


class GpuRequestError(InputError):
    """Raised when a job asks for more GPUs or more memory per GPU than the machine has."""


class GpuAssignment(Model):
    """The GPUs given to one job and how its environment pins them."""

    indices: tuple[int, ...] = ()
    """GPUs the job holds (empty for CPU jobs and in no-GPU mode)."""
    visible: tuple[int, ...] | None = None
    """Value for CUDA_VISIBLE_DEVICES; None leaves the variable alone (no-GPU mode)."""
    vram_bytes: int = Field(default=0, ge=0)
    """Free memory to wait for on each assigned GPU before starting."""

    def env(self) -> dict[str, str]:
        """The environment additions that pin the job (empty in no-GPU mode)."""
        if self.visible is None:
            return {}
        return {"CUDA_VISIBLE_DEVICES": ",".join(str(i) for i in self.visible)}


def _usable(spec: JobSpec, gpus: Sequence[GpuInfo]) -> list[int]:
    need = spec.vram_mb * MIB
    return [gpu.index for gpu in gpus if gpu.total_bytes >= need]


def check_fits(spec: JobSpec, gpus: Sequence[GpuInfo]) -> None:
    """Raise GpuRequestError when `spec` can never run on `gpus` (no-GPU mode always fits)."""
    if not spec.needs_gpu or not gpus:
        return
    source = f"job {spec.name!r}"
    if spec.gpus > len(gpus):
        raise GpuRequestError(
            source,
            f"asks for {spec.gpus} GPUs; this machine has {len(gpus)}",
            ", ".join(gpu.name for gpu in gpus),
        )
    usable = _usable(spec, gpus)
    if len(usable) < spec.gpus:
        largest = max(gpu.total_bytes for gpu in gpus) // MIB
        raise GpuRequestError(
            source,
            f"asks for {spec.vram_mb} MiB on each of {spec.gpus} GPU(s); "
            f"only {len(usable)} GPU(s) have that much memory",
            f"largest: {largest} MiB",
        )


class GpuSlots:
    """Which GPUs are taken right now; hands out free ones, lowest index first."""

    def __init__(self, gpus: Sequence[GpuInfo]) -> None:
        self._gpus = tuple(gpus)
        self._busy: set[int] = set()

    @property
    def busy(self) -> frozenset[int]:
        """Indices of the GPUs held by running jobs."""
        return frozenset(self._busy)

    @property
    def gpu_mode(self) -> bool:
        """False in no-GPU mode (no GPU was found)."""
        return bool(self._gpus)

    def try_assign(self, spec: JobSpec) -> GpuAssignment | None:
        """An assignment for `spec` now, or None when its GPUs are busy (try again later).

        Raises:
            GpuRequestError: the job can never fit on this machine.
        """
        check_fits(spec, self._gpus)
        if not self._gpus:
            return GpuAssignment(vram_bytes=0)
        if not spec.needs_gpu:
            return GpuAssignment(visible=())
        free = [i for i in _usable(spec, self._gpus) if i not in self._busy]
        if len(free) < spec.gpus:
            return None
        chosen = tuple(free[: spec.gpus])
        self._busy.update(chosen)
        return GpuAssignment(indices=chosen, visible=chosen, vram_bytes=spec.vram_mb * MIB)

    def release(self, indices: Iterable[int]) -> None:
        """Give GPUs back; releasing a GPU that is not held is a bug and raises ValueError."""
        wanted = set(indices)
        if not wanted <= self._busy:
            msg = f"GPUs {sorted(wanted - self._busy)} are not assigned; cannot release them"
            raise ValueError(msg)
        self._busy -= wanted
