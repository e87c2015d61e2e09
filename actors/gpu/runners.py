"""Where job processes run: the runner interface, the local runner and the slot pool.

A *slot* is one place a process can run: a GPU on a node (or, without a GPU, one logical
slot of the CPU fallback), marked when it is the GPU that holds the LLM — a process placed
there runs under the VRAM lease. The dispatcher takes a free slot from the `SlotPool`,
asks its runner to run the task there and gives the slot back. `LocalRunner` runs the
process on this machine (`actors.gpu.runner.run_process`); `actors.gpu.ray_runner.RayRunner`
runs it as a Ray task on the slot's node. Both return a `ProcessOutcome`.
"""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

import anyio

from actors.gpu.runner import ProcessOutcome, ProgressEvent, run_process

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
    from pathlib import Path

    from actors.gpu.inventory import GpuInfo

__all__ = ["LocalRunner", "Runner", "Slot", "SlotPool", "Task", "local_slots"]


@dataclass(frozen=True)
class Slot:
    """One place a process can run."""

    key: str
    """Unique name, e.g. `local/gpu0`, `local/cpu1`, `<node id>/gpu1`."""
    node: str
    """The machine (host name locally, the Ray node id and address on Ray)."""
    gpu: int | None
    """The GPU index on that node; None on the CPU fallback (no GPU)."""
    llm: bool
    """The GPU that holds the LLM: a process placed here needs the VRAM lease."""
    label: str | None = None
    """How the audit trail names the GPU when not by index (`llm` on Ray)."""

    @property
    def gpu_label(self) -> str:
        """The GPU as the audit trail names it (`0`, `cpu`, `llm`)."""
        if self.label is not None:
            return self.label
        return "cpu" if self.gpu is None else str(self.gpu)


@dataclass(frozen=True)
class Task:
    """One process to run: a job, or one shard of it."""

    job: str
    argv: tuple[str, ...]
    cwd: Path
    env: Mapping[str, str]
    """The process's whole environment (this machine's, plus the job's additions)."""
    timeout_s: float
    shard: int = 0
    shards: int = 1
    state_dir: Path | None = None
    """The head's state directory (the Ray runner ships its inputs and outputs)."""
    outputs: tuple[Path, ...] = ()
    """Folders (inside the state directory) whose files the job writes, to bring back."""
    env_extra: Mapping[str, str] = field(default_factory=dict)
    """The job's own additions to the environment (a remote node has its own base)."""

    @property
    def label(self) -> str:
        """`shard 2/4` or `job` for the audit trail."""
        return f"shard {self.shard + 1}/{self.shards}" if self.shards > 1 else "job"


class Runner(Protocol):
    """Runs one task on one slot; the same interface locally and on Ray."""

    name: str
    """`local` or `ray`."""

    def slots(self) -> list[Slot]:
        """Every GPU slot (or logical CPU slot) tasks can be placed on, LLM's GPU marked."""
        ...

    async def run(
        self,
        task: Task,
        slot: Slot,
        *,
        grace_s: float,
        tail_bytes: int,
        on_progress: Callable[[ProgressEvent], Awaitable[None]],
        on_started: Callable[[int], Awaitable[None]],
        stop: anyio.Event,
    ) -> ProcessOutcome:
        """Run `task` on `slot` until it ends, times out or `stop` is set."""
        ...

    async def aclose(self) -> None:
        """Release what the runner holds (a Ray connection...)."""
        ...


def local_slots(gpus: Sequence[GpuInfo], *, cpu_slots: int, llm_gpu: int | None) -> list[Slot]:
    """This machine's slots: one per GPU, else `cpu_slots` logical ones (all under the lease).

    On the CPU fallback the jobs share the CPU and memory with the LLM, so every logical slot
    counts as the LLM's; with GPUs only GPU `llm_gpu` does (None: every GPU).
    """
    host = socket.gethostname()
    if not gpus:
        return [Slot(f"local/cpu{i}", host, None, llm=True) for i in range(max(1, cpu_slots))]
    return [
        Slot(f"local/gpu{g.index}", host, g.index, llm=llm_gpu is None or g.index == llm_gpu)
        for g in gpus
    ]


@dataclass
class LocalRunner:
    """Runs tasks as processes of this machine, pinned to the slot's GPU."""

    slot_list: list[Slot]
    name: str = "local"
    _env_base: dict[str, str] = field(default_factory=lambda: dict(os.environ))

    def slots(self) -> list[Slot]:
        """The slots given at construction."""
        return list(self.slot_list)

    async def run(
        self,
        task: Task,
        slot: Slot,
        *,
        grace_s: float,
        tail_bytes: int,
        on_progress: Callable[[ProgressEvent], Awaitable[None]],
        on_started: Callable[[int], Awaitable[None]],
        stop: anyio.Event,
    ) -> ProcessOutcome:
        """Run the task's process here (CUDA/HIP pinned to the slot's GPU)."""
        env = dict(task.env)
        if slot.gpu is not None:
            env["CUDA_VISIBLE_DEVICES"] = env["HIP_VISIBLE_DEVICES"] = str(slot.gpu)
        return await run_process(
            task.argv,
            cwd=task.cwd,
            env=env,
            timeout_s=task.timeout_s,
            grace_s=grace_s,
            tail_bytes=tail_bytes,
            on_progress=on_progress,
            on_started=on_started,
            stop=stop,
        )

    async def aclose(self) -> None:
        """Nothing to release."""


class SlotPool:
    """Free slots; hands out one at a time, other than the LLM's GPU first."""

    def __init__(self, slots: Iterable[Slot]) -> None:
        self._all = list(slots)
        self._free = list(self._all)
        self._changed = anyio.Condition()

    @property
    def size(self) -> int:
        """Every slot, free or not."""
        return len(self._all)

    def free_count(self) -> int:
        """Slots free now."""
        return len(self._free)

    def replace(self, slots: Iterable[Slot]) -> None:
        """A new set of slots (nodes joined or left); busy slots stay busy until released,
        a slot that is gone is not handed out again, a new one is free."""
        busy = {s.key for s in self._all} - {s.key for s in self._free}
        self._all = list(slots)
        self._free = [s for s in self._all if s.key not in busy]

    async def acquire(self, avoid: Iterable[str] = ()) -> Slot:
        """A free slot, waiting for one; the LLM's GPU last.

        A slot in `avoid` (keys: where a retried shard failed) is taken only when every slot
        is in `avoid`; otherwise this waits for another one to come free.
        """
        avoided = set(avoid)
        async with self._changed:
            while True:
                others_exist = any(s.key not in avoided for s in self._all)
                usable = [s for s in self._free if s.key not in avoided or not others_exist]
                if usable:
                    break
                await self._changed.wait()
            chosen = min(usable, key=lambda s: s.llm)
            self._free.remove(chosen)
            return chosen

    async def release(self, slot: Slot) -> None:
        """Give a slot back (shielded: it must come back even when the caller is cancelled)."""
        with anyio.CancelScope(shield=True):
            async with self._changed:
                if any(s.key == slot.key for s in self._all) and slot not in self._free:
                    self._free.append(slot)
                self._changed.notify_all()
