"""Step 4, ML meta-optimizer: the ranking method and pool size that do best on holdout.

Every (method, pool size) pair ranks the candidates by their training features; its fitness is
the holdout pool hit rate minus the hit rate of a random pool of that size, so a bigger pool
must earn its size. Writes `artifacts/ml_config.json` (a RankingConfig) and an MlMetaResult.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, get_args

from messages.artifacts import MlMetaResult, RankingConfig, RankingMethod
from pipeline.cli import JobContext, run_job
from pipeline.files import write_model
from pipeline.inputs import ML_CONFIG, load_scored, train_end
from pipeline.jobs import JOBS
from pipeline.scoring import (
    chance_rate,
    features,
    method_weights,
    pool_hit_rate,
    predicted_matrix,
    rank,
)

if TYPE_CHECKING:
    from collections.abc import Sequence

    from pipeline.params import MlMetaParams

METHODS: tuple[RankingMethod, ...] = get_args(RankingMethod)


def pool_sizes(limit: int) -> list[int]:
    """Powers of two up to `limit`, and `limit` itself."""
    sizes = [1 << i for i in range(limit.bit_length()) if 1 << i <= limit]
    return sorted({*sizes, limit})


def run(ctx: JobContext, params: MlMetaParams) -> MlMetaResult:
    """Evaluate every (method, pool size); keep the best, smaller pools first on ties."""
    history = ctx.load_history()
    scored = load_scored(ctx.artifacts_dir, history)
    cut = train_end(history, params.holdout)
    n = len(history)
    candidates = tuple(s.survivor for s in scored.scored[: params.max_candidates])
    predicted = predicted_matrix(candidates, n, scored.mod, ctx.array_module)
    f = features(
        predicted,
        history.values,
        0,
        cut,
        half_life=scored.config.half_life,
        recent_window=scored.config.recent_window,
        runs=False,
    )
    sizes = pool_sizes(params.max_pool_size)
    trials: list[tuple[float, int, int, RankingMethod]] = []
    for m, method in enumerate(METHODS):
        order = rank(f.matrix() @ method_weights(method))
        for size in sizes:
            hit = pool_hit_rate(predicted, history.values, order[:size], cut, n)
            trials.append((-(hit - chance_rate(size, scored.mod)), size, m, method))
        ctx.progress(m + 1, len(METHODS), f"method {method}")
    neg_fitness, size, _, method = min(trials)
    config = RankingConfig(
        method=method,
        pool_size=size,
        holdout=params.holdout,
        fitness=-neg_fitness,
        configs_evaluated=len(trials),
    )
    write_model(ctx.artifact(ML_CONFIG), config)
    return MlMetaResult(**ctx.result_fields(history, [ML_CONFIG]), config=config)


def main(argv: Sequence[str] | None = None) -> int:
    """Run step 4 from the command line; return the exit code."""
    return run_job(JOBS["ml_meta"], run, argv)


if __name__ == "__main__":
    sys.exit(main())
