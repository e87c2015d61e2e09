"""What Chapter 13 remembers between draws, and how one draw's score updates it (pure).

The state is small and serialisable (the actor keeps it as one JSON row in the store): the last
two windows of scored draws, the current model and its miss streak, the survivor churn of the
last retrain, the cooldown, the requests still open and how old the newest prediction pool is.
`observe` is a fold: the same scores in the same order always give the same state, and a draw
id seen before changes nothing.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from actors.trigger.scoring import DrawScore
from actors.trigger.stats import jaccard
from messages.base import Model

Action = Literal["full_pipeline", "learning_loop", "selfplay_retrain"]
"""What a trigger asks the watcher for (a PipelineRerun, a LearningLoop, a SelfplayRetrain)."""

SEEN_MEMORY = 512
"""Draw ids remembered for de-duplication in the pure fold (the store's key covers the rest)."""


class Cooldown(Model):
    """Started when a trigger fired: when, at which draw, and by which rule."""

    rule: str
    priority: int
    draw_index: int = Field(ge=0)
    at: float
    """Seconds on the actor's clock."""


class TrackerState(Model):
    """Chapter 13's memory between draws."""

    draw_index: int = Field(0, ge=0)
    """Real, non-backfill draws seen so far."""
    recent: tuple[DrawScore, ...] = ()
    """The last two windows of scored draws, oldest first (window decay compares the two)."""
    seen: tuple[str, ...] = ()
    """The last SEEN_MEMORY draw ids, so a re-delivered draw changes nothing."""
    last_draw_id: str | None = None
    """The latest real, non-backfill draw: a pool is for the draw after it."""
    model_id: str | None = None
    """The model whose pools are being scored: per-model windows start over when it changes."""
    consecutive_misses: int = Field(0, ge=0)
    draws_since_pool: int = Field(0, ge=0)
    """Real draws in a row that arrived with no pool to score."""
    ever_scored: bool = False
    top_survivors: tuple[str, ...] = ()
    """Identities of the current model's top survivors (for the churn of the next retrain)."""
    churn: float | None = None
    """1 - Jaccard of the top survivors of the last two models; None until two are known."""
    scored_since_review: int = Field(0, ge=0)
    cooldown: Cooldown | None = None
    open_actions: tuple[Action, ...] = ()
    """Actions of requests filed by a rule and not finished yet (at most one per action)."""
    pool_index: int | None = Field(None, ge=0)
    """The `draw_index` of the draw the newest registered pool was made after (it predicts the
    draw after that one); None until a pool is registered."""
    refresh_open: bool = False
    """A prediction refresh (the refresh track's step-6 request) is filed and not finished."""

    @property
    def pool_age(self) -> int:
        """Real draws since the newest pool was made: 0 while it predicts the next draw."""
        return self.draw_index - (0 if self.pool_index is None else self.pool_index)

    @property
    def next_pool(self) -> bool:
        """True when a registered pool predicts the next draw (made after the latest one)."""
        return self.pool_index is not None and self.pool_index == self.draw_index

    def model_window(self, window: int) -> tuple[DrawScore, ...]:
        """The current model's last `window` scored draws, oldest first."""
        mine = [s for s in self.recent if s.model_id == self.model_id]
        return tuple(mine[-window:])


def observe(state: TrackerState, score: DrawScore, window: int) -> TrackerState | None:
    """The state after one draw's score; None when the draw id was seen before."""
    if score.draw_id in state.seen:
        return None
    seen = (*state.seen, score.draw_id)[-SEEN_MEMORY:]
    if score.status in {"backfill", "synthetic"}:
        return state.model_copy(update={"seen": seen})
    update: dict[str, object] = {
        "seen": seen,
        "draw_index": state.draw_index + 1,
        "last_draw_id": score.draw_id,
    }
    if score.status == "no_pool":
        update["draws_since_pool"] = state.draws_since_pool + 1
        return state.model_copy(update=update)
    misses = state.consecutive_misses
    if score.model_id != state.model_id:
        update["model_id"] = score.model_id
        misses = 0
    update.update(
        recent=(*state.recent, score)[-2 * window :],
        consecutive_misses=0 if score.hit else misses + 1,
        draws_since_pool=0,
        ever_scored=True,
        scored_since_review=state.scored_since_review + 1,
    )
    return state.model_copy(update=update)


def register_model(
    state: TrackerState, model_id: str, top_survivors: tuple[str, ...]
) -> TrackerState:
    """A retrain produced a model: measure the survivor churn against the previous one."""
    if model_id == state.model_id and state.top_survivors:
        return state
    churn = 1.0 - jaccard(state.top_survivors, top_survivors) if state.top_survivors else None
    return state.model_copy(
        update={
            "model_id": model_id,
            "top_survivors": top_survivors,
            "churn": churn,
            "consecutive_misses": 0,
        }
    )


def pool_registered(
    state: TrackerState, after_draw_id: str | None, made_at: int | None
) -> TrackerState:
    """A pool was registered for the draw after `after_draw_id`.

    `made_at` is the `draw_index` of `after_draw_id` when it is known (the store's diagnostics);
    a pool made after the latest draw is fresh (age 0), a stale one of unknown age counts as one
    draw old. An older pool registered late never replaces a newer one.
    """
    if after_draw_id == state.last_draw_id:
        index = state.draw_index
    elif made_at is not None:
        index = min(made_at, max(state.draw_index - 1, 0))
    else:
        index = max(state.draw_index - 1, 0)
    if state.pool_index is not None and index <= state.pool_index:
        return state
    return state.model_copy(update={"pool_index": index})


def refresh_filed(state: TrackerState) -> TrackerState:
    """Remember an open prediction refresh."""
    return state.model_copy(update={"refresh_open": True})


def request_filed(state: TrackerState, action: Action) -> TrackerState:
    """Remember an open request of `action`."""
    if action in state.open_actions:
        return state
    return state.model_copy(update={"open_actions": (*state.open_actions, action)})


def request_finished(state: TrackerState, action: Action, *, completed: bool) -> TrackerState:
    """A request ended: it is no longer open; a completed one also ends the cooldown."""
    update: dict[str, object] = {
        "open_actions": tuple(a for a in state.open_actions if a != action)
    }
    if completed:
        update["cooldown"] = None
    return state.model_copy(update=update)


def survivor_identity(family: str, skip: int, seed: int, anchor: int) -> str:
    """A survivor's identity for churn: every field that tells two survivors apart."""
    return f"{family}/{skip}/{seed}/{anchor}"
