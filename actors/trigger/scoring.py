"""Prediction scoring: one real draw against the pool registered for it (pure).

A pool predicts the draw after its `last_draw_id`. It is *for* a draw when that id is the real
draw just before it; any other pool is stale and is never scored (no back-dating). Draws with no
pool, backfill draws and synthetic draws are recorded with their status, never as misses.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

from pydantic import Field

from actors.trigger.stats import pool_brier, shannon_entropy
from messages.base import Model

if TYPE_CHECKING:
    from messages.artifacts import PredictionPool

ScoreStatus = Literal["scored", "no_pool", "backfill", "synthetic"]


class DrawScore(Model):
    """How the predictions did on one draw (or why they were not judged)."""

    draw_id: str
    status: ScoreStatus
    value: int = Field(ge=0)
    pool_id: str | None = None
    model_id: str | None = None
    hit: bool | None = None
    """The drawn value is one of the pool's values (None unless scored)."""
    rank: int | None = Field(None, ge=1)
    """1-based position of the drawn value in the pool, highest confidence first."""
    confidence: float | None = None
    """The confidence the pool gave the drawn value (0 when it missed)."""
    pool_mass: float | None = None
    """The pool's total confidence: its stated probability that the draw is one of its values."""
    brier: float | None = None
    """Multi-class Brier score over all values (stats.pool_brier): 0 best, 2 worst."""
    chance: float | None = None
    """Hit probability of a random pool of the same size: len(pool) / mod."""
    entropy: float | None = None
    """Shannon entropy (bits) of the pool's confidences."""

    @property
    def scored(self) -> bool:
        """True when the draw was judged against a pool."""
        return self.status == "scored"


def pool_is_for(pool: PredictionPool, previous_draw_id: str | None) -> bool:
    """True when `pool` predicts the draw that follows `previous_draw_id`."""
    return pool.last_draw_id == previous_draw_id


def score_draw(
    draw_id: str,
    value: int,
    pool: PredictionPool | None,
    *,
    stream: str = "real",
    is_backfill: bool = False,
) -> DrawScore:
    """Score `value` against `pool` (the one registered for this draw, or None)."""
    if stream != "real":
        return DrawScore(draw_id=draw_id, status="synthetic", value=value)
    if is_backfill:
        return DrawScore(draw_id=draw_id, status="backfill", value=value)
    if pool is None:
        return DrawScore(draw_id=draw_id, status="no_pool", value=value)
    values = [p.value for p in pool.predictions]
    confidences = [p.confidence for p in pool.predictions]
    index = values.index(value) if value in values else None
    return DrawScore(
        draw_id=draw_id,
        status="scored",
        value=value,
        pool_id=pool.pool_id,
        model_id=pool.model_id,
        hit=index is not None,
        rank=None if index is None else index + 1,
        confidence=0.0 if index is None else confidences[index],
        pool_mass=min(1.0, sum(confidences)),
        brier=pool_brier(confidences, index, pool.mod),
        chance=min(1.0, len(values) / pool.mod),
        entropy=shannon_entropy(confidences),
    )
