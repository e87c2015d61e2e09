"""The parameter model of every job: types, ranges, defaults; field `foo_bar` is flag `--foo-bar`.

The GPU dispatcher builds its registry from these (through `pipeline.jobs.JOBS`), so a request
naming a job can be validated before any process starts.
"""

from __future__ import annotations

from typing import Self

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from messages.artifacts import RankingMethod
from pipeline.prng import FAMILIES

_MAX_SEED = 1 << 48


class JobParams(BaseModel):
    """Base of the parameter models: frozen, unknown keys refused, docstrings become help."""

    model_config = ConfigDict(frozen=True, extra="forbid", use_attribute_docstrings=True)


class SieveParams(JobParams):
    """Step 1: which seeds, families, skips and window to search."""

    families: str = ",".join(FAMILIES)
    """Comma-separated PRNG families to search"""
    skip_min: int = Field(default=0, ge=0, le=64)
    """Smallest skip tried (generator steps discarded between draws)"""
    skip_max: int = Field(default=3, ge=0, le=64)
    """Largest skip tried (3: a generator that discards up to 3 outputs between draws is found
    by the defaults, at 4x the search of skip 0 alone)"""
    seed_start: int = Field(default=0, ge=0, lt=_MAX_SEED)
    """First seed of the range (clipped to each family's valid seeds)"""
    seed_end: int = Field(default=1 << 20, ge=1, le=_MAX_SEED)
    """One past the last seed of the range"""
    window: int = Field(default=8, ge=1, le=64)
    """Draws each seed must reproduce, starting at an anchor"""
    threshold: int | None = Field(default=None, ge=1, le=64)
    """Matches needed among the window's draws (the anchor draw always); unset means all"""
    mod: int = Field(default=1000, ge=2, le=1 << 32)
    """Draw values are generator outputs modulo this"""
    chunk_size: int = Field(default=1 << 13, ge=1 << 10, le=1 << 24)
    """Seeds per vectorised chunk; memory is proportional to it (2^13: arrays stay in cache)"""
    max_anchors: int = Field(default=64, ge=1, le=4096)
    """History positions tried as a seed's first draw (0 and the most recent)"""
    max_survivors: int = Field(default=10_000, ge=1, le=1_000_000)
    """Survivors kept (most matches first)"""
    target_false_positives: float = Field(default=0.01, gt=0, le=1)
    """A history shorter than twice the window (a new regime) is searched with the smallest
    window whose whole search expects at most this many false survivors"""

    @field_validator("families")
    @classmethod
    def _known_families(cls, value: str) -> str:
        names = [n.strip() for n in value.split(",") if n.strip()]
        unknown = [n for n in names if n not in FAMILIES]
        if not names or unknown:
            msg = f"unknown PRNG families {unknown or [value]}; known: {', '.join(FAMILIES)}"
            raise ValueError(msg)
        if len(set(names)) != len(names):
            msg = f"family listed twice in {value!r}"
            raise ValueError(msg)
        return ",".join(names)

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        if self.skip_min > self.skip_max:
            msg = f"skip_min {self.skip_min} > skip_max {self.skip_max}"
            raise ValueError(msg)
        if self.seed_start >= self.seed_end:
            msg = f"seed_start {self.seed_start} >= seed_end {self.seed_end}"
            raise ValueError(msg)
        if self.threshold is not None and self.threshold > self.window:
            msg = f"threshold {self.threshold} > window {self.window}"
            raise ValueError(msg)
        return self

    @property
    def family_names(self) -> list[str]:
        """The families as a list."""
        return self.families.split(",")

    @property
    def need(self) -> int:
        """The effective threshold."""
        return self.window if self.threshold is None else self.threshold


class ScorerMetaParams(JobParams):
    """Step 2: the train/holdout split the scoring configuration is tuned on."""

    holdout: int = Field(default=20, ge=1, le=100_000)
    """Most recent draws kept out of training and used to judge"""
    max_candidates: int = Field(default=256, ge=1, le=4096)
    """Survivors considered (most sieve matches first)"""


class FullScoringParams(JobParams):
    """Step 3: scoring every survivor over the whole history."""

    holdout: int = Field(default=20, ge=1, le=100_000)
    """Most recent draws reported as holdout hits (used when step 2 has not run)"""
    half_life: float = Field(default=32.0, gt=0.0, le=1e6)
    """Recency half-life in draws (used when step 2 has not run)"""
    recent_window: int = Field(default=20, ge=1, le=100_000)
    """Draws of the recent-window rate (used when step 2 has not run)"""
    min_match_rate: float = Field(default=0.0, ge=0.0, le=1.0)
    """Survivors below this match rate are dropped (used when step 2 has not run)"""


class MlMetaParams(JobParams):
    """Step 4: the candidates and pool sizes the ranking configuration is chosen from."""

    holdout: int = Field(default=20, ge=1, le=100_000)
    """Most recent draws kept out of training and used to judge"""
    max_candidates: int = Field(default=256, ge=1, le=4096)
    """Best-scored survivors considered"""
    max_pool_size: int = Field(default=16, ge=1, le=256)
    """Largest pool size tried (powers of two up to it)"""


class TrainParams(JobParams):
    """Step 5: fitting the ranking on train and validating it on holdout."""

    holdout: int = Field(default=20, ge=1, le=100_000)
    """Most recent draws kept out of training and used to validate"""
    max_candidates: int = Field(default=256, ge=1, le=4096)
    """Best-scored survivors considered"""
    trials: int = Field(default=32, ge=1, le=10_000)
    """Random weight vectors tried by the linear method"""
    method: RankingMethod | None = None
    """Ranking method; unset means step 4's choice (or weighted_rate)"""
    pool_size: int | None = Field(default=None, ge=1, le=256)
    """Survivors in the prediction pool; unset means step 4's choice (or 4)"""


class PredictParams(JobParams):
    """Step 6: the size of the prediction pool."""

    k: int = Field(default=10, ge=1, le=1000)
    """Most values in the pool"""


class SelfplayParams(JobParams):
    """Selfplay: how many episodes and what history they are judged on."""

    episodes: int = Field(default=50, ge=1, le=100_000)
    """Policies tried"""
    holdout: int = Field(default=20, ge=1, le=100_000)
    """Most recent draws kept out of training and used to judge"""
    max_candidates: int = Field(default=256, ge=1, le=4096)
    """Survivors considered"""
    restart_probability: float = Field(default=0.2, ge=0.0, le=1.0)
    """Chance that an episode starts from a random policy instead of mutating the best"""
    parent_policy_id: str | None = Field(default=None, min_length=1, max_length=128)
    """The active policy the search starts from, recorded as the first parent"""
