"""Step 6, prediction generator: a pool of at most k values for the draw after the last one.

The pool members are the model's top `pool_size` survivors. Each votes for the value it predicts
next with weight = model score x (hits + 1) / (draws + 1) over the draws that arrived after
training (Laplace smoothing: 1 when nothing is new), so a survivor that stopped matching after a
seed switch loses its say at once. A value's confidence is its share of the votes. Writes
`artifacts/prediction_pool.json` (a PredictionPool) and a PredictResult holding the same pool.
"""

from __future__ import annotations

import sys
from collections import defaultdict
from typing import TYPE_CHECKING

from messages.artifacts import (
    ModelMetadata,
    PredictedValue,
    PredictionPool,
    PredictResult,
    RankingModel,
)
from pipeline.cli import JobContext, run_job
from pipeline.errors import PipelineInputError
from pipeline.files import content_id, read_model, write_model
from pipeline.inputs import MODEL, MODEL_META, POOL, check_fits
from pipeline.jobs import JOBS
from pipeline.scoring import predicted_matrix

if TYPE_CHECKING:
    from collections.abc import Sequence

    from pipeline.history import History
    from pipeline.params import PredictParams

# A model score of 0 still gets a vote this small, so a pool of zero-scored survivors is not empty.
_MIN_WEIGHT = 1e-9


def load_model(ctx: JobContext, history: History) -> RankingModel:
    """The model and its sidecar, checked against each other and the history."""
    path = ctx.artifact(MODEL)
    model = read_model(path, RankingModel, hint="run step 5 (pipeline.train) first")
    meta = read_model(
        ctx.artifact(MODEL_META), ModelMetadata, hint="written by step 5 with the model"
    )
    if meta.model_id != model.model_id:
        raise PipelineInputError(
            str(ctx.artifact(MODEL_META)),
            f"model_id {meta.model_id!r} does not match {MODEL}'s {model.model_id!r}",
        )
    check_fits(path, model.mod, model.n_draws, tuple(r.survivor for r in model.ranked), history)
    return model


def build_pool(model: RankingModel, history: History, k: int, ctx: JobContext) -> PredictionPool:
    """Vote the members' next values into a pool of at most k values."""
    n = len(history)
    members = model.ranked[: model.pool_size]
    predicted = predicted_matrix([m.survivor for m in members], n + 1, model.mod, ctx.array_module)
    news = slice(model.n_draws, n)
    votes: dict[int, float] = defaultdict(float)
    support: dict[int, int] = defaultdict(int)
    for i, member in enumerate(members):
        row = predicted[i, news]
        valid = row >= 0
        hits = int((row[valid] == history.values[news][valid]).sum())
        weight = max(member.score, _MIN_WEIGHT) * (hits + 1) / (int(valid.sum()) + 1)
        value = int(predicted[i, n])
        votes[value] += weight
        support[value] += 1
    total = sum(votes.values())
    best = sorted(votes, key=lambda v: (-votes[v], v))[:k]
    predictions = tuple(
        PredictedValue(value=v, confidence=min(1.0, votes[v] / total), support=support[v])
        for v in best
    )
    pool = PredictionPool(
        pool_id="",
        k=k,
        mod=model.mod,
        predictions=predictions,
        last_draw_id=history.last_draw_id,
        last_draw_timestamp=history.last_timestamp,
        n_draws=n,
        history_fingerprint=ctx.history_fingerprint,
        model_id=model.model_id,
    )
    return pool.model_copy(update={"pool_id": content_id("pool", pool)})


def run(ctx: JobContext, params: PredictParams) -> PredictResult:
    """Load the model, vote, write the pool."""
    history = ctx.load_history()
    model = load_model(ctx, history)
    pool = build_pool(model, history, params.k, ctx)
    ctx.progress(1, 1, f"{len(pool.predictions)} values predicted")
    write_model(ctx.artifact(POOL), pool)
    return PredictResult(**ctx.result_fields(history, [POOL]), pool=pool)


def main(argv: Sequence[str] | None = None) -> int:
    """Run step 6 from the command line; return the exit code."""
    return run_job(JOBS["predict"], run, argv)


if __name__ == "__main__":
    sys.exit(main())
