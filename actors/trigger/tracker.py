"""What Chapter 13 remembers between draws: a fold over the draws' scores (pure).

The state is small and serialisable (the actor keeps it as one JSON row in the store): the last
two windows of scored draws, the current model and its miss streak, the change detector of the
model in force. `observe` is a fold: the same scores in the same order (with the same model
priors) always give the same state, and a draw id seen before changes nothing. What is not a
score — requests filed and open, pools registered, models, cooldowns, the no-signal state — is
read from the ledger on each draw (`ledger.context`), never kept here.
"""

from __future__ import annotations

from pydantic import Field

from actors.trigger.detector import CusumState, ModelPrior, step
from actors.trigger.scoring import DrawScore
from messages.base import Model
from messages.requests import RequestType

Action = RequestType
"""What a trigger asks the watcher for: the request type (one vocabulary, messages/requests)."""

SEEN_MEMORY = 512
"""Draw ids remembered for de-duplication in the pure fold (the store's key covers the rest)."""


class TrackerState(Model):
    """Chapter 13's memory between draws: a fold over the scores."""

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
    scored_since_review: int = Field(0, ge=0)
    detector: CusumState = CusumState()
    """The change detector of the model in force (detector.py)."""

    def model_window(self, window: int) -> tuple[DrawScore, ...]:
        """The current model's last `window` scored draws, oldest first."""
        mine = [s for s in self.recent if s.model_id == self.model_id]
        return tuple(mine[-window:])


def observe(
    state: TrackerState, score: DrawScore, window: int, *, prior: ModelPrior, h: float
) -> TrackerState | None:
    """The state after one draw's score; None when the draw id was seen before.

    Args:
        prior: the validation of the score's model (its pool's `model_id`), for the detector.
        h: the detector's threshold (detector.threshold of the configured ARL0).
    """
    if score.draw_id in state.seen:
        return None
    seen = (*state.seen, score.draw_id)[-SEEN_MEMORY:]
    if score.status in {"backfill", "synthetic"}:
        # Never evidence: a backfilled or synthetic draw is not a prediction that was tested.
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
        detector=step(
            state.detector,
            model_id=score.model_id,
            prior=prior,
            hit=bool(score.hit),
            chance=score.chance or 0.0,
            draw_id=score.draw_id,
            draw_index=state.draw_index + 1,
            h=h,
        ),
    )
    return state.model_copy(update=update)


def review_started(state: TrackerState) -> TrackerState:
    """A rule fired: the advisor's review counter starts over."""
    return state.model_copy(update={"scored_since_review": 0})


def survivor_identity(family: str, skip: int, seed: int, anchor: int) -> str:
    """A survivor's identity for churn: every field that tells two survivors apart."""
    return f"{family}/{skip}/{seed}/{anchor}"
