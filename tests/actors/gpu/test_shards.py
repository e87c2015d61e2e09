"""Sharding, pure: range splits, shard counts, summed progress, slot choice, survivor merge."""

from __future__ import annotations

import itertools

import anyio
import pytest
from hypothesis import given
from hypothesis import strategies as st

from actors.gpu.runners import Slot, SlotPool
from actors.gpu.shards import ShardProgress, shard_count, split_range
from messages.artifacts import Survivor, SurvivorSet
from pipeline.params import SieveParams
from pipeline.sieve import _sort_key, merge_survivor_sets


@given(
    start=st.integers(0, 2**40),
    size=st.integers(1, 2**33),
    count=st.integers(1, 64),
)
def test_split_range_tiles_the_range_evenly(start: int, size: int, count: int) -> None:
    """The shards are contiguous, cover exactly [start, end) and differ in size by at most 1."""
    count = min(count, size)
    shards = split_range(start, start + size, count)
    assert len(shards) == count
    assert shards[0][0] == start
    assert shards[-1][1] == start + size
    assert all(a[1] == b[0] for a, b in itertools.pairwise(shards))
    sizes = [hi - lo for lo, hi in shards]
    assert min(sizes) >= 1
    assert max(sizes) - min(sizes) <= 1


@pytest.mark.parametrize(("start", "end", "count"), [(5, 5, 1), (0, 3, 4), (0, 3, 0)])
def test_split_range_refuses_what_cannot_be_split(start: int, end: int, count: int) -> None:
    """An empty range, or more shards than values (or none), is a ValueError."""
    with pytest.raises(ValueError, match="cannot split"):
        split_range(start, end, count)


@given(
    size=st.integers(0, 2**34),
    slots=st.integers(0, 64),
    min_size=st.integers(1, 2**20),
    max_shards=st.integers(0, 32),
)
def test_shard_count_respects_slots_min_size_and_cap(
    size: int, slots: int, min_size: int, max_shards: int
) -> None:
    """One shard per slot at most, none below min_size (unless there is only one), capped."""
    count = shard_count(size, slots, min_size=min_size, max_shards=max_shards)
    assert count >= 1
    assert count <= max(1, slots)
    if max_shards:
        assert count <= max_shards
    if count > 1:
        assert size // count >= min_size


def test_progress_adds_up_and_a_retry_starts_again() -> None:
    """The summed progress counts unreported shards at the default total; a retry resets one."""
    progress = ShardProgress(3, default_total=10)
    assert progress.total() == (0, 30)
    assert progress.update(0, 5, 10) == (5, 30)
    assert progress.update(1, 10, 10) == (15, 30)
    assert progress.restart(0) == (10, 30)
    assert progress.update(2, 4, 8) == (14, 28)
    assert progress.finish(2) == (18, 28)


@pytest.mark.anyio
async def test_slot_pool_avoids_failed_slots_and_the_llm_gpu() -> None:
    """A retry gets a slot it has not failed on; the LLM's GPU is handed out last."""
    llm = Slot("n/gpu0", "n", 0, llm=True)
    other = Slot("n/gpu1", "n", 1, llm=False)
    third = Slot("n/gpu2", "n", 2, llm=False)
    pool = SlotPool([llm, other, third])
    assert await pool.acquire() == other
    await pool.release(other)
    assert await pool.acquire(avoid=["n/gpu1"]) == third
    # Another slot beats the one it failed on, even the LLM's GPU (then under the lease)...
    assert await pool.acquire(avoid=["n/gpu1"]) == llm
    # ...and with only the failed one free, a retry waits for another to come free.
    with anyio.move_on_after(0.05) as waited:
        await pool.acquire(avoid=["n/gpu1"])
    assert waited.cancelled_caught
    await pool.release(third)
    assert await pool.acquire(avoid=["n/gpu1"]) == third
    # When it failed everywhere, any slot will do.
    assert await pool.acquire(avoid=["n/gpu0", "n/gpu1", "n/gpu2"]) == other
    assert pool.free_count() == 0


def _set(survivors: list[Survivor], lo: int, hi: int, **changes: object) -> SurvivorSet:
    fields: dict[str, object] = {
        "mod": 1000,
        "window": 8,
        "threshold": 8,
        "families": ("lcg32",),
        "skip_min": 0,
        "skip_max": 0,
        "seed_start": lo,
        "seed_end": hi,
        "anchors": (0, 5),
        "n_draws": 40,
        "last_draw_id": "d39",
        "history_fingerprint": "f",
        "truncated": False,
        "survivors": tuple(survivors),
    }
    fields.update(changes)
    return SurvivorSet.model_validate(fields)


survivor = st.builds(
    Survivor,
    family=st.just("lcg32"),
    skip=st.just(0),
    seed=st.integers(0, 999),
    anchor=st.sampled_from([0, 5]),
    matches=st.integers(5, 8),
)


@given(
    found=st.lists(survivor, max_size=60, unique_by=lambda s: (s.seed, s.anchor)),
    limit=st.integers(1, 30),
    cuts=st.sets(st.integers(1, 999), max_size=5),
)
def test_merge_equals_the_unsharded_top_k(
    found: list[Survivor], limit: int, cuts: set[int]
) -> None:
    """Shards that each kept their best `limit` merge into exactly the unsharded best `limit`."""
    params = SieveParams(families="lcg32", seed_end=1000, max_survivors=limit)
    bounds = [0, *sorted(cuts), 1000]
    sets = []
    for lo, hi in itertools.pairwise(bounds):
        mine = sorted((s for s in found if lo <= s.seed < hi), key=_sort_key)
        sets.append(_set(mine[:limit], lo, hi, truncated=len(mine) > limit))
    merged = merge_survivor_sets(sets, params)
    expected = sorted(found, key=_sort_key)
    assert list(merged.survivors) == expected[:limit]
    assert merged.truncated == (len(found) > limit)
    assert (merged.seed_start, merged.seed_end) == (0, 1000)


@pytest.mark.parametrize(
    ("change", "match"),
    [
        ({"window": 6}, "window 6 != 8"),
        ({"families": ("minstd",)}, "families"),
        ({"history_fingerprint": "other"}, "history_fingerprint"),
        ({"seed_start": 600}, "do not tile"),
    ],
)
def test_shards_that_do_not_belong_together_do_not_merge(
    change: dict[str, object], match: str
) -> None:
    """Another window, family or history, or a gap in the ranges, is a ValueError naming it."""
    params = SieveParams(families="lcg32", seed_end=1000)
    first = _set([], 0, 500)
    second = _set([], 500, 1000, **change)
    with pytest.raises(ValueError, match=match):
        merge_survivor_sets([first, second], params)
