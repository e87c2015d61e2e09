"""Sharding, pure: a job's processes (one, or one per shard) and their summed progress.

`plan_pieces` is what the dispatcher runs and what `--dry-run` prints: the same function,
so the plan shows the exact argv of every process.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Mapping
    from pathlib import Path

    from pydantic import BaseModel

    from actors.gpu.registry import JobRegistry

__all__ = ["Piece", "ShardProgress", "plan_pieces", "shard_count", "split_range"]


@dataclass
class Piece:
    """One process of a job: the whole job, or one of its shards."""

    index: int
    argv: tuple[str, ...]
    result_path: Path
    state_dir: Path | None
    """The shard's own state folder (None: the job runs on the real state directory)."""
    bounds: tuple[int, int] | None = None
    """The shard's `[start, end)` (None: not a shard)."""
    attempts: int = 0
    result: BaseModel | None = None
    failed_on: list[str] = field(default_factory=list)
    """Slots it failed on (a retry goes elsewhere when it can)."""


def plan_pieces(
    registry: JobRegistry,
    job: str,
    params: Mapping[str, Any],
    *,
    state_dir: Path,
    run_dir: Path,
    history: Path | None,
    seed: int | None,
    fingerprint: str | None,
    free_slots: int,
    max_shards: int = 0,
) -> list[Piece]:
    """The processes `job` runs as: one, or one per shard of its range over `free_slots`.

    Raises:
        UnknownJobError, JobParamsError, JobSpecError: as `JobRegistry.build_argv`.
    """
    spec = registry.get(job)
    validated = registry.validate_params(job, params)
    ranges: list[tuple[int, int]] = []
    if spec.shard is not None and spec.needs_gpu:
        lo, hi = int(getattr(validated, spec.shard.start)), int(getattr(validated, spec.shard.end))
        count = shard_count(
            hi - lo, free_slots, min_size=spec.shard.min_size, max_shards=max_shards
        )
        if count > 1:
            ranges = split_range(lo, hi, count)
    common: dict[str, Any] = {
        "state_dir": state_dir,
        "history_path": history,
        "seed": seed,
        "history_fingerprint": fingerprint,
    }
    if not ranges:
        result = run_dir / "result.json"
        argv = registry.build_argv(job, params, result_path=result, **common)
        return [Piece(0, tuple(argv), result, None)]
    assert spec.shard is not None
    pieces = []
    for index, (lo, hi) in enumerate(ranges):
        shard_dir = run_dir / f"shard-{index}"
        result = shard_dir / "result.json"
        argv = registry.build_argv(
            job,
            {**params, spec.shard.start: lo, spec.shard.end: hi},
            result_path=result,
            job_state_dir=shard_dir,
            **common,
        )
        pieces.append(Piece(index, tuple(argv), result, shard_dir, (lo, hi)))
    return pieces


def shard_count(size: int, slots: int, *, min_size: int, max_shards: int = 0) -> int:
    """How many shards a range of `size` values gets on `slots` free slots.

    One per slot, but none smaller than `min_size` (a shard's process start would dominate)
    and at most `max_shards` when that is > 0; always at least 1.
    """
    if size <= 0:
        return 1
    count = max(1, slots)
    count = min(count, max(1, size // max(1, min_size)))
    if max_shards > 0:
        count = min(count, max_shards)
    return max(1, min(count, size))


def split_range(start: int, end: int, count: int) -> list[tuple[int, int]]:
    """`[start, end)` as `count` contiguous, non-empty sub-ranges differing by at most 1.

    Raises:
        ValueError: an empty range, or `count` outside 1..(end - start).
    """
    size = end - start
    if size <= 0:
        msg = f"cannot split the empty range [{start}, {end})"
        raise ValueError(msg)
    if not 1 <= count <= size:
        msg = f"cannot split [{start}, {end}) ({size} values) into {count} shards"
        raise ValueError(msg)
    base, extra = divmod(size, count)
    out: list[tuple[int, int]] = []
    lo = start
    for index in range(count):
        hi = lo + base + (1 if index < extra else 0)
        out.append((lo, hi))
        lo = hi
    return out


@dataclass
class ShardProgress:
    """The latest (done, total) of each shard; their sum is the step's one progress bar.

    A shard that has not reported yet counts as (0, `default_total`), so the total does not
    jump up when a late shard first reports; a retried shard starts again from 0.
    """

    shards: int
    default_total: int = 1
    _latest: dict[int, tuple[int, int]] = field(default_factory=dict)

    def update(self, shard: int, done: int, total: int) -> tuple[int, int]:
        """Record shard `shard`'s progress; return the summed (done, total)."""
        self._latest[shard] = (done, total)
        return self.total()

    def restart(self, shard: int) -> tuple[int, int]:
        """Shard `shard` is retried: its progress goes back to 0 of its last total."""
        _, total = self._latest.get(shard, (0, self.default_total))
        self._latest[shard] = (0, total)
        return self.total()

    def finish(self, shard: int) -> tuple[int, int]:
        """Shard `shard` is done (it printed no last line): all of its total counts as done."""
        _, total = self._latest.get(shard, (0, self.default_total))
        self._latest[shard] = (total, total)
        return self.total()

    def total(self) -> tuple[int, int]:
        """The summed (done, total) over every shard."""
        done = total = 0
        for index in range(self.shards):
            d, t = self._latest.get(index, (0, self.default_total))
            done += d
            total += t
        return done, total
