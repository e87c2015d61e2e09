"""Promotion: the gate on a selfplay candidate's own figures, then shadow evaluation (pure).

Selfplay explores on training and holdout draws only. Chapter 13 first checks the candidate's
figures against the gate, then lets it predict the next `shadow_draws` *real* draws beside the
active policy — both from the same survivors, each draw predicted before it arrived — and
promotes it only when its hit rate beats the active one's by `promotion_margin`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
from pydantic import Field

from messages.base import Model
from pipeline.scoring import features, predicted_matrix, rank, survivor_score

if TYPE_CHECKING:
    from collections.abc import Sequence

    from actors.config import PoliciesConfig
    from messages.artifacts import PolicyCandidate, PolicyParameters, Survivor


class GateResult(Model):
    """Whether a candidate may enter shadow evaluation, and why (not)."""

    passed: bool
    reasons: tuple[str, ...]


def gate(candidate: PolicyCandidate, cfg: PoliciesConfig) -> GateResult:
    """Check fitness, validation score, train/validation gap and survivors against the config."""
    failures: list[str] = []
    if candidate.fitness < cfg.min_fitness:
        failures.append(f"fitness {candidate.fitness:g} is below {cfg.min_fitness:g}")
    validation = candidate.metrics.get("holdout_hit_rate")
    train = candidate.metrics.get("train_hit_rate")
    if validation is None:
        failures.append("no validation score (metrics.holdout_hit_rate)")
    elif validation < cfg.min_validation_score:
        failures.append(f"validation score {validation:g} is below {cfg.min_validation_score:g}")
    if validation is not None and train is None:
        failures.append("no train score (metrics.train_hit_rate)")
    elif validation is not None and train is not None:
        gap = train - validation
        if gap > cfg.max_train_validation_gap:
            failures.append(
                f"train/validation gap {gap:.3f} is above {cfg.max_train_validation_gap:g}"
            )
    survivors = candidate.metrics.get("pool_members", 0.0)
    if survivors < cfg.min_survivors:
        failures.append(f"{survivors:g} survivors in its pool; at least {cfg.min_survivors} needed")
    if failures:
        return GateResult(passed=False, reasons=tuple(failures))
    return GateResult(passed=True, reasons=("gate passed",))


class ShadowTally(Model):
    """A candidate's running shadow evaluation beside the active policy."""

    policy_id: str
    active_policy_id: str
    draws: int = Field(0, ge=0)
    candidate_hits: int = Field(0, ge=0)
    active_hits: int = Field(0, ge=0)
    last_draw_id: str | None = None

    def add(self, draw_id: str, *, candidate_hit: bool, active_hit: bool) -> ShadowTally:
        """The tally after one more real draw (a draw already counted changes nothing)."""
        if draw_id == self.last_draw_id:
            return self
        return self.model_copy(
            update={
                "draws": self.draws + 1,
                "candidate_hits": self.candidate_hits + int(candidate_hit),
                "active_hits": self.active_hits + int(active_hit),
                "last_draw_id": draw_id,
            }
        )


class PromotionVerdict(Model):
    """The end of a shadow evaluation: promote or reject, with the figures."""

    promote: bool
    candidate_hit_rate: float
    active_hit_rate: float
    margin: float
    draws: int
    reason: str


def shadow_verdict(tally: ShadowTally, cfg: PoliciesConfig) -> PromotionVerdict | None:
    """None while fewer than `shadow_draws` draws were scored, else the verdict."""
    if tally.draws < cfg.shadow_draws:
        return None
    cand = tally.candidate_hits / tally.draws
    active = tally.active_hits / tally.draws
    better = cand - active >= cfg.promotion_margin
    word = "beats" if better else "does not beat"
    reason = (
        f"candidate hit rate {cand:.3f} {word} the active {active:.3f} by the margin "
        f"{cfg.promotion_margin:g} over {tally.draws} real draws"
    )
    return PromotionVerdict(
        promote=better,
        candidate_hit_rate=cand,
        active_hit_rate=active,
        margin=cfg.promotion_margin,
        draws=tally.draws,
        reason=reason,
    )


def policy_pool(
    survivors: Sequence[Survivor], mod: int, parameters: PolicyParameters, values: Sequence[int]
) -> tuple[int, ...]:
    """The values a policy predicts for the draw after `values` (selfplay's own pooling).

    The policy scores the survivors on its history window with its recency weighting, keeps
    those at or above its minimum match rate, and pools the next values of its best
    `pool_size`, distinct, best first.
    """
    n = len(values)
    usable = [s for s in survivors if s.anchor < n]
    if not usable or n == 0:
        return ()
    predicted = predicted_matrix(usable, n + 1, mod)
    history = np.asarray(values, dtype=np.int64)
    lo = max(0, n - parameters.history_window) if parameters.history_window else 0
    f = features(
        predicted[:, :n],
        history,
        lo,
        n,
        half_life=parameters.half_life,
        recent_window=parameters.recent_window,
        runs=False,
    )
    eligible = np.nonzero((f.match_rate >= parameters.min_match_rate) & (f.positions > 0))[0]
    members = eligible[rank(survivor_score(f)[eligible])][: parameters.pool_size]
    out: list[int] = []
    for i in members:
        value = int(predicted[i, n])
        if value >= 0 and value not in out:
            out.append(value)
    return tuple(out)
