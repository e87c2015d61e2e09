"""Trigger rules: each condition, the priority order, cooldown and open requests (table-driven)."""

from __future__ import annotations

from typing import Any

import pytest

from actors.config import TriggerConfig
from actors.trigger.diagnostics import Diagnostics
from actors.trigger.rules import (
    RuleName,
    conditions,
    cooldown_block,
    evaluate,
    refresh_verdict,
    start_cooldown,
)
from actors.trigger.tracker import Cooldown, TrackerState, refresh_filed

CFG = TriggerConfig()


def diag(**over: Any) -> Diagnostics:
    """A healthy full window, with `over` changed."""
    base: dict[str, Any] = {
        "draw_id": "d",
        "draw_index": 100,
        "window": 20,
        "scored": 20,
        "hits": 18,
        "hit_rate": 0.9,
        "chance_rate": 0.004,
        "ci_low": 0.7,
        "ci_high": 0.97,
        "p_value": 0.0,
        "brier": 0.1,
        "ece": 0.05,
        "mean_confidence": 0.95,
        "overconfidence": 0.05,
        "consecutive_misses": 0,
        "window_decay": 0.0,
        "churn": 0.1,
        "entropy": 0.2,
        "draws_since_pool": 0,
    }
    return Diagnostics(**{**base, **over})


STATE = TrackerState(draw_index=100, ever_scored=True)


@pytest.mark.parametrize(
    ("over", "expected"),
    [
        ({}, []),
        ({"window_decay": 0.6, "churn": 0.5}, [RuleName.REGIME_SHIFT]),
        ({"window_decay": 0.6, "churn": 0.4}, []),  # churn must exceed 0.4
        ({"window_decay": 0.5, "churn": 0.9}, []),  # decay must exceed 0.5
        ({"window_decay": 0.6, "churn": None}, []),  # churn unknown until two models
        ({"hit_rate": 0.0, "hits": 0, "overconfidence": 0.0, "mean_confidence": 0.0},
         [RuleName.HIT_RATE_COLLAPSE]),
        ({"hit_rate": 0.0, "hits": 0, "scored": 19, "overconfidence": 0.0}, []),  # not full
        ({"consecutive_misses": 5}, [RuleName.CONSECUTIVE_MISSES]),
        ({"consecutive_misses": 4}, []),
        ({"overconfidence": 0.21}, [RuleName.CONFIDENCE_DRIFT]),
        ({"overconfidence": 0.2}, []),
        ({"overconfidence": -0.5}, []),  # underconfidence is not drift
        ({"draws_since_pool": 10}, [RuleName.N_DRAWS]),
        ({"draws_since_pool": 9}, []),
        ({"consecutive_misses": 6, "overconfidence": 0.3, "draws_since_pool": 0,
          "hit_rate": 0.0, "hits": 0, "window_decay": 1.0, "churn": 1.0},
         [RuleName.REGIME_SHIFT, RuleName.HIT_RATE_COLLAPSE, RuleName.CONSECUTIVE_MISSES,
          RuleName.CONFIDENCE_DRIFT]),
    ],
)  # fmt: skip
def test_conditions(over: dict[str, Any], expected: list[RuleName]) -> None:
    """Each rule fires strictly past its threshold; several come out highest priority first."""
    assert conditions(diag(**over), STATE, CFG) == expected


def test_llm_review_is_due_only_when_configured() -> None:
    """llm_proposed fires every N scored draws when set; never with the default 0."""
    state = STATE.model_copy(update={"scored_since_review": 5})
    assert conditions(diag(), state, CFG) == []
    cfg = TriggerConfig(llm_review_every_n_draws=5)
    assert conditions(diag(), state, cfg) == [RuleName.LLM_PROPOSED]


def test_priority_order_is_the_documented_one() -> None:
    """regime_shift > hit_rate_collapse > consecutive_misses > confidence_drift > n_draws >
    llm_proposed."""
    order = sorted(RuleName, key=lambda r: -r.priority)
    assert [r.value for r in order] == [
        "regime_shift",
        "hit_rate_collapse",
        "consecutive_misses",
        "confidence_drift",
        "n_draws",
        "llm_proposed",
    ]


@pytest.mark.parametrize(
    ("rule", "draws", "seconds", "blocked"),
    [
        (RuleName.CONSECUTIVE_MISSES, 0, 0, True),
        (RuleName.CONSECUTIVE_MISSES, 9, 10_000, True),  # draws not yet passed
        (RuleName.CONSECUTIVE_MISSES, 10, 599, True),  # seconds not yet passed
        (RuleName.CONSECUTIVE_MISSES, 10, 600, False),  # both passed: released
        (RuleName.N_DRAWS, 3, 3, True),  # lower priority: blocked
        (RuleName.HIT_RATE_COLLAPSE, 0, 0, False),  # higher priority breaks through
    ],
)
def test_cooldown_block(rule: RuleName, draws: int, seconds: float, blocked: bool) -> None:
    """The cooldown holds until draws and seconds have both passed, for rules not worse."""
    cooldown = Cooldown(rule="consecutive_misses", priority=4, draw_index=100, at=1000.0)
    reason = cooldown_block(cooldown, rule, 100 + draws, 1000.0 + seconds, CFG)
    assert (reason is not None) == blocked
    if reason is not None:
        assert "cooldown after consecutive_misses" in reason


def test_evaluate_picks_the_highest_unblocked_rule_and_says_why_others_lost() -> None:
    """An open request of the winner's action passes the turn to the next rule."""
    d = diag(consecutive_misses=6, overconfidence=0.3)
    state = STATE.model_copy(update={"open_actions": ("learning_loop",)})
    verdict = evaluate(d, state, CFG, now=0.0)
    assert verdict.candidates == (RuleName.CONSECUTIVE_MISSES, RuleName.CONFIDENCE_DRIFT)
    assert verdict.fired is not None
    assert verdict.fired.rule is RuleName.CONFIDENCE_DRIFT
    assert verdict.fired.action == "selfplay_retrain"
    assert "learning_loop request is still open" in verdict.blocked["consecutive_misses"]
    assert verdict.fired.evidence["rule"] == "confidence_drift"


def test_start_cooldown_records_rule_draw_and_time() -> None:
    """Firing starts the cooldown at this draw and instant, with the rule's priority."""
    verdict = evaluate(diag(consecutive_misses=5), STATE, CFG, now=42.0)
    assert verdict.fired is not None
    state = start_cooldown(STATE, verdict.fired, 42.0)
    assert state.cooldown == Cooldown(
        rule="consecutive_misses", priority=4, draw_index=100, at=42.0
    )
    again = evaluate(diag(consecutive_misses=6), state, CFG, now=43.0)
    assert again.fired is None
    assert "consecutive_misses" in again.blocked


def test_n_draws_before_any_pool_asks_for_the_full_pipeline() -> None:
    """With no pool ever scored there is no model to predict from: run steps 1-6."""
    fresh = TrackerState(draw_index=10)
    verdict = evaluate(diag(draws_since_pool=10, scored=0), fresh, CFG, now=0.0)
    assert verdict.fired is not None
    assert verdict.fired.action == "full_pipeline"


def test_n_draws_stays_quiet_once_a_model_exists() -> None:
    """With a model known, pool-less draws are the refresh track's job, not a rule's."""
    modelled = STATE.model_copy(update={"model_id": "m1"})
    assert conditions(diag(draws_since_pool=10), modelled, CFG) == []


REFRESH_CFG = TriggerConfig(retrain_after_n_draws=3)
MODELLED = TrackerState(draw_index=50, model_id="m1", pool_index=47, ever_scored=True)
COOLDOWN = Cooldown(rule="regime_shift", priority=6, draw_index=50, at=0.0)


@pytest.mark.parametrize(
    ("over", "due", "reason"),
    [
        ({}, True, "no pool for the next draw; the newest is 3 draws old"),
        ({"pool_index": 48}, False, "the newest pool is 2 of 3 draws old"),
        ({"pool_index": 50}, False, "a pool for the next draw is registered"),
        ({"pool_index": None}, True, "the newest is 50 draws old"),
        ({"model_id": None}, False, "no model yet"),
        ({"refresh_open": True}, False, "a refresh is still open"),
        ({"open_actions": ("learning_loop",)}, False, "a learning_loop request is still open"),
        ({"open_actions": ("full_pipeline",)}, False, "a full_pipeline request is still open"),
        # selfplay makes no pool: it does not hold the refresh back.
        ({"open_actions": ("selfplay_retrain",)}, True, "the newest is 3 draws old"),
        # No cooldown blocks a refresh, not even the highest rule's.
        ({"cooldown": COOLDOWN}, True, "the newest is 3 draws old"),
    ],
)
def test_refresh_verdict(over: dict[str, Any], due: bool, reason: str) -> None:
    """A refresh is due when the newest pool is N draws old, a model exists and nothing that
    runs step 6 is open; a cooldown plays no part."""
    verdict = refresh_verdict(MODELLED.model_copy(update=over), REFRESH_CFG)
    assert verdict.due is due
    assert reason in verdict.reason
    assert verdict.evidence["rule"] == "n_draws"
    assert verdict.evidence["track"] == "refresh"


def test_a_refresh_starts_no_cooldown_and_a_fired_rule_does_not_stop_it() -> None:
    """The rule fired on the draw starts its cooldown; the refresh is due all the same and
    leaves the cooldown as the rule set it."""
    state = MODELLED.model_copy(update={"draw_index": 100, "pool_index": 99})
    verdict = evaluate(diag(consecutive_misses=5), state, CFG, now=1.0)
    assert verdict.fired is not None
    cooled = start_cooldown(state, verdict.fired, 1.0)
    refresh = refresh_verdict(cooled, TriggerConfig(retrain_after_n_draws=1))
    assert refresh.due
    after = refresh_filed(cooled)
    assert after.cooldown == cooled.cooldown
    assert not refresh_verdict(after, TriggerConfig(retrain_after_n_draws=1)).due
