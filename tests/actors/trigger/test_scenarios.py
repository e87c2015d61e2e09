"""Scenarios: synthetic draws and step 6's real pools through Chapter 13's scoring and rules."""

from __future__ import annotations

from actors.config import TriggerConfig
from actors.trigger.diagnostics import diagnose
from actors.trigger.rules import RuleName, evaluate, refresh_verdict, start_cooldown
from actors.trigger.scoring import score_draw
from actors.trigger.tracker import TrackerState, observe, pool_registered

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


def test_draws_without_pool_are_not_misses_and_stale_predictions_ask_for_a_refresh() -> None:
    """No-pool and backfill draws are recorded as such, never as misses; once a model exists,
    N pool-less draws make the refresh track due (step 6), while the n_draws rule stays quiet."""
    cfg = TriggerConfig()
    state = TrackerState()
    state = observe(state, score_draw("b", 5, None, is_backfill=True), cfg.window) or state
    assert state.draw_index == 0
    m = sim.model(TRAIN)
    values = sim.stable(TRAIN + 1)
    state = pool_registered(state, state.last_draw_id, None)
    scored = score_draw("s", values[TRAIN], sim.pool_after(m, values[:TRAIN]))
    state = observe(state, scored, cfg.window) or state
    assert state.model_id == m.model_id

    fired, due = [], []
    for i in range(cfg.retrain_after_n_draws):
        state = observe(state, score_draw(f"n{i}", 1, None), cfg.window) or state
        fired.append(evaluate(diagnose(state, f"n{i}", cfg), state, cfg, now=0.0).fired)
        due.append(refresh_verdict(state, cfg).due)
    assert state.consecutive_misses == 0
    assert state.draws_since_pool == cfg.retrain_after_n_draws
    assert fired == [None] * cfg.retrain_after_n_draws
    assert due == [False] * (cfg.retrain_after_n_draws - 2) + [True, True]
    # The newest pool was made before draw "s": after N-1 pool-less draws it is N draws old.
    assert refresh_verdict(state, cfg).evidence["pool_age"] == cfg.retrain_after_n_draws + 1


def test_seed_switch_with_refreshes_scores_every_draw_and_collapses_within_the_window() -> None:
    """With retrain_after_n_draws = 1 and each refresh done before the next draw, every draw is
    scored — through a miss streak whose rule fired and through its cooldown — so the window
    fills and the collapse fires within one window of the switch."""
    switch = TRAIN + 10
    # new seed 778: the stale pools of 4 values never hit it by chance (777 does once, at 61).
    values = sim.seed_switch(switch + 12, switch, new_seed=778)
    cfg = TriggerConfig(retrain_after_n_draws=1, window=10, cooldown_draws=2, cooldown_s=0)
    m = sim.model(TRAIN)
    state = TrackerState(last_draw_id=sim.draw_id(TRAIN - 1), model_id=m.model_id)
    state = pool_registered(state, state.last_draw_id, None)
    fired: list[tuple[int, RuleName]] = []
    refreshes = 0
    for i in range(TRAIN, len(values)):
        assert state.next_pool, f"no pool before draw {i}"
        score = score_draw(sim.draw_id(i), values[i], sim.pool_after(m, values[:i]))
        state = observe(state, score, cfg.window) or state
        verdict = evaluate(diagnose(state, sim.draw_id(i), cfg), state, cfg, now=float(i))
        if verdict.fired is not None:
            fired.append((i, verdict.fired.rule))
            state = start_cooldown(state, verdict.fired, float(i))
        refresh = refresh_verdict(state, cfg)
        assert refresh.due, refresh.reason
        refreshes += 1
        state = pool_registered(state, state.last_draw_id, None)  # the refresh's pool
    assert refreshes == len(values) - TRAIN
    assert all(s.status == "scored" for s in state.recent)
    collapse = [i for i, rule in fired if rule is RuleName.HIT_RATE_COLLAPSE]
    assert collapse, fired
    assert switch <= collapse[0] < switch + cfg.window
    assert (switch + cfg.max_consecutive_misses - 1, RuleName.CONSECUTIVE_MISSES) in fired
