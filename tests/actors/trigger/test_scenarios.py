"""Scenarios: synthetic draws and step 6's real pools through Chapter 13's scoring and rules."""

from __future__ import annotations

from actors.config import TriggerConfig
from actors.trigger.rules import RuleName
from actors.trigger.scoring import score_draw
from actors.trigger.tracker import TrackerState, observe

from . import sim

TRAIN = 50


def test_stable_planted_seed_over_200_draws_fires_nothing() -> None:
    """200 draws of the planted seed, each predicted by step 6: every one a hit, zero triggers."""
    values = sim.stable(TRAIN + 200)
    result = sim.run(values, sim.model(TRAIN), TriggerConfig(), start=TRAIN)
    assert result.fired == []
    assert result.state.draw_index == 200
    assert all(s.hit for s in result.state.recent)


def test_seed_switch_fires_a_collapse_within_the_window() -> None:
    """After a seed switch the stale model misses; a collapse (or regime shift) fires within
    one window of 20 draws, breaking through the cooldown of the miss streak before it."""
    switch = 120
    values = sim.seed_switch(switch + 40, switch)
    cfg = TriggerConfig()
    result = sim.run(values, sim.model(TRAIN), cfg, start=TRAIN)
    assert result.fired, "nothing fired after the switch"
    assert all(i >= switch for i, _t in result.fired)
    severe = [
        (i, t)
        for i, t in result.fired
        if t.rule in {RuleName.HIT_RATE_COLLAPSE, RuleName.REGIME_SHIFT}
    ]
    assert severe, [t.rule for _i, t in result.fired]
    first, trigger = severe[0]
    assert first < switch + cfg.window
    assert trigger.action == "full_pipeline"
    assert trigger.evidence["hit_rate"] <= cfg.hit_rate_collapse


def test_skip_change_asks_for_a_learning_loop() -> None:
    """A skip change breaks the predictions at once: the first trigger is the miss streak, and
    it asks for a learning loop (re-score, retrain, predict)."""
    change = 120
    values = sim.skip_change(change + 15, change)
    assert values[:change] == sim.stable(change)
    result = sim.run(values, sim.model(TRAIN), TriggerConfig(), start=TRAIN)
    first_at, first = result.fired[0]
    assert first.rule is RuleName.CONSECUTIVE_MISSES
    assert first_at == change + TriggerConfig().max_consecutive_misses - 1
    assert first.action == "learning_loop"
    assert first.scope is not None
    assert 6 in first.scope.steps


def test_cooldown_blocks_and_then_releases() -> None:
    """The miss streak fires, is blocked for `cooldown_draws` draws, then fires again."""
    switch = 120
    values = sim.seed_switch(switch + 18, switch)
    cfg = TriggerConfig(cooldown_draws=8, cooldown_s=0)
    result = sim.run(values, sim.model(TRAIN), cfg, start=TRAIN, file_requests=False)
    streaks = [i for i, t in result.fired if t.rule is RuleName.CONSECUTIVE_MISSES]
    assert streaks[:2] == [switch + 4, switch + 4 + 8]


def test_cooldown_counts_seconds_as_well_as_draws() -> None:
    """With draws a second apart, a 600 s cooldown outlasts the draw count."""
    switch = 120
    values = sim.seed_switch(switch + 18, switch)
    cfg = TriggerConfig(cooldown_draws=2, cooldown_s=600)
    result = sim.run(
        values, sim.model(TRAIN), cfg, start=TRAIN, file_requests=False, seconds_per_draw=60
    )
    streaks = [i for i, t in result.fired if t.rule is RuleName.CONSECUTIVE_MISSES]
    assert streaks[:2] == [switch + 4, switch + 4 + 10]


def test_duplicate_draw_delivery_is_not_counted_twice() -> None:
    """The same draw id delivered twice changes the state once."""
    m = sim.model(TRAIN)
    values = sim.stable(TRAIN + 1)
    pool = sim.pool_after(m, values[:TRAIN])
    score = score_draw(sim.draw_id(TRAIN), values[TRAIN], pool)
    once = observe(TrackerState(), score, 20)
    assert once is not None
    assert observe(once, score, 20) is None
    assert once.draw_index == 1
    assert len(once.recent) == 1


def test_draws_without_pool_are_not_misses_and_stale_predictions_ask_for_step_6() -> None:
    """No-pool and backfill draws are recorded as such; 10 pool-less draws fire n_draws."""
    cfg = TriggerConfig()
    state = TrackerState()
    state = observe(state, score_draw("b", 5, None, is_backfill=True), cfg.window) or state
    assert state.draw_index == 0
    m = sim.model(TRAIN)
    values = sim.stable(TRAIN + 1)
    scored = score_draw("s", values[TRAIN], sim.pool_after(m, values[:TRAIN]))
    state = observe(state, scored, cfg.window) or state
    from actors.trigger.diagnostics import diagnose
    from actors.trigger.rules import evaluate

    fired = []
    for i in range(cfg.retrain_after_n_draws):
        state = observe(state, score_draw(f"n{i}", 1, None), cfg.window) or state
        verdict = evaluate(diagnose(state, f"n{i}", cfg), state, cfg, now=0.0)
        fired.append(verdict.fired)
    assert state.consecutive_misses == 0
    assert fired[:-1] == [None] * (cfg.retrain_after_n_draws - 1)
    last = fired[-1]
    assert last is not None
    assert last.rule is RuleName.N_DRAWS
    assert last.action == "learning_loop"
