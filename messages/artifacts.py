"""The reference pipeline's file formats: history lines, artifacts and one result model per job.

Every job validates what it reads and what it writes against these models (issue 6). Artifacts
live in `<state-dir>/artifacts/`; a job's result is written to the path given by `--result-json`.
Sequences are tuples so that a loaded artifact is deeply immutable.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import Field

from messages.base import Model

NonNegInt = Annotated[int, Field(ge=0, strict=True)]
Rate = Annotated[float, Field(ge=0.0, le=1.0)]
RankingMethod = Literal["match_rate", "recent_rate", "weighted_rate", "linear"]


# --- inputs ---------------------------------------------------------------------------------


class HistoryRecord(Model):
    """One line of a draw-history file (JSON Lines, oldest first)."""

    draw_id: str = Field(min_length=1)
    timestamp: datetime
    value: int = Field(ge=0, lt=1 << 63, strict=True)


# --- step 1 ---------------------------------------------------------------------------------


class Survivor(Model):
    """A seed whose outputs matched the sieve window; identified by family, skip, seed, anchor."""

    family: str
    skip: NonNegInt
    """Generator steps discarded between two draws (each draw advances `skip + 1` times)."""
    seed: NonNegInt
    anchor: NonNegInt
    """Index in the history of the draw that is this seed's first output."""
    matches: NonNegInt
    """Draws of the sieve window that this seed reproduced."""


class SurvivorSet(Model):
    """Step 1's artifact (`survivors.json`): every survivor and the search that found them."""

    mod: int = Field(ge=2)
    window: int = Field(ge=1)
    threshold: int = Field(ge=1)
    families: tuple[str, ...]
    skip_min: NonNegInt
    skip_max: NonNegInt
    seed_start: NonNegInt
    seed_end: NonNegInt
    anchors: tuple[NonNegInt, ...]
    """History indices tried as the start of a seed's stream."""
    n_draws: NonNegInt
    last_draw_id: str | None
    history_fingerprint: str | None
    truncated: bool
    """True when more seeds survived than `max_survivors`; the best ones were kept."""
    survivors: tuple[Survivor, ...]


# --- steps 2 and 3 --------------------------------------------------------------------------


class ScorerConfig(Model):
    """Step 2's artifact (`scorer_config.json`): how step 3 scores survivors."""

    half_life: float = Field(gt=0.0)
    """Draws after which a hit counts half as much in the weighted rate."""
    recent_window: int = Field(ge=1)
    min_match_rate: Rate
    """Survivors whose match rate is below this are dropped by step 3."""
    holdout: int = Field(ge=1)
    fitness: float
    """Holdout hit rate of the best survivor under this configuration."""
    configs_evaluated: NonNegInt = 0


class SurvivorScore(Model):
    """One survivor scored over the whole history."""

    survivor: Survivor
    positions: NonNegInt
    """Draws from the survivor's anchor to the end of the history."""
    hits: NonNegInt
    match_rate: Rate
    recent_rate: Rate
    weighted_rate: Rate
    longest_run: NonNegInt
    holdout_hits: NonNegInt
    holdout_positions: NonNegInt
    score: float


class ScoredSurvivorSet(Model):
    """Step 3's artifact (`survivors_with_scores.json`), best score first."""

    mod: int = Field(ge=2)
    n_draws: NonNegInt
    last_draw_id: str | None
    history_fingerprint: str | None
    config: ScorerConfig
    dropped: NonNegInt
    """Survivors below `config.min_match_rate`, not listed."""
    scored: tuple[SurvivorScore, ...]


# --- steps 4 and 5 --------------------------------------------------------------------------


class RankingConfig(Model):
    """Step 4's artifact (`ml_config.json`): the ranking model configuration to train."""

    method: RankingMethod
    pool_size: int = Field(ge=1)
    holdout: int = Field(ge=1)
    fitness: float
    """Holdout pool hit rate minus the chance rate of a pool that size."""
    configs_evaluated: NonNegInt = 0


class RankedSurvivor(Model):
    """A survivor and its score under the trained ranking."""

    survivor: Survivor
    score: float


class RankingModel(Model):
    """Step 5's model artifact (`model.json`): the ranked survivors step 6 predicts from."""

    model_id: str
    method: RankingMethod
    weights: dict[str, float]
    """Feature name -> weight; a survivor's score is the weighted sum of its features."""
    pool_size: int = Field(ge=1)
    mod: int = Field(ge=2)
    n_draws: NonNegInt
    """History length the model was trained on; later draws are news to step 6."""
    last_draw_id: str | None
    ranked: tuple[RankedSurvivor, ...]


class ModelMetadata(Model):
    """The sidecar of the model (`model.meta.json`): provenance and validation figures."""

    model_id: str
    seed: int
    method: RankingMethod
    feature_names: tuple[str, ...]
    train_size: NonNegInt
    holdout_size: NonNegInt
    train_score: Rate
    validation_score: Rate
    overfit_ratio: float | None
    """train_score / validation_score; None when the validation score is 0."""
    n_draws: NonNegInt
    last_draw_id: str | None
    history_fingerprint: str | None
    inputs: dict[str, str]
    """Artifact file name -> SHA-256 of the bytes the model was trained from."""


# --- step 6 ---------------------------------------------------------------------------------


class PredictedValue(Model):
    """One candidate value for the next draw."""

    value: NonNegInt
    confidence: Rate
    """Share of the ranking weight of the survivors that predict this value."""
    support: NonNegInt
    """Survivors that predict this value."""


class PredictionPool(Model):
    """Step 6's artifact (`prediction_pool.json`): at most k values for the draw after the last."""

    pool_id: str
    """Content hash: the same predictions for the same history give the same id."""
    k: int = Field(ge=1)
    mod: int = Field(ge=2)
    predictions: tuple[PredictedValue, ...]
    """Highest confidence first; may hold fewer than k values."""
    last_draw_id: str | None
    """The last draw this pool has seen; it predicts the draw that follows."""
    last_draw_timestamp: datetime | None
    n_draws: NonNegInt
    history_fingerprint: str | None
    model_id: str | None


# --- selfplay -------------------------------------------------------------------------------


class PolicyParameters(Model):
    """The knobs a policy sets: which survivors to trust and how to weigh them."""

    min_match_rate: Rate
    half_life: float = Field(gt=0.0)
    recent_window: int = Field(ge=1)
    history_window: NonNegInt
    """Most recent training draws used for scoring; 0 means all."""
    pool_size: int = Field(ge=1)


class PolicyCandidate(Model):
    """A policy found by selfplay; only the TriggerActor may promote it after shadow evaluation."""

    policy_id: str
    parent_policy_id: str | None
    fitness: float
    """Holdout pool hit rate minus the chance rate of the pool; never computed on live draws."""
    metrics: dict[str, float]
    parameters: PolicyParameters
    transforms: tuple[str, ...]
    """What changed from the parent, e.g. `half_life: 32 -> 16`."""
    fingerprint: str
    """SHA-256 of the parameters: equal parameters give equal fingerprints."""
    history_fingerprint: str | None
    episode: NonNegInt
    seed: int


class SelfplayTelemetry(Model):
    """The selfplay health file (`selfplay_telemetry.json`)."""

    status: Literal["healthy", "degraded"]
    episodes: NonNegInt
    best_policy_id: str | None
    best_fitness: float | None
    mean_fitness: float | None
    survivors_considered: NonNegInt
    elapsed_s: float = Field(ge=0.0)
    updated_at: datetime
    warnings: tuple[str, ...] = ()


# --- job results ----------------------------------------------------------------------------


class PipelineResult(Model):
    """What every job's `--result-json` holds; each job extends it."""

    job: str
    step: int | None
    seed: int
    n_draws: NonNegInt
    last_draw_id: str | None
    history_fingerprint: str | None
    artifacts: tuple[str, ...]
    """Artifacts written, relative to the state dir."""
    elapsed_s: float = Field(ge=0.0)


class FamilyStats(Model):
    """Per PRNG family figures of a sieve run."""

    seeds_tested: NonNegInt
    survivors: NonNegInt


class SieveResult(PipelineResult):
    """Step 1: seeds tested, speed, survivors and the window searched."""

    job: Literal["sieve"] = "sieve"
    step: Literal[1] = 1
    seeds_tested: NonNegInt
    seeds_per_second: float = Field(ge=0.0)
    survivors: NonNegInt
    window: int = Field(ge=1)
    threshold: int = Field(ge=1)
    anchors: NonNegInt
    candidates: NonNegInt
    """(family, skip) pairs searched."""
    expected_false_positives: float = Field(ge=0.0)
    """Survivors expected if the draws were uniformly random."""
    truncated: bool
    per_family: dict[str, FamilyStats]
    top: tuple[Survivor, ...]
    """Up to 10 survivors, most matches first."""


class ScorerMetaResult(PipelineResult):
    """Step 2: the scoring configuration chosen on holdout."""

    job: Literal["scorer_meta"] = "scorer_meta"
    step: Literal[2] = 2
    config: ScorerConfig
    baseline_fitness: float
    """Fitness of the default configuration, for comparison."""


class FullScoringResult(PipelineResult):
    """Step 3: how many survivors were scored and the best of them."""

    job: Literal["full_scoring"] = "full_scoring"
    step: Literal[3] = 3
    scored: NonNegInt
    dropped: NonNegInt
    best_score: float | None
    best_match_rate: float | None
    top: tuple[SurvivorScore, ...]
    """Up to 10 survivors, best first."""


class MlMetaResult(PipelineResult):
    """Step 4: the ranking configuration chosen on holdout."""

    job: Literal["ml_meta"] = "ml_meta"
    step: Literal[4] = 4
    config: RankingConfig


class TrainResult(PipelineResult):
    """Step 5: validation score and overfit ratio of the trained ranking."""

    job: Literal["train"] = "train"
    step: Literal[5] = 5
    model_id: str
    method: RankingMethod
    pool_size: int = Field(ge=1)
    train_score: Rate
    validation_score: Rate
    overfit_ratio: float | None


class PredictResult(PipelineResult):
    """Step 6: the prediction pool (also written as an artifact)."""

    job: Literal["predict"] = "predict"
    step: Literal[6] = 6
    pool: PredictionPool


class SelfplayResult(PipelineResult):
    """Selfplay: the best candidate (never merely the last) and the run's figures."""

    job: Literal["selfplay"] = "selfplay"
    step: None = None
    best: PolicyCandidate
    episodes: NonNegInt
    archive_size: NonNegInt
    """Candidates in the policy history after this run."""
    telemetry: SelfplayTelemetry
