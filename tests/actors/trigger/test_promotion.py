"""Promotion: the gate on the candidate's figures, the shadow verdict, selfplay's pooling."""

from __future__ import annotations

from typing import Any

import pytest

from actors.config import PoliciesConfig
from actors.trigger.promotion import ShadowTally, gate, policy_pool, shadow_verdict
from messages.artifacts import PolicyCandidate, Survivor
from pipeline.selfplay import DEFAULT_POLICY

from . import sim

CFG = PoliciesConfig(min_fitness=0.1, min_validation_score=0.2, min_survivors=2)


def candidate(**metrics: float) -> PolicyCandidate:
    """A candidate with healthy figures, `metrics` changed."""
    base = {"holdout_hit_rate": 0.5, "train_hit_rate": 0.6, "chance_rate": 0.004,
            "pool_members": 4.0}  # fmt: skip
    fitness = metrics.pop("fitness", 0.496)
    return PolicyCandidate(
        policy_id="pol-test",
        parent_policy_id=None,
        fitness=fitness,
        metrics={**base, **metrics},
        parameters=DEFAULT_POLICY,
        transforms=(),
        fingerprint="sha256:x",
        history_fingerprint=None,
        episode=1,
        seed=0,
    )


@pytest.mark.parametrize(
    ("over", "reason"),
    [
        ({"fitness": 0.05}, "fitness 0.05 is below 0.1"),
        ({"holdout_hit_rate": 0.1}, "validation score 0.1 is below 0.2"),
        ({"train_hit_rate": 0.75}, "train/validation gap 0.250"),
        ({"pool_members": 1.0}, "at least 2 needed"),
    ],
)
def test_gate(over: dict[str, Any], reason: str) -> None:
    """A healthy candidate passes; each failing figure is named."""
    assert gate(candidate(), CFG).passed
    result = gate(candidate(**over), CFG)
    assert not result.passed
    assert any(reason in r for r in result.reasons)


def test_gate_refuses_a_candidate_without_a_validation_score() -> None:
    """No holdout figure, no shadow evaluation."""
    c = candidate().model_copy(update={"metrics": {"pool_members": 4.0}})
    assert "no validation score" in gate(c, CFG).reasons[0]


def tally(draws: int, cand: int, active: int) -> ShadowTally:
    """A shadow tally after `draws` draws."""
    return ShadowTally(
        policy_id="c", active_policy_id="a", draws=draws, candidate_hits=cand, active_hits=active
    )


def test_shadow_verdict_waits_for_n_draws_then_needs_the_margin() -> None:
    """No verdict before 10 draws; +0.1 promotes, +0.0 rejects (margin 0.05)."""
    cfg = PoliciesConfig()
    assert shadow_verdict(tally(9, 9, 0), cfg) is None
    better = shadow_verdict(tally(10, 8, 7), cfg)
    assert better is not None
    assert better.promote
    assert better.candidate_hit_rate == pytest.approx(0.8)
    worse = shadow_verdict(tally(10, 7, 7), cfg)
    assert worse is not None
    assert not worse.promote
    assert "does not beat" in worse.reason


def test_tally_counts_each_draw_once() -> None:
    """Adding the same draw twice counts it once."""
    t = tally(0, 0, 0).add("d1", candidate_hit=True, active_hit=False)
    assert t.add("d1", candidate_hit=True, active_hit=False) == t
    assert (t.draws, t.candidate_hits, t.active_hits) == (1, 1, 0)


def test_policy_pool_follows_the_true_seed() -> None:
    """Selfplay's pooling over the true seed and decoys predicts the next planted draw."""
    values = sim.stable(61)
    survivors = [r.survivor for r in sim.model(60).ranked]
    pool = policy_pool(survivors, sim.MOD, DEFAULT_POLICY, values[:60])
    assert values[60] in pool
    assert len(pool) <= DEFAULT_POLICY.pool_size
    strict = DEFAULT_POLICY.model_copy(update={"min_match_rate": 0.5, "pool_size": 1})
    assert policy_pool(survivors, sim.MOD, strict, values[:60]) == (values[60],)
    late = [Survivor(family="lcg32", skip=0, seed=1, anchor=100, matches=1)]
    assert policy_pool(late, sim.MOD, DEFAULT_POLICY, values[:60]) == ()
