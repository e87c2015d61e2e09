"""Scenario helpers: synthetic draws, the reference pipeline's step-6 pools, Chapter 13's fold.

Pools come from `pipeline.predict.build_pool` (step 6 itself) over a model whose ranked
survivors hold the true seed and a few decoys, exactly what steps 1-5 leave behind.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from actors.trigger.context import Context, ModelRecord, OpenRequest
from actors.trigger.detector import ModelPrior, threshold
from actors.trigger.diagnostics import diagnose
from actors.trigger.rules import Identification, Trigger, evaluate
from actors.trigger.scoring import score_draw
from actors.trigger.tracker import TrackerState, observe
from messages.artifacts import HistoryRecord, RankedSurvivor, RankingModel, Survivor
from pipeline.array_module import NUMPY
from pipeline.cli import JobContext, Progress
from pipeline.history import History
from pipeline.predict import build_pool
from pipeline.prng import FAMILIES, draw_values
from pipeline.synthetic import synthetic_records

if TYPE_CHECKING:
    from actors.config import TriggerConfig
    from messages.artifacts import PredictionPool

FAMILY = "lcg32"
SEED = 12345
MOD = 1000
DECOYS = (101, 202, 303, 404, 505, 606, 707)


def stable(count: int) -> list[int]:
    """A planted seed, no change."""
    return [r.value for r in synthetic_records(FAMILY, SEED, count, mod=MOD)]


def seed_switch(count: int, at: int, new_seed: int = 777) -> list[int]:
    """A fresh stream of `new_seed` from index `at` on."""
    records = synthetic_records(FAMILY, SEED, count, mod=MOD, switch_at=at, new_seed=new_seed)
    return [r.value for r in records]


def skip_change(count: int, at: int, new_skip: int = 1) -> list[int]:
    """The same generator from index `at` on, advancing `new_skip + 1` steps per draw."""
    stride = new_skip + 1
    base = draw_values(FAMILIES[FAMILY], SEED, at + stride * (count - at) + 1, 0, MOD)
    return base[:at] + [base[at + stride * (j + 1) - 1] for j in range(count - at)]


def model(n_train: int, *, seed: int = SEED) -> RankingModel:
    """What step 5 leaves: the true seed ranked first, decoys far behind."""
    ranked = [RankedSurvivor(survivor=Survivor(family=FAMILY, skip=0, seed=seed, anchor=0,
                                               matches=8), score=1.0)]  # fmt: skip
    ranked += [
        RankedSurvivor(
            survivor=Survivor(family=FAMILY, skip=0, seed=s, anchor=0, matches=1), score=0.01
        )
        for s in DECOYS
    ]
    return RankingModel(
        model_id=f"model-{seed}-{n_train}",
        method="weighted_rate",
        weights={"weighted_rate": 1.0},
        pool_size=4,
        mod=MOD,
        n_draws=n_train,
        last_draw_id=f"d-{n_train - 1:06d}",
        ranked=tuple(ranked),
    )


def draw_id(i: int) -> str:
    """The id of draw `i`."""
    return f"d-{i:06d}"


_CTX = JobContext(
    job="predict",
    step=6,
    state_dir=Path(),
    seed=0,
    history_path=None,
    history_fingerprint=None,
    array_module=NUMPY,
    progress=Progress(),
    started=0.0,
)


def pool_after(m: RankingModel, values: list[int], k: int = 4) -> PredictionPool:
    """Step 6's pool for the draw after `values` (history ids d-000000...)."""
    start = np.datetime64("2024-01-01T00:00:00")
    records = tuple(
        HistoryRecord(
            draw_id=draw_id(i),
            timestamp=(start + np.timedelta64(i, "h")).astype("datetime64[s]").item(),
            value=v,
        )
        for i, v in enumerate(values)
    )
    history = History(Path("history.jsonl"), records, np.asarray(values, dtype=np.int64))
    return build_pool(m, history, k, _CTX)


@dataclass
class Run:
    """What a scenario saw: the triggers that fired (draw index, trigger), alarms, final state."""

    fired: list[tuple[int, Trigger]] = field(default_factory=list)
    alarms: list[int] = field(default_factory=list)
    """Draw positions (indices into the values) at which the detector alarmed."""
    waiting: list[int] = field(default_factory=list)
    state: TrackerState = field(default_factory=TrackerState)


IDENTIFICATION = Identification(
    post_change_draws=5, margin=2, bootstrap_draws=5, expected_false_positives=6.7e-5
)
"""What the actor derives for the defaults (2^20 seeds x 4 families, mod 1000, target 0.01)."""


def run(
    values: list[int],
    m: RankingModel,
    cfg: TriggerConfig,
    *,
    start: int,
    prior: ModelPrior | None = None,
    file_requests: bool = True,
) -> Run:
    """Chapter 13's fold over draws `start..`, each scored against step 6's pool made before it.

    The model's prior is its validation (20 of 20 by default). With `file_requests`, every
    trigger's request stays open (the retrain never finishes).
    """
    prior = prior or ModelPrior(hits=20, size=20)
    h = threshold(cfg.arl0)
    out = Run()
    state = TrackerState(last_draw_id=draw_id(start - 1))
    ctx = Context(model=ModelRecord(model_id=m.model_id, prior=prior), pool_index=0)
    for i in range(start, len(values)):
        pool = pool_after(m, values[:i])
        assert pool.last_draw_id == state.last_draw_id
        score = score_draw(draw_id(i), values[i], pool)
        new = observe(state, score, cfg.window, prior=prior, h=h)
        assert new is not None
        if new.detector.alarm and not state.detector.alarm:
            out.alarms.append(i)
        diag = diagnose(new, draw_id(i), cfg)
        ctx = ctx.model_copy(update={"pool_index": new.draw_index - 1})
        verdict = evaluate(diag, new, ctx, IDENTIFICATION, cfg, now=i * 3600.0)
        if verdict.waiting:
            out.waiting.append(i)
        if verdict.fired is not None:
            out.fired.append((i, verdict.fired))
            if file_requests:
                opened = OpenRequest(
                    request_id=f"r{i}", action=verdict.fired.action, rule=verdict.fired.rule.value
                )
                ctx = ctx.model_copy(update={"open": (*ctx.open, opened)})
        state = new
    out.state = state
    return out
