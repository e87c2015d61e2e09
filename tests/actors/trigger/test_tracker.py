"""The tracker's pool bookkeeping and the refresh track, as properties over random event runs."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from actors.config import TriggerConfig
from actors.trigger.rules import STEP_6_ACTIONS, refresh_verdict
from actors.trigger.scoring import DrawScore
from actors.trigger.tracker import (
    Cooldown,
    TrackerState,
    observe,
    pool_registered,
    refresh_filed,
    request_filed,
    request_finished,
)

WINDOW = 10


def live(i: int, *, scored: bool, hit: bool = True) -> DrawScore:
    """Draw `i`'s score: a hit or miss against a pool of model m1, or no pool at all."""
    if not scored:
        return DrawScore(draw_id=f"d{i}", status="no_pool", value=1)
    return DrawScore(
        draw_id=f"d{i}", status="scored", value=1, hit=hit, pool_id=f"p{i}", model_id="m1"
    )


EVENTS = st.lists(
    st.one_of(
        st.tuples(st.just("draw"), st.booleans()),
        st.tuples(st.just("fresh_pool"), st.none()),
        st.tuples(st.just("stale_pool"), st.integers(0, 5)),
        st.tuples(st.just("open"), st.sampled_from(["full_pipeline", "learning_loop",
                                                     "selfplay_retrain"])),
        st.tuples(st.just("close"), st.sampled_from(["full_pipeline", "learning_loop",
                                                      "selfplay_retrain"])),
        st.tuples(st.just("refresh"), st.none()),
        st.tuples(st.just("refresh_done"), st.none()),
    ),
    max_size=60,
)  # fmt: skip


def step(state: TrackerState, event: tuple[str, Any], i: int) -> TrackerState:
    """Apply one event the actor can see to the state."""
    kind, arg = event
    if kind == "draw":
        scored = state.next_pool
        return observe(state, live(i, scored=scored, hit=bool(arg)), WINDOW) or state
    if kind == "fresh_pool":
        return pool_registered(state, state.last_draw_id, None)
    if kind == "stale_pool":
        made_at = max(state.draw_index - 1 - arg, 0)
        return pool_registered(state, f"old{made_at}", made_at)
    if kind == "open":
        return request_filed(state, arg)
    if kind == "close":
        return request_finished(state, arg, completed=True)
    if kind == "refresh":
        return refresh_filed(state)
    return state.model_copy(update={"refresh_open": False})


@settings(max_examples=150, deadline=None)
@given(EVENTS, st.integers(1, 5))
def test_pool_age_and_refresh_invariants(events: list[tuple[str, Any]], n: int) -> None:
    """Over any run of events: the pool age is never negative and the newest pool never goes
    back; a refresh is due exactly when a model exists, the newest pool is at least N draws
    old and nothing that runs step 6 is open — and no cooldown changes that verdict."""
    cfg = TriggerConfig(retrain_after_n_draws=n)
    state = TrackerState(model_id="m1")
    for i, event in enumerate(events):
        before = state.pool_index
        state = step(state, event, i)
        assert state.pool_age >= 0
        if before is not None:
            assert state.pool_index is not None
            assert state.pool_index >= before
        assert state.next_pool == (state.pool_index == state.draw_index)
        verdict = refresh_verdict(state, cfg)
        expected = (
            not state.next_pool
            and state.pool_age >= n
            and not state.refresh_open
            and not STEP_6_ACTIONS.intersection(state.open_actions)
        )
        assert verdict.due is expected, (verdict.reason, state)
        cooled = state.model_copy(
            update={"cooldown": Cooldown(rule="regime_shift", priority=6, draw_index=i, at=0.0)}
        )
        assert refresh_verdict(cooled, cfg).due is verdict.due


@settings(max_examples=100, deadline=None)
@given(st.integers(1, 6), st.lists(st.booleans(), min_size=1, max_size=80))
def test_refreshes_done_before_the_next_draw_leave_at_most_n_minus_1_unscored(
    n: int, hits: list[bool]
) -> None:
    """When every due refresh completes before the next draw, a pool-less run of draws is at
    most N - 1 long: the predictions never go stale for good (the loop keeps seeing)."""
    cfg = TriggerConfig(retrain_after_n_draws=n)
    state = pool_registered(TrackerState(model_id="m1"), None, None)
    run = longest = 0
    for i, hit in enumerate(hits):
        scored = state.next_pool
        state = observe(state, live(i, scored=scored, hit=hit), WINDOW) or state
        run = 0 if scored else run + 1
        longest = max(longest, run)
        if refresh_verdict(state, cfg).due:
            state = pool_registered(refresh_filed(state), state.last_draw_id, None)
            state = state.model_copy(update={"refresh_open": False})
    assert longest <= n - 1


def test_a_stale_pool_counts_its_age_from_the_draw_it_was_made_after() -> None:
    """A pool made after draw index 7, registered at index 10, is 3 draws old; one of unknown
    origin counts as one draw old; a late, older pool never replaces a newer one."""
    state = TrackerState(draw_index=10, last_draw_id="d10", model_id="m1")
    assert pool_registered(state, "d7", 7).pool_age == 3
    assert pool_registered(state, "elsewhere", None).pool_age == 1
    fresh = pool_registered(state, "d10", None)
    assert fresh.next_pool
    assert pool_registered(fresh, "d7", 7) == fresh
