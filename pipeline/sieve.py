"""Step 1, sieve / window optimizer: seeds of a range that reproduce a window of draws.

`python -m pipeline.sieve --state-dir DIR --result-json PATH --history H [parameters]` writes
`artifacts/survivors.json` (a SurvivorSet) and a SieveResult.
"""

from __future__ import annotations

import sys
import time
from typing import TYPE_CHECKING

import numpy as np

from messages.artifacts import FamilyStats, SieveResult, Survivor, SurvivorSet
from pipeline.cli import JobContext, run_job
from pipeline.files import read_model, write_model
from pipeline.jobs import JOBS
from pipeline.prng import FAMILIES
from pipeline.seed_search import ChunkSieve, choose_anchors, expected_false_positives, make_window

if TYPE_CHECKING:
    from collections.abc import Sequence
    from pathlib import Path

    from pipeline.params import SieveParams

ARTIFACT = "survivors.json"

_FAMILY_ORDER = {name: i for i, name in enumerate(FAMILIES)}


def _trim(rows: np.ndarray, limit: int) -> np.ndarray:
    """Keep the best `limit` rows of (-matches, family, skip, seed, anchor), sorted."""
    order = np.lexsort((rows[:, 4], rows[:, 3], rows[:, 2], rows[:, 1], rows[:, 0]))
    return rows[order[:limit]]


def run(ctx: JobContext, params: SieveParams) -> SieveResult:
    """Search every (family, skip) candidate over the seed range, chunk by chunk."""
    history = ctx.load_history()
    history.check_below(params.mod)
    history.require(params.window, f"the sieve window is {params.window} draws")
    anchors = choose_anchors(len(history), params.window, params.max_anchors)
    window = make_window(history.values, anchors, params.window, params.mod, params.need)

    plans: list[tuple[str, int, int, int]] = []
    for name in params.family_names:
        family = FAMILIES[name]
        lo, hi = max(params.seed_start, family.seed_min), min(params.seed_end, family.seed_end)
        if lo < hi:
            plans.extend(
                (name, skip, lo, hi) for skip in range(params.skip_min, params.skip_max + 1)
            )
    total = sum(-(-(hi - lo) // params.chunk_size) for _, _, lo, hi in plans)

    kept = np.zeros((0, 5), dtype=np.int64)  # rows: -matches, family, skip, seed, anchor
    truncated = False
    tested: dict[str, int] = dict.fromkeys(params.family_names, 0)
    expected = 0.0
    done = 0
    started = time.perf_counter()
    ctx.progress(0, total, "sieve started", force=True)
    for name, skip, lo, hi in plans:
        sieve = ChunkSieve(FAMILIES[name], skip, window, ctx.array_module)
        expected += expected_false_positives(
            hi - lo, len(anchors), params.window, params.need, params.mod
        )
        for start in range(lo, hi, params.chunk_size):
            stop = min(hi, start + params.chunk_size)
            found = sieve.run(start, stop)
            tested[name] += stop - start
            if found.seeds.size:
                block = np.column_stack(
                    [
                        -found.matches,
                        np.full(found.seeds.size, _FAMILY_ORDER[name]),
                        np.full(found.seeds.size, skip),
                        found.seeds,
                        found.anchors,
                    ]
                ).astype(np.int64)
                kept = np.concatenate([kept, block])
                # Trim as we go so memory stays bounded by max_survivors plus one chunk's finds.
                if len(kept) > params.max_survivors:
                    truncated = True
                    kept = _trim(kept, params.max_survivors)
            done += 1
            ctx.progress(done, total, f"{name} skip={skip} seeds<{stop}")
    elapsed = time.perf_counter() - started
    kept = _trim(kept, params.max_survivors)
    names = list(FAMILIES)
    survivors = tuple(
        Survivor(family=names[int(f)], skip=int(s), seed=int(seed), anchor=int(a), matches=int(-m))
        for m, f, s, seed, a in kept
    )
    artifact = SurvivorSet(
        mod=params.mod,
        window=params.window,
        threshold=params.need,
        families=tuple(params.family_names),
        skip_min=params.skip_min,
        skip_max=params.skip_max,
        seed_start=params.seed_start,
        seed_end=params.seed_end,
        anchors=tuple(anchors),
        n_draws=len(history),
        last_draw_id=history.last_draw_id,
        history_fingerprint=ctx.history_fingerprint,
        truncated=truncated,
        survivors=survivors,
    )
    write_model(ctx.artifact(ARTIFACT), artifact)
    seeds_tested = sum(tested.values())
    per_family = {
        name: FamilyStats(
            seeds_tested=tested[name], survivors=sum(1 for s in survivors if s.family == name)
        )
        for name in params.family_names
    }
    return SieveResult(
        **ctx.result_fields(history, [ARTIFACT]),
        seeds_tested=seeds_tested,
        seeds_per_second=round(seeds_tested / elapsed, 1) if elapsed > 0 else 0.0,
        survivors=len(survivors),
        window=params.window,
        threshold=params.need,
        anchors=len(anchors),
        candidates=len(plans),
        expected_false_positives=expected,
        truncated=truncated,
        per_family=per_family,
        top=survivors[:10],
    )


def _sort_key(survivor: Survivor) -> tuple[int, int, int, int, int]:
    """The order `_trim` keeps: most matches, then family, skip, seed, anchor."""
    family = _FAMILY_ORDER.get(survivor.family, len(_FAMILY_ORDER))
    return (-survivor.matches, family, survivor.skip, survivor.seed, survivor.anchor)


_SAME = ("mod", "window", "threshold", "families", "skip_min", "skip_max", "anchors", "n_draws")
_SAME_HISTORY = ("last_draw_id", "history_fingerprint")


def merge_survivor_sets(sets: Sequence[SurvivorSet], params: SieveParams) -> SurvivorSet:
    """One SurvivorSet from the shards of one search: union, best `max_survivors` kept.

    Gives exactly what the unsharded search over `[params.seed_start, params.seed_end)`
    gives: each shard kept its own best `max_survivors`, which hold every member of the
    union's best `max_survivors` that lies in that shard.

    Raises:
        ValueError: the sets are not shards of one search (another family, window, history
            or mod), or their seed ranges do not tile the parameters' range exactly.
    """
    if not sets:
        msg = "no shard to merge"
        raise ValueError(msg)
    first = sets[0]
    for index, item in enumerate(sets[1:], start=2):
        for name in (*_SAME, *_SAME_HISTORY):
            if getattr(item, name) != getattr(first, name):
                msg = (
                    f"shard {index} does not merge with shard 1: {name} "
                    f"{getattr(item, name)!r} != {getattr(first, name)!r}"
                )
                raise ValueError(msg)
    ranges = sorted((item.seed_start, item.seed_end) for item in sets)
    expected = params.seed_start
    for lo, hi in ranges:
        if lo != expected:
            msg = f"shard seed ranges do not tile [{params.seed_start}, {params.seed_end}): "
            msg += f"a shard starts at {lo}, expected {expected}"
            raise ValueError(msg)
        expected = hi
    if expected != params.seed_end:
        msg = f"shard seed ranges end at {expected}, not at seed_end {params.seed_end}"
        raise ValueError(msg)
    union = sorted({s for item in sets for s in item.survivors}, key=_sort_key)
    kept = tuple(union[: params.max_survivors])
    truncated = any(item.truncated for item in sets) or len(union) > params.max_survivors
    return first.model_copy(
        update={
            "seed_start": params.seed_start,
            "seed_end": params.seed_end,
            "truncated": truncated,
            "survivors": kept,
        }
    )


def merge_shards(
    results: Sequence[SieveResult], shard_dirs: Sequence[Path], state_dir: Path, params: SieveParams
) -> SieveResult:
    """The dispatcher's merge of a sharded sieve: writes `survivors.json`, returns the result.

    Each shard ran with its own state directory (`shard_dirs[i]`); their survivor sets are
    merged (`merge_survivor_sets`) into `state_dir/artifacts/survivors.json`, and the
    figures of their results are added up (seeds/s: the shards ran at once, so their rates add).

    Raises:
        ValueError: the shards do not merge (see `merge_survivor_sets`).
        PipelineInputError: a shard's survivors file is missing or off its schema.
    """
    if len(results) != len(shard_dirs) or not results:
        msg = f"{len(results)} shard results for {len(shard_dirs)} shard folders"
        raise ValueError(msg)
    sets = [read_model(d / "artifacts" / ARTIFACT, SurvivorSet) for d in shard_dirs]
    merged = merge_survivor_sets(sets, params)
    write_model(state_dir / "artifacts" / ARTIFACT, merged)
    first = results[0]
    per_family = {
        name: FamilyStats(
            seeds_tested=sum(
                r.per_family[name].seeds_tested for r in results if name in r.per_family
            ),
            survivors=sum(1 for s in merged.survivors if s.family == name),
        )
        for name in first.per_family
    }
    return first.model_copy(
        update={
            "artifacts": (f"artifacts/{ARTIFACT}",),
            "elapsed_s": max(r.elapsed_s for r in results),
            "seeds_tested": sum(r.seeds_tested for r in results),
            "seeds_per_second": round(sum(r.seeds_per_second for r in results), 1),
            "survivors": len(merged.survivors),
            "expected_false_positives": sum(r.expected_false_positives for r in results),
            "truncated": merged.truncated,
            "per_family": per_family,
            "top": merged.survivors[:10],
        }
    )


def main(argv: Sequence[str] | None = None) -> int:
    """Run step 1 from the command line; return the exit code."""
    return run_job(JOBS["sieve"], run, argv)


if __name__ == "__main__":
    sys.exit(main())
