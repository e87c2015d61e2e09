"""Scenarios: synthetic draws and step 6's real pools through Chapter 13's scoring and rules."""

from __future__ import annotations

from actors.config import TriggerConfig
from actors.trigger.detector import ModelPrior
from actors.trigger.rules import RuleName

from . import sim

TRAIN = 50


def test_stable_planted_seed_over_1000_draws_never_alarms() -> None:
    """1,000 draws of the planted seed, each predicted by step 6: every one a hit, no alarm,
    no trigger."""
    values = sim.stable(TRAIN + 1000)
    result = sim.run(values, sim.model(TRAIN), TriggerConfig(), start=TRAIN)
    assert result.fired == []
    assert result.alarms == []
    assert result.state.draw_index == 1000
    assert all(s.hit for s in result.state.recent)


def test_seed_switch_alarms_within_three_draws_and_files_once_identifiable() -> None:
    """After a seed switch the stale model misses: the detector alarms within 3 draws, and the
    change_point retrain is filed once 5 post-change draws identify the new seed, on a
    history starting one draw before the estimated change point."""
    switch = 120
    values = sim.seed_switch(switch + 20, switch)
    result = sim.run(values, sim.model(TRAIN), TriggerConfig(), start=TRAIN)
    [alarm] = result.alarms
    assert switch <= alarm <= switch + 2
    first, trigger = result.fired[0]
    assert trigger.rule is RuleName.CHANGE_POINT
    assert first == switch + sim.IDENTIFICATION.post_change_draws - 1
    assert trigger.action == "pipeline_rerun"
    assert trigger.evidence["change_point"] == sim.draw_id(switch)
    # draw_index counts from 1 at `start`: the change point's index is switch - start + 1.
    assert trigger.history_start_index == switch - TRAIN + 1 - sim.IDENTIFICATION.margin
    assert [t.rule for _i, t in result.fired] == [RuleName.CHANGE_POINT]  # latched: once


def test_skip_change_is_a_change_too() -> None:
    """A skip change breaks the predictions at once: the same alarm, the same retrain."""
    change = 120
    values = sim.skip_change(change + 15, change)
    assert values[:change] == sim.stable(change)
    result = sim.run(values, sim.model(TRAIN), TriggerConfig(), start=TRAIN)
    assert result.alarms
    assert change <= result.alarms[0] <= change + 2
    assert result.fired[0][1].rule is RuleName.CHANGE_POINT


def test_a_weaker_record_takes_more_misses_to_believe() -> None:
    """The same stream, a model validated 6/20 instead of 20/20: its 70 live hits lift its
    in-control rate to 0.84, and the switch takes 6 misses to believe instead of 2."""
    switch = 120
    values = sim.seed_switch(switch + 10, switch)
    weak = ModelPrior(hits=6, size=20)
    strong = sim.run(values, sim.model(TRAIN), TriggerConfig(), start=TRAIN)
    result = sim.run(values, sim.model(TRAIN), TriggerConfig(), start=TRAIN, prior=weak)
    assert strong.alarms == [switch + 1]
    assert result.alarms == [switch + 5]


def test_no_retrain_is_filed_while_one_is_open() -> None:
    """The change point's retrain is open (not finished): nothing else piles up behind it."""
    switch = 120
    values = sim.seed_switch(switch + 40, switch)
    result = sim.run(values, sim.model(TRAIN), TriggerConfig(), start=TRAIN)
    assert len(result.fired) == 1
