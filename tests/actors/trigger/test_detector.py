"""The change detector against its own maths: false-alarm rate, detection delay, change point."""

from __future__ import annotations

import math

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from actors.trigger.detector import (
    CusumState,
    ModelPrior,
    confidence,
    in_control_rate,
    llr,
    misses_to_alarm,
    step,
    threshold,
)


def _run(
    hits: list[bool], prior: ModelPrior, q: float, h: float, *, model: str = "m"
) -> CusumState:
    state = CusumState()
    for i, hit in enumerate(hits):
        state = step(
            state, model_id=model, prior=prior, hit=hit, chance=q, draw_id=f"d{i}",
            draw_index=i, h=h,
        )  # fmt: skip
    return state


def _run_length(rng: np.random.Generator, p: float, prior: ModelPrior, q: float, h: float) -> int:
    """Draws until the alarm on an in-control stream of hit probability p (capped)."""
    state = CusumState()
    for i in range(200_000):
        state = step(
            state, model_id="m", prior=prior, hit=bool(rng.random() < p), chance=q,
            draw_id=str(i), draw_index=i, h=h,
        )  # fmt: skip
        if state.alarm:
            return i + 1
    return 200_000


def test_threshold_is_log_arl0() -> None:
    """h = ln(ARL0): 10,000 draws to a false alarm gives h = 9.21 nats."""
    assert threshold(10_000) == math.log(10_000)


def test_average_run_length_to_false_alarm_is_at_least_arl0() -> None:
    """On in-control streams the mean run length to a false alarm is >= ARL0 (Lorden's bound).

    ARL0 = 100 keeps the simulation short; a model at p0 = 0.9 validated on 1,000 draws, so p0
    is known. 300 runs: the mean's standard error is about ARL/17, so the bound is tested with
    room (the bound is not tight: the true ARL is above it).
    """
    rng = np.random.default_rng(20261201)
    prior = ModelPrior(hits=900, size=1000)
    h = threshold(100)
    lengths = [_run_length(rng, 0.9, prior, 0.01, h) for _ in range(300)]
    assert np.mean(lengths) >= 100


def test_detection_delay_of_a_good_model_is_three_draws_or_fewer() -> None:
    """A model validated 20/20 that misses from the change on: the alarm comes within 3 draws."""
    prior = ModelPrior(hits=20, size=20)
    h = threshold(10_000)
    state = _run([True] * 30 + [False] * 10, prior, 0.004, h)
    assert state.alarm
    assert state.alarm_index is not None
    assert state.alarm_index - 30 + 1 <= 3


def test_change_point_is_the_first_miss_of_the_excursion() -> None:
    """The estimated change point is the first draw after the last zero of the statistic."""
    prior = ModelPrior(hits=50, size=50)
    state = _run([True] * 40 + [False] * 5, prior, 0.004, threshold(10_000))
    assert state.change_point == "d40"
    assert state.change_point_index == 40


def test_one_miss_of_a_perfect_model_outweighs_three_of_a_weak_one() -> None:
    """A near-perfect model's one miss is strong evidence; a 30 % model's three misses are not."""
    strong = llr(False, in_control_rate(ModelPrior(hits=200, size=200), CusumState()), 0.004)
    weak_p0 = in_control_rate(ModelPrior(hits=60, size=200), CusumState())
    weak = 3 * llr(False, weak_p0, 0.004)
    assert strong > weak
    h = threshold(10_000)
    assert misses_to_alarm(weak_p0, 0.004, h) > 20
    assert misses_to_alarm(0.995, 0.004, h) <= 2


def test_alarm_latches_for_the_model_and_a_new_model_starts_over() -> None:
    """After an alarm the same model raises no second one; a new model starts from zero."""
    prior = ModelPrior(hits=20, size=20)
    h = threshold(10_000)
    state = _run([True] * 5 + [False] * 10, prior, 0.004, h)
    assert state.alarm
    after = step(
        state, model_id="m", prior=prior, hit=False, chance=0.004, draw_id="x", draw_index=99,
        h=h,
    )  # fmt: skip
    assert after == state
    fresh = step(
        state, model_id="m2", prior=prior, hit=True, chance=0.004, draw_id="y", draw_index=100,
        h=h,
    )  # fmt: skip
    assert not fresh.alarm
    assert fresh.statistic == 0


def test_a_model_at_chance_is_never_tested() -> None:
    """A model whose validated rate does not beat chance carries no signal: S stays at 0."""
    prior = ModelPrior(hits=0, size=20)
    state = _run([False] * 500, prior, 0.05, threshold(10_000))
    assert not state.alarm
    assert state.statistic == 0


@settings(max_examples=200, deadline=None)
@given(
    hits=st.lists(st.booleans(), max_size=200),
    val_hits=st.integers(0, 50),
    q=st.floats(0.001, 0.5),
)
def test_statistic_is_never_negative_and_alarm_only_past_the_threshold(
    hits: list[bool], val_hits: int, q: float
) -> None:
    """For any stream: S >= 0 always, and an alarm means S reached h."""
    prior = ModelPrior(hits=val_hits, size=50)
    h = threshold(10_000)
    state = _run(hits, prior, q, h)
    assert state.statistic >= 0
    if state.alarm:
        assert state.statistic >= h
        assert state.change_point_index is not None
        assert state.alarm_index is not None
        assert state.change_point_index <= state.alarm_index
    else:
        assert state.statistic < h


def test_confidence_grows_with_the_evidence() -> None:
    """1 - e^-S: 0 without evidence, at least 1 - 1/ARL0 at an alarm."""
    assert confidence(0.0) == 0.0
    assert confidence(threshold(10_000)) >= 1 - 1 / 10_000 - 1e-12
