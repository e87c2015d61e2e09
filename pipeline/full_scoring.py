"""Step 3, full scoring: every survivor scored over the whole history.

Uses step 2's `scorer_config.json` when present, else the flags. Survivors are scored in blocks
so memory stays bounded by the block (2^22 predicted cells, 32 MiB). Writes
`artifacts/survivors_with_scores.json` (a ScoredSurvivorSet) and a FullScoringResult.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

import numpy as np

from messages.artifacts import FullScoringResult, ScoredSurvivorSet, ScorerConfig, SurvivorScore
from pipeline.cli import JobContext, run_job
from pipeline.files import read_model, write_model
from pipeline.inputs import SCORED, SCORER_CONFIG, load_survivor_set
from pipeline.jobs import JOBS
from pipeline.prng import FAMILIES
from pipeline.scoring import features, predicted_matrix, survivor_score

if TYPE_CHECKING:
    from collections.abc import Sequence

    from pipeline.params import FullScoringParams

_BLOCK_CELLS = 1 << 22
_FAMILY_ORDER = {name: i for i, name in enumerate(FAMILIES)}


def _config(ctx: JobContext, params: FullScoringParams) -> ScorerConfig:
    """Step 2's configuration, or one built from the flags when step 2 has not run."""
    path = ctx.artifact(SCORER_CONFIG)
    if path.exists():
        return read_model(path, ScorerConfig)
    return ScorerConfig(
        half_life=params.half_life,
        recent_window=params.recent_window,
        min_match_rate=params.min_match_rate,
        holdout=params.holdout,
        fitness=0.0,
    )


def run(ctx: JobContext, params: FullScoringParams) -> FullScoringResult:
    """Score all survivors block by block, drop those under the match filter, sort best first."""
    history = ctx.load_history()
    found = load_survivor_set(ctx.artifacts_dir, history)
    config = _config(ctx, params)
    n = len(history)
    holdout_from = max(0, n - config.holdout)
    block = max(1, _BLOCK_CELLS // max(1, n))
    survivors = found.survivors
    kept: list[SurvivorScore] = []
    dropped = 0
    for start in range(0, len(survivors), block):
        part = survivors[start : start + block]
        predicted = predicted_matrix(part, n, found.mod, ctx.array_module)
        f = features(
            predicted,
            history.values,
            0,
            n,
            half_life=config.half_life,
            recent_window=config.recent_window,
        )
        held = features(
            predicted, history.values, holdout_from, n, half_life=1.0, recent_window=1, runs=False
        )
        scores = survivor_score(f)
        for i, survivor in enumerate(part):
            if f.match_rate[i] < config.min_match_rate:
                dropped += 1
                continue
            kept.append(
                SurvivorScore(
                    survivor=survivor,
                    positions=int(f.positions[i]),
                    hits=int(f.hits[i]),
                    match_rate=float(f.match_rate[i]),
                    recent_rate=float(f.recent_rate[i]),
                    weighted_rate=float(np.clip(f.weighted_rate[i], 0.0, 1.0)),
                    longest_run=int(f.longest_run[i]),
                    holdout_hits=int(held.hits[i]),
                    holdout_positions=int(held.positions[i]),
                    score=float(scores[i]),
                )
            )
        ctx.progress(min(len(survivors), start + block), len(survivors), "scoring survivors")
    kept.sort(
        key=lambda s: (
            -s.score,
            -s.match_rate,
            _FAMILY_ORDER.get(s.survivor.family, len(_FAMILY_ORDER)),
            s.survivor.skip,
            s.survivor.seed,
            s.survivor.anchor,
        )
    )
    artifact = ScoredSurvivorSet(
        mod=found.mod,
        n_draws=n,
        last_draw_id=history.last_draw_id,
        history_fingerprint=ctx.history_fingerprint,
        config=config,
        dropped=dropped,
        scored=tuple(kept),
    )
    write_model(ctx.artifact(SCORED), artifact)
    best = kept[0] if kept else None
    return FullScoringResult(
        **ctx.result_fields(history, [SCORED]),
        scored=len(kept),
        dropped=dropped,
        best_score=best.score if best else None,
        best_match_rate=best.match_rate if best else None,
        top=tuple(kept[:10]),
    )


def main(argv: Sequence[str] | None = None) -> int:
    """Run step 3 from the command line; return the exit code."""
    return run_job(JOBS["full_scoring"], run, argv)


if __name__ == "__main__":
    sys.exit(main())
