"""The job table: every reference job's module, step, parameter model and result model.

The GPU dispatcher builds its registry from `JOBS`: the argv is
`python -m <module> --state-dir DIR --result-json PATH`, one `--foo-bar VALUE` per parameter
field `foo_bar` (booleans as `--foo-bar` / `--no-foo-bar`), then `--history PATH --seed N
--history-fingerprint FP` (docs/pipeline.md, "The argv contract").
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from messages.artifacts import (
    FullScoringResult,
    MlMetaResult,
    PipelineResult,
    PredictResult,
    ScorerMetaResult,
    SelfplayResult,
    SieveResult,
    TrainResult,
)
from pipeline.params import (
    FullScoringParams,
    MlMetaParams,
    PredictParams,
    ScorerMetaParams,
    SelfplayParams,
    SieveParams,
    TrainParams,
)

if TYPE_CHECKING:
    from pydantic import BaseModel


@dataclass(frozen=True)
class JobInfo:
    """One job: how to start it, which step it is, what it takes and what it returns."""

    name: str
    module: str
    """Run as `python -m <module>`."""
    step: int | None
    """1-6 for the pipeline steps, None for selfplay."""
    params: type[BaseModel]
    result: type[PipelineResult]
    description: str
    """One line for `--help` and the dispatcher's registry."""
    needs_gpu: bool = False
    """A GPU job: it takes the VRAM lease (the LLM frees its memory) and is pinned to a GPU.

    The reference GPU jobs use cupy when it works and fall back to numpy, so on a machine
    without a GPU they still run — one at a time, under the lease."""
    shard_range: tuple[str, str] | None = None
    """Two int parameters `(start, end)` the dispatcher may split over GPUs, if any."""
    shard_merge: str | None = None
    """`module:function` merging the shards' results (required with `shard_range`)."""
    shard_min_size: int = 1
    """Smallest range worth a shard of its own."""


JOBS: dict[str, JobInfo] = {
    info.name: info
    for info in (
        JobInfo(
            "sieve",
            "pipeline.sieve",
            1,
            SieveParams,
            SieveResult,
            "Step 1: search a seed range, in chunks, for seeds that reproduce recent draws.",
            needs_gpu=True,
            shard_range=("seed_start", "seed_end"),
            shard_merge="pipeline.sieve:merge_shards",
            # 2^16 seeds take ~1 ms with numpy: below that a shard's process start dominates.
            shard_min_size=1 << 16,
        ),
        JobInfo(
            "scorer_meta",
            "pipeline.scorer_meta",
            2,
            ScorerMetaParams,
            ScorerMetaResult,
            "Step 2: tune recency weighting, recent window and match filter on holdout.",
        ),
        JobInfo(
            "full_scoring",
            "pipeline.full_scoring",
            3,
            FullScoringParams,
            FullScoringResult,
            "Step 3: score every survivor over the whole history (match, recency, holdout, runs).",
            needs_gpu=True,
        ),
        JobInfo(
            "ml_meta",
            "pipeline.ml_meta",
            4,
            MlMetaParams,
            MlMetaResult,
            "Step 4: choose the ranking method and pool size on holdout.",
        ),
        JobInfo(
            "train",
            "pipeline.train",
            5,
            TrainParams,
            TrainResult,
            "Step 5: fit the survivor ranking on train, validate on holdout, write the model.",
            needs_gpu=True,
        ),
        JobInfo(
            "predict",
            "pipeline.predict",
            6,
            PredictParams,
            PredictResult,
            "Step 6: predict the next draw as a pool of k values with confidences.",
        ),
        JobInfo(
            "selfplay",
            "pipeline.selfplay",
            None,
            SelfplayParams,
            SelfplayResult,
            "Selfplay: explore policy transforms on train/holdout history; emit the best policy.",
            needs_gpu=True,
        ),
    )
}
"""Every reference job by name, steps in order, selfplay last."""

STEP_JOBS: dict[int, str] = {
    info.step: name for name, info in JOBS.items() if info.step is not None
}
"""Step number -> job name."""
