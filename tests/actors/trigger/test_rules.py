"""The trigger rules (pure): conditions, blocks, superseding, the refresh track."""

from __future__ import annotations

import math
from typing import Any

import pytest

from actors.config import TriggerConfig
from actors.trigger.context import REFRESH, Context, Cooldown, ModelRecord, NoSignal, OpenRequest
from actors.trigger.detector import CusumState
from actors.trigger.diagnostics import Diagnostics
from actors.trigger.rules import (
    DEFAULT_ACTIONS,
    Identification,
    RuleName,
    cooldown_block,
    evaluate,
    refresh_verdict,
)
from actors.trigger.tracker import TrackerState

CFG = TriggerConfig()
IDENT = Identification(
    post_change_draws=5, margin=1, bootstrap_draws=4, expected_false_positives=1e-5
)
MODEL = ModelRecord(model_id="m1", history_from="d-40")


def diag(**over: Any) -> Diagnostics:
    """A quiet diagnosis of draw 100, with overrides."""
    base: dict[str, Any] = {
        "draw_id": "d-100", "draw_index": 100, "window": 20, "scored": 20, "hits": 20,
        "hit_rate": 1.0, "chance_rate": 0.004, "ci_low": 0.8, "ci_high": 1.0, "p_value": 0.0,
        "brier": 0.0, "ece": 0.0, "mean_confidence": 1.0, "overconfidence": 0.0,
        "consecutive_misses": 0, "window_decay": None, "churn": None, "entropy": 0.0,
        "draws_since_pool": 0,
    }  # fmt: skip
    return Diagnostics(**{**base, **over})


def alarmed(post: int) -> TrackerState:
    """The state `post` draws into a detected change (the change point at 100 - post + 1)."""
    cp = 100 - post + 1
    detector = CusumState(
        model_id="m1", statistic=12.0, alarm=True, alarm_index=100, change_point=f"d-{cp}",
        change_point_index=cp,
    )  # fmt: skip
    return TrackerState(draw_index=100, model_id="m1", detector=detector)


def test_priority_order_is_the_documented_one() -> None:
    """change_point > no_signal_retry > confidence_drift > n_draws > llm_proposed."""
    assert [r.priority for r in RuleName] == [5, 4, 3, 2, 1]
    assert DEFAULT_ACTIONS[RuleName.CHANGE_POINT] == ("pipeline_rerun", None)


def test_a_change_waits_for_the_draws_that_identify_the_new_seed() -> None:
    """Alarmed with 4 post-change draws: waiting; with 5: the full pipeline from the change
    point minus the margin."""
    early = evaluate(diag(), alarmed(4), Context(model=MODEL), IDENT, CFG, now=0.0)
    assert early.fired is None
    assert early.waiting is not None
    assert "needs 5 post-change draws, have 4" in early.waiting
    ready = evaluate(diag(), alarmed(5), Context(model=MODEL), IDENT, CFG, now=0.0)
    assert ready.fired is not None
    assert ready.fired.rule is RuleName.CHANGE_POINT
    assert ready.fired.history_start_index == 96 - IDENT.margin
    assert ready.fired.evidence["change_confidence"] >= 1 - 1 / CFG.arl0


def test_an_open_retrain_blocks_and_a_parked_one_is_superseded() -> None:
    """An open request of the same or a stronger type blocks; a parked one gives way."""
    open_ = Context(model=MODEL, open=(OpenRequest(request_id="r1", action="pipeline_rerun",
                                                   rule="change_point"),))  # fmt: skip
    blocked = evaluate(diag(), alarmed(5), open_, IDENT, CFG, now=0.0)
    assert blocked.fired is None
    assert "is still open" in blocked.blocked["change_point"]
    parked = open_.model_copy(update={"open": (open_.open[0].model_copy(update={"parked": True}),)})
    fired = evaluate(diag(), alarmed(5), parked, IDENT, CFG, now=0.0).fired
    assert fired is not None
    assert fired.supersedes == "r1"
    refresh = Context(model=MODEL, open=(OpenRequest(request_id="r2", action="learning_loop",
                                                     rule=REFRESH),))  # fmt: skip
    assert evaluate(diag(), alarmed(5), refresh, IDENT, CFG, now=0.0).fired is not None


def test_no_signal_holds_retrains_until_the_back_off_runs_out() -> None:
    """In no signal the change and bootstrap rules wait; the retry fires once it is due."""
    waiting = Context(model=MODEL, no_signal=NoSignal(since_index=80, next_index=130))
    held = evaluate(diag(), alarmed(5), waiting, IDENT, CFG, now=0.0)
    assert held.fired is None
    assert "no signal since draw 80" in held.blocked["change_point"]
    due = waiting.model_copy(update={"no_signal": NoSignal(since_index=80, next_index=100)})
    fired = evaluate(diag(), alarmed(5), due, IDENT, CFG, now=0.0).fired
    assert fired is not None
    assert fired.rule is RuleName.NO_SIGNAL_RETRY
    off = waiting.model_copy(update={"no_signal": NoSignal(since_index=80, next_index=None)})
    assert evaluate(diag(), alarmed(5), off, IDENT, CFG, now=0.0).fired is None


def test_the_daily_gpu_budget_holds_automatic_retrains() -> None:
    """Past the budget nothing automatic is filed, and the reason says how much was spent."""
    spent = Context(model=MODEL, gpu_seconds=CFG.gpu_budget_s_per_day)
    result = evaluate(diag(), alarmed(5), spent, IDENT, CFG, now=0.0)
    assert result.fired is None
    assert "daily GPU budget spent" in result.blocked["change_point"]


def test_bootstrap_fires_once_the_history_identifies_and_only_without_a_model() -> None:
    """No model: n_draws at 4 draws (not 3); with a model it stays quiet."""
    fresh = TrackerState(draw_index=3)
    assert evaluate(diag(scored=0), fresh, Context(), IDENT, CFG, now=0.0).fired is None
    four = TrackerState(draw_index=4)
    fired = evaluate(diag(scored=0), four, Context(), IDENT, CFG, now=0.0).fired
    assert fired is not None
    assert (fired.rule, fired.action, fired.history_start_index) == (
        RuleName.N_DRAWS,
        "pipeline_rerun",
        None,
    )
    assert evaluate(diag(scored=0), four, Context(model=MODEL), IDENT, CFG, now=0.0).fired is None


def test_confidence_drift_needs_the_binomial_test_too() -> None:
    """Overconfidence alone is not enough: the hits must be significantly below the claim."""
    state = TrackerState(draw_index=100, model_id="m1")
    few = diag(scored=20, hits=14, hit_rate=0.7, mean_confidence=0.95, overconfidence=0.25)
    drift = evaluate(few, state, Context(model=MODEL), IDENT, CFG, now=0.0).fired
    assert drift is not None
    assert drift.rule is RuleName.CONFIDENCE_DRIFT
    noisy = diag(scored=4, hits=3, hit_rate=0.75, mean_confidence=0.99, overconfidence=0.24,
                 window=4)  # fmt: skip
    assert evaluate(noisy, state, Context(model=MODEL), IDENT, CFG, now=0.0).fired is None


@pytest.mark.parametrize(
    ("draws", "seconds", "cooldown_s", "blocked"),
    [
        (0, 0, 0, True),
        (9, 1e9, 0, True),  # draws not yet passed
        (10, 0, 0, False),  # draws are the clock
        (10, 599, 600, True),  # an optional seconds bound on top
        (10, 600, 600, False),
    ],
)
def test_cooldown_counts_draws_with_an_optional_seconds_bound(
    draws: int, seconds: float, cooldown_s: float, blocked: bool
) -> None:
    """Cooled rules wait `cooldown_draws` draws (and `cooldown_s` seconds when set)."""
    cfg = TriggerConfig(cooldown_s=cooldown_s)
    ctx = Context(cooldown=Cooldown(rule="confidence_drift", draw_index=100, at=1000.0))
    why = cooldown_block(ctx, RuleName.CONFIDENCE_DRIFT, 100 + draws, 1000.0 + seconds, cfg)
    assert (why is not None) is blocked
    assert cooldown_block(ctx, RuleName.CHANGE_POINT, 100, 1000.0, cfg) is None  # not cooled


@pytest.mark.parametrize(
    ("ctx", "index", "due", "reason"),
    [
        (Context(), 10, False, "no model yet"),
        (Context(model=MODEL, pool_index=10), 10, False, "a pool for the next draw"),
        (Context(model=MODEL, pool_index=9), 10, True, "no pool for the next draw"),
        (
            Context(model=MODEL, pool_index=9, open=(OpenRequest(
                request_id="r", action="learning_loop", rule=REFRESH),)),
            10, False, "is open: it makes the next pool",
        ),
        (
            Context(model=MODEL, pool_index=9, open=(OpenRequest(
                request_id="r", action="pipeline_rerun", rule="change_point", parked=True),)),
            10, True, "no pool for the next draw",
        ),
        (
            Context(model=MODEL, pool_index=9, open=(OpenRequest(
                request_id="r", action="selfplay_retrain", rule="confidence_drift"),)),
            10, True, "no pool for the next draw",
        ),
    ],
)  # fmt: skip
def test_refresh_verdict(ctx: Context, index: int, due: bool, reason: str) -> None:
    """A pool for every draw: due unless one is registered or an unparked step-6 run is open."""
    model = None if ctx.model is None else ctx.model.model_id
    verdict = refresh_verdict(TrackerState(draw_index=index, model_id=model), ctx, CFG)
    assert verdict.due is due
    assert reason in verdict.reason


def test_threshold_follows_from_arl0() -> None:
    """The evidence carries ln(ARL0) as the threshold."""
    fired = evaluate(diag(), alarmed(5), Context(model=MODEL), IDENT, CFG, now=0.0).fired
    assert fired is not None
    assert fired.evidence["threshold"] == math.log(CFG.arl0)
