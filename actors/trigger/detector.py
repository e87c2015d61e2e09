"""Change detection: a Bernoulli CUSUM of the model's hits against its own validated hit rate.

Each scored draw is a Bernoulli trial: hit or miss. Before a change the model hits with its
own probability p0; after one (a new seed, a new generator) its pool is as good as a random pool
of the same size, which hits with the chance rate q = len(pool) / mod. The log-likelihood ratio
of "changed" against "in control" for one draw is

    hit:  ln(q / p0)              miss:  ln((1 - q) / (1 - p0))

and Page's CUSUM keeps S_t = max(0, S_{t-1} + llr_t), raising an alarm when S_t >= h. With
h = ln(ARL0) the average run length to a false alarm is at least ARL0 draws (Lorden 1971; the
Shiryaev-Roberts sum bounds the CUSUM from above and is a martingale plus t under the in-control
law, so it cannot reach e^h in fewer than e^h draws on average), whatever q does draw by draw.

The test knows how strong a miss is: for a model at p0 = 0.98 one miss adds ln(0.99/0.02) = 3.9,
so at ARL0 = 10,000 (h = 9.2) three misses in a row raise the alarm; for a model at p0 = 0.30 a
miss adds ln(0.99/0.70) = 0.35, so it takes 27 misses in a row (0.7^27 = 6.6e-5: about once in
15,000 draws for that model in control). A hit takes ln(p0/q) back: 5.6 for the 0.30 model.

p0 is estimated, not assumed: a Jeffreys Beta(1/2, 1/2) prior, the model's validation (holdout
hits of `size`, from step 5) and the model's live draws while in control — those before the
last time S was 0 (a draw in an excursion may already be after the change). It is known before
each draw (predictable), as the bound needs. p0 is capped below 1 (a finite miss ratio) and a
model whose p0 does not beat chance carries no signal: the test is off for it (`active`).

The estimated change point is the first draw of the excursion that raised the alarm: the draw
after the last time S was 0 (the maximum-likelihood change point of the CUSUM). After an alarm
the detector latches: it raises no second alarm for the same model.
"""

from __future__ import annotations

import math

from pydantic import Field

from messages.base import Model

JEFFREYS = 0.5
"""Prior pseudo-counts of hits and misses (Beta(1/2, 1/2))."""


def threshold(arl0: float) -> float:
    """The CUSUM threshold h = ln(ARL0): the average run length to a false alarm >= ARL0."""
    if arl0 <= 1:
        msg = f"ARL0 must exceed 1 draw, got {arl0:g}"
        raise ValueError(msg)
    return math.log(arl0)


class ModelPrior(Model):
    """What a model's validation says of its hit rate: `hits` of `size` holdout draws."""

    hits: float = Field(0.0, ge=0)
    size: float = Field(0.0, ge=0)


class CusumState(Model):
    """The detector's memory for the model in force (starts over when the model changes)."""

    model_id: str | None = None
    statistic: float = Field(0.0, ge=0)
    """S_t, in nats."""
    control_hits: float = Field(0.0, ge=0)
    control_draws: float = Field(0.0, ge=0)
    """Live draws known to be in control (before the last zero of S) and their hits."""
    excursion_hits: int = Field(0, ge=0)
    excursion_draws: int = Field(0, ge=0)
    """Draws since the last zero of S (the current excursion) and their hits."""
    excursion_start: str | None = None
    """The first draw of the current excursion: the change point if it ends in an alarm."""
    excursion_start_index: int | None = Field(None, ge=0)
    alarm: bool = False
    """The alarm was raised (latched until the model changes)."""
    alarm_index: int | None = Field(None, ge=0)
    change_point: str | None = None
    change_point_index: int | None = Field(None, ge=0)
    p0: float | None = None
    """The in-control hit probability used for the latest draw."""


def in_control_rate(prior: ModelPrior, state: CusumState) -> float:
    """p0: the posterior mean hit rate of the model in control (validation + live, Jeffreys)."""
    hits = prior.hits + state.control_hits + JEFFREYS
    draws = prior.size + state.control_draws + 2 * JEFFREYS
    return hits / draws


def llr(hit: bool, p0: float, q: float) -> float:
    """The log-likelihood ratio of "as good as chance" against "in control" for one draw."""
    q = min(max(q, 1e-12), 1 - 1e-12)
    p0 = min(max(p0, 1e-12), 1 - 1e-12)
    return math.log(q / p0) if hit else math.log((1 - q) / (1 - p0))


def active(p0: float, q: float) -> bool:
    """The test runs only for a model that beats chance (p0 > q)."""
    return p0 > q


def step(
    state: CusumState,
    *,
    model_id: str | None,
    prior: ModelPrior,
    hit: bool,
    chance: float,
    draw_id: str,
    draw_index: int,
    h: float,
) -> CusumState:
    """The detector after one scored draw of `model_id` (a new model starts a fresh state)."""
    if model_id != state.model_id:
        state = CusumState(model_id=model_id)
    if state.alarm:
        return state
    p0 = in_control_rate(prior, state)
    if not active(p0, chance):
        # No signal to lose: every draw counts as in control and S stays at 0.
        return state.model_copy(
            update={
                "control_hits": state.control_hits + hit,
                "control_draws": state.control_draws + 1,
                "p0": p0,
            }
        )
    s = state.statistic + llr(hit, p0, chance)
    if s <= 0:
        # Back to zero: the excursion was in control after all.
        return state.model_copy(
            update={
                "statistic": 0.0,
                "control_hits": state.control_hits + state.excursion_hits + hit,
                "control_draws": state.control_draws + state.excursion_draws + 1,
                "excursion_hits": 0,
                "excursion_draws": 0,
                "excursion_start": None,
                "excursion_start_index": None,
                "p0": p0,
            }
        )
    start = state.excursion_start if state.excursion_draws else draw_id
    start_index = state.excursion_start_index if state.excursion_draws else draw_index
    update: dict[str, object] = {
        "statistic": s,
        "excursion_hits": state.excursion_hits + hit,
        "excursion_draws": state.excursion_draws + 1,
        "excursion_start": start,
        "excursion_start_index": start_index,
        "p0": p0,
    }
    if s >= h:
        update.update(
            alarm=True, alarm_index=draw_index, change_point=start, change_point_index=start_index
        )
    return state.model_copy(update=update)


def confidence(statistic: float) -> float:
    """How sure the evidence makes a change: 1 - e^-S.

    Under the in-control law P(sup S >= s) <= e^-s (Ville's inequality on the Shiryaev-Roberts
    martingale), so 1 - e^-S is the confidence with which "no change" is rejected. At an alarm
    (S >= ln ARL0) it is at least 1 - 1/ARL0.
    """
    return 1.0 - math.exp(-max(statistic, 0.0))


def misses_to_alarm(p0: float, q: float, h: float) -> int:
    """Misses in a row that raise the alarm from S = 0 (the detection delay of a dead model)."""
    step_ = llr(False, p0, q)
    return math.ceil(h / step_) if step_ > 0 else 0
