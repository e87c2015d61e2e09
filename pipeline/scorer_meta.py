"""Step 2, scorer meta-optimizer: the scoring configuration that best ranks on holdout.

Each configuration (recency half-life, recent window, minimum match rate) scores the candidates
on the training draws; its fitness is the holdout hit rate of the survivor it ranks first.
Writes `artifacts/scorer_config.json` (a ScorerConfig) and a ScorerMetaResult.
"""

from __future__ import annotations

import itertools
import sys
from typing import TYPE_CHECKING

import numpy as np

from messages.artifacts import ScorerConfig, ScorerMetaResult
from pipeline.cli import JobContext, run_job
from pipeline.files import write_model
from pipeline.inputs import SCORER_CONFIG, load_survivor_set, train_end
from pipeline.jobs import JOBS
from pipeline.scoring import features, predicted_matrix, rank, survivor_score

if TYPE_CHECKING:
    from collections.abc import Sequence

    from pipeline.params import ScorerMetaParams

HALF_LIVES = (4.0, 16.0, 64.0, 256.0)
RECENT_WINDOWS = (10, 50)
MIN_MATCH_RATES = (0.0, 0.02, 0.1, 0.5)
DEFAULT = (32.0, 20, 0.0)
"""The configuration step 3 uses when step 2 has not run; reported as the baseline."""


def run(ctx: JobContext, params: ScorerMetaParams) -> ScorerMetaResult:
    """Evaluate every configuration of the grid; keep the best."""
    history = ctx.load_history()
    found = load_survivor_set(ctx.artifacts_dir, history)
    cut = train_end(history, params.holdout)
    n = len(history)
    candidates = found.survivors[: params.max_candidates]
    predicted = predicted_matrix(candidates, n, found.mod, ctx.array_module)
    values = history.values
    grid = [*itertools.product(HALF_LIVES, RECENT_WINDOWS, MIN_MATCH_RATES)]
    if DEFAULT not in grid:
        grid.insert(0, DEFAULT)
    # Key: fitness first; then configurations that keep someone; then the strictest filter.
    ranked: list[tuple[float, int, int, int, tuple[float, int, float]]] = []
    baseline = 0.0
    for i, (half_life, recent, min_rate) in enumerate(grid):
        f = features(
            predicted, values, 0, cut, half_life=half_life, recent_window=recent, runs=False
        )
        eligible = np.nonzero((f.match_rate >= min_rate) & (f.positions > 0))[0]
        fitness = 0.0
        if eligible.size:
            best = eligible[rank(survivor_score(f)[eligible])[0]]
            fitness = float((predicted[best, cut:] == values[cut:]).mean())
        if (half_life, recent, min_rate) == DEFAULT:
            baseline = fitness
        ranked.append(
            (
                -fitness,
                int(eligible.size == 0),
                int(eligible.size),
                i,
                (half_life, recent, min_rate),
            )
        )
        ctx.progress(
            i + 1, len(grid), f"half_life={half_life:g} recent={recent} min_rate={min_rate:g}"
        )
    neg_fitness, _, _, _, (half_life, recent, min_rate) = min(ranked)
    config = ScorerConfig(
        half_life=half_life,
        recent_window=recent,
        min_match_rate=min_rate,
        holdout=params.holdout,
        fitness=-neg_fitness,
        configs_evaluated=len(grid),
    )
    write_model(ctx.artifact(SCORER_CONFIG), config)
    return ScorerMetaResult(
        **ctx.result_fields(history, [SCORER_CONFIG]),
        config=config,
        baseline_fitness=baseline,
    )


def main(argv: Sequence[str] | None = None) -> int:
    """Run step 2 from the command line; return the exit code."""
    return run_job(JOBS["scorer_meta"], run, argv)


if __name__ == "__main__":
    sys.exit(main())
