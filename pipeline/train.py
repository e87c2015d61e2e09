"""Step 5, anti-overfit training: fit the ranking on train, validate it on holdout.

The ranking weighs the survivor features (FEATURE_NAMES). Fitting picks the weights whose pool
hits most of the last training draws (in sample); validation measures the same pool on the
holdout draws (out of sample); overfit ratio = train score / validation score. The model is then
re-scored on the whole history. Writes `artifacts/model.json` (a RankingModel), its sidecar
`artifacts/model.meta.json` (ModelMetadata) and a TrainResult.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

import numpy as np

from messages.artifacts import (
    ModelMetadata,
    RankedSurvivor,
    RankingConfig,
    RankingModel,
    TrainResult,
)
from pipeline.cli import JobContext, run_job
from pipeline.files import content_id, read_model, sha256_file, write_model
from pipeline.inputs import ML_CONFIG, MODEL, MODEL_META, SCORED, load_scored, train_end
from pipeline.jobs import JOBS
from pipeline.scoring import (
    FEATURE_NAMES,
    features,
    method_weights,
    pool_hit_rate,
    predicted_matrix,
    rank,
)

if TYPE_CHECKING:
    from collections.abc import Sequence

    from pipeline.params import TrainParams

DEFAULT_METHOD = "weighted_rate"
DEFAULT_POOL_SIZE = 4
# The model keeps this many pools' worth of ranked survivors, so step 6 has the runners-up in view.
_KEEP_POOLS = 4


def run(ctx: JobContext, params: TrainParams) -> TrainResult:
    """Fit, validate, refit on everything, write the model and its sidecar."""
    history = ctx.load_history()
    scored = load_scored(ctx.artifacts_dir, history)
    ml_path = ctx.artifact(ML_CONFIG)
    ml = read_model(ml_path, RankingConfig) if ml_path.exists() else None
    method = params.method or (ml.method if ml else DEFAULT_METHOD)
    pool_size = params.pool_size or (ml.pool_size if ml else DEFAULT_POOL_SIZE)
    cut = train_end(history, params.holdout)
    n = len(history)
    values = history.values
    cfg = scored.config
    candidates = tuple(s.survivor for s in scored.scored[: params.max_candidates])
    predicted = predicted_matrix(candidates, n, scored.mod, ctx.array_module)
    train_f = features(
        predicted,
        values,
        0,
        cut,
        half_life=cfg.half_life,
        recent_window=cfg.recent_window,
        runs=False,
    )

    trials = [method_weights(method)]
    if method == "linear":
        rng = np.random.default_rng(ctx.seed)
        trials += [method_weights(name) for name in FEATURE_NAMES]
        trials += list(rng.dirichlet(np.ones(len(FEATURE_NAMES)), size=params.trials))
    eval_from = max(0, cut - params.holdout)
    best: tuple[float, int] = (-1.0, 0)
    for i, weights in enumerate(trials):
        order = rank(train_f.matrix() @ weights)
        score = pool_hit_rate(predicted, values, order[:pool_size], eval_from, cut)
        if score > best[0]:
            best = (score, i)
        ctx.progress(i + 1, len(trials), "fitting ranking weights")
    train_score, chosen = best
    weights = trials[chosen]
    order = rank(train_f.matrix() @ weights)
    validation = pool_hit_rate(predicted, values, order[:pool_size], cut, n)

    full_f = features(
        predicted,
        values,
        0,
        n,
        half_life=cfg.half_life,
        recent_window=cfg.recent_window,
        runs=False,
    )
    full_scores = full_f.matrix() @ weights
    final = rank(full_scores)[: pool_size * _KEEP_POOLS]
    model = RankingModel(
        model_id="",
        method=method,
        weights={name: float(w) for name, w in zip(FEATURE_NAMES, weights, strict=True)},
        pool_size=pool_size,
        mod=scored.mod,
        n_draws=n,
        last_draw_id=history.last_draw_id,
        ranked=tuple(
            RankedSurvivor(survivor=candidates[i], score=float(full_scores[i])) for i in final
        ),
    )
    model = model.model_copy(update={"model_id": content_id("model", model)})
    inputs = {SCORED: sha256_file(ctx.artifact(SCORED))}
    if ml is not None:
        inputs[ML_CONFIG] = sha256_file(ml_path)
    meta = ModelMetadata(
        model_id=model.model_id,
        seed=ctx.seed,
        method=method,
        feature_names=FEATURE_NAMES,
        train_size=cut,
        holdout_size=n - cut,
        train_score=train_score,
        validation_score=validation,
        overfit_ratio=train_score / validation if validation > 0 else None,
        n_draws=n,
        last_draw_id=history.last_draw_id,
        history_fingerprint=ctx.history_fingerprint,
        inputs=inputs,
    )
    # Sidecar first: a reader that finds model.json always finds a sidecar, checked by model_id.
    write_model(ctx.artifact(MODEL_META), meta)
    write_model(ctx.artifact(MODEL), model)
    return TrainResult(
        **ctx.result_fields(history, [MODEL, MODEL_META]),
        model_id=model.model_id,
        method=method,
        pool_size=pool_size,
        train_score=train_score,
        validation_score=validation,
        overfit_ratio=meta.overfit_ratio,
    )


def main(argv: Sequence[str] | None = None) -> int:
    """Run step 5 from the command line; return the exit code."""
    return run_job(JOBS["train"], run, argv)


if __name__ == "__main__":
    sys.exit(main())
