"""Diagnostics over rolling windows, against the chance baseline (pure).

Per-model figures (hit rate, interval, test, calibration, miss streak) use the current model's
last `window` scored draws: a retrained model is judged on its own predictions. Window decay
compares the last window of scored draws with the one before, across models: it measures the
draws, not one model. Churn comes from the last retrain (tracker.register_model).
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from pydantic import Field

from actors.trigger.stats import (
    binomial_sf,
    expected_calibration_error,
    relative_drop,
    wilson_interval,
)
from messages.base import Model

if TYPE_CHECKING:
    from actors.config import TriggerConfig
    from actors.trigger.tracker import TrackerState

DIAGNOSTICS_SCHEMA_VERSION = 2


class Diagnostics(Model):
    """Chapter 13's figures after one draw (persisted per draw, schema-versioned)."""

    schema_version: int = DIAGNOSTICS_SCHEMA_VERSION
    draw_id: str
    draw_index: int = Field(ge=0)
    window: int = Field(ge=1)
    scored: int = Field(ge=0)
    """Scored draws of the current model in the window (at most `window`)."""
    hits: int = Field(ge=0)
    hit_rate: float | None
    chance_rate: float | None
    """Mean of len(pool) / mod over the window: a random pool's hit rate."""
    ci_low: float | None
    ci_high: float | None
    """Wilson interval of the hit rate at the configured level."""
    p_value: float | None
    """One-sided binomial test: P(at least this many hits | chance)."""
    brier: float | None
    ece: float | None
    mean_confidence: float | None
    """Mean pool mass: the stated probability that the draw is in the pool."""
    overconfidence: float | None
    """mean_confidence - hit_rate: what confidence_drift watches."""
    consecutive_misses: int = Field(ge=0)
    window_decay: float | None
    """(previous window's hit rate - last window's) / previous; None until two full windows."""
    churn: float | None
    entropy: float | None
    """Shannon entropy (bits) of the latest scored pool's confidences."""
    draws_since_pool: int = Field(ge=0)
    statistic: float = 0.0
    """The change detector's CUSUM statistic S (nats) for the model in force."""
    threshold: float | None = None
    """Its alarm threshold ln(ARL0)."""
    p0: float | None = None
    """The model's in-control hit rate the detector tests against."""
    alarm: bool = False
    """The detector alarmed for the model in force."""
    change_point: str | None = None
    """The estimated first draw of the new regime (set with the alarm)."""

    @property
    def window_full(self) -> bool:
        """True once the current model has a full window of scored draws."""
        return self.scored >= self.window

    def metrics(self) -> dict[str, float]:
        """The numeric figures by name (None left out), for the store and the advisor."""
        out: dict[str, float] = {}
        for name, value in self.model_dump(
            exclude={"draw_id", "schema_version", "change_point"}
        ).items():
            if isinstance(value, int | float) and not isinstance(value, bool):
                out[name] = float(value)
        return out


def _mean(values: list[float]) -> float | None:
    return math.fsum(values) / len(values) if values else None


def diagnose(
    state: TrackerState, draw_id: str, cfg: TriggerConfig, *, churn: float | None = None
) -> Diagnostics:
    """The diagnostics of `state` (after the draw `draw_id` was observed).

    Args:
        churn: the survivor churn of the model in force against the one before (the ledger's).
    """
    mine = state.model_window(cfg.window)
    n = len(mine)
    hits = sum(1 for s in mine if s.hit)
    chance = _mean([s.chance or 0.0 for s in mine])
    hit_rate = hits / n if n else None
    ci = wilson_interval(hits, n, cfg.ci_level) if n else (None, None)
    mass = _mean([s.pool_mass or 0.0 for s in mine])
    pairs = [(s.pool_mass or 0.0, bool(s.hit)) for s in mine]
    decay = None
    if len(state.recent) >= 2 * cfg.window:
        before = state.recent[-2 * cfg.window : -cfg.window]
        last = state.recent[-cfg.window :]
        decay = relative_drop(
            sum(1 for s in before if s.hit) / cfg.window, sum(1 for s in last if s.hit) / cfg.window
        )
    latest = state.recent[-1] if state.recent else None
    return Diagnostics(
        draw_id=draw_id,
        draw_index=state.draw_index,
        window=cfg.window,
        scored=n,
        hits=hits,
        hit_rate=hit_rate,
        chance_rate=chance,
        ci_low=ci[0],
        ci_high=ci[1],
        p_value=binomial_sf(hits, n, min(1.0, chance)) if n and chance is not None else None,
        brier=_mean([s.brier or 0.0 for s in mine]),
        ece=expected_calibration_error(pairs, cfg.calibration_bins) if n else None,
        mean_confidence=mass,
        overconfidence=None if mass is None or hit_rate is None else mass - hit_rate,
        consecutive_misses=state.consecutive_misses,
        window_decay=decay,
        churn=churn,
        entropy=None if latest is None else latest.entropy,
        draws_since_pool=state.draws_since_pool,
        statistic=state.detector.statistic,
        threshold=math.log(cfg.arl0),
        p0=state.detector.p0,
        alarm=state.detector.alarm,
        change_point=state.detector.change_point,
    )
