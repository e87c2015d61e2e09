"""The tracker: a fold over scores only (idempotent, order-sensitive, nothing else in it)."""

from __future__ import annotations

import math

from hypothesis import given, settings
from hypothesis import strategies as st

from actors.trigger.detector import ModelPrior
from actors.trigger.scoring import DrawScore
from actors.trigger.tracker import TrackerState, observe

PRIOR = ModelPrior(hits=20, size=20)
H = math.log(10_000)


def score(i: int, status: str, hit: bool | None = None, model: str = "m1") -> DrawScore:
    """A score of draw `i` (a scored one has a pool of one value out of 1,000)."""
    if status != "scored":
        return DrawScore.model_validate({"draw_id": f"d{i}", "status": status, "value": 1})
    return DrawScore(draw_id=f"d{i}", status="scored", value=1, hit=hit, model_id=model,
                     chance=0.001, pool_mass=1.0)  # fmt: skip


def fold(scores: list[DrawScore]) -> TrackerState:
    state = TrackerState()
    for s in scores:
        new = observe(state, s, 20, prior=PRIOR, h=H)
        state = state if new is None else new
    return state


statuses = st.sampled_from(["scored", "no_pool", "backfill", "synthetic"])
events = st.lists(st.tuples(statuses, st.booleans()), max_size=80)


@settings(max_examples=200, deadline=None)
@given(events=events)
def test_the_fold_is_deterministic_and_redelivery_changes_nothing(
    events: list[tuple[str, bool]],
) -> None:
    """The same scores give the same state; every score delivered twice gives it too."""
    scores = [score(i, status, hit) for i, (status, hit) in enumerate(events)]
    once = fold(scores)
    assert fold(scores) == once
    twice = fold([s for s in scores for _ in (0, 1)])
    assert twice == once


@settings(max_examples=200, deadline=None)
@given(events=events)
def test_backfill_and_synthetic_draws_are_never_evidence(events: list[tuple[str, bool]]) -> None:
    """Backfilled and synthetic draws change neither the draw count nor the detector."""
    scores = [score(i, status, hit) for i, (status, hit) in enumerate(events)]
    live = [s for s in scores if s.status in {"scored", "no_pool"}]
    full, only_live = fold(scores), fold(live)
    assert full.draw_index == only_live.draw_index == len(live)
    assert full.detector == only_live.detector
    assert full.recent == only_live.recent


def test_a_new_model_restarts_its_window_streak_and_detector() -> None:
    """Scores of another model start its own miss streak and its own detector."""
    state = fold([score(0, "scored", True), score(1, "scored", False), score(2, "scored", False)])
    assert state.consecutive_misses == 2
    assert state.detector.statistic > 0
    new = observe(state, score(3, "scored", True, model="m2"), 20, prior=PRIOR, h=H)
    assert new is not None
    assert (new.model_id, new.consecutive_misses, new.detector.model_id) == ("m2", 0, "m2")
    assert new.detector.statistic == 0
    assert new.model_window(20) == (score(3, "scored", True, model="m2"),)


def test_draws_with_no_pool_are_counted_not_scored() -> None:
    """A draw with no pool counts as a real draw, extends the no-pool run, is no miss."""
    state = fold([score(0, "no_pool"), score(1, "no_pool")])
    assert (state.draw_index, state.draws_since_pool, state.consecutive_misses) == (2, 2, 0)
    assert state.recent == ()
