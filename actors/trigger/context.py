"""What the rules read from the ledger on each draw: requests, pools, model, cooldown (pure models).

The tracker state is a fold over scores only; everything else Chapter 13 decides on is in the
store and read afresh on each draw (`ledger.context`), so it can never drift from the truth
(a request a person approved, a request the watcher parked, a pool registered by a tool).
"""

from __future__ import annotations

from pydantic import Field

from actors.trigger.detector import ModelPrior
from messages.base import Model
from messages.requests import RequestType

REFRESH = "refresh"
"""The refresh track's name in Chapter 13's records (decisions, requests, audit)."""

NO_SIGNAL = "no_signal"
"""The no-signal escalation's name in Chapter 13's records."""

STRENGTH: dict[RequestType, int] = {
    "pipeline_rerun": 3,
    "learning_loop": 2,
    "selfplay_retrain": 1,
}
"""How much a request type redoes: the full pipeline covers a learning loop's steps; selfplay
only explores policies. A newer retrain of the same or a weaker type than one still open or
parked is not filed (it would only run stale behind it)."""


class OpenRequest(Model):
    """One of Chapter 13's requests that has not finished (or waits, parked, for a person)."""

    request_id: str
    action: RequestType
    rule: str
    parked: bool = False
    """Escalated by the watcher: waits for a person, makes no pool meanwhile."""
    history_from: str | None = None


class Cooldown(Model):
    """Started when a rule fired: at which draw, and by which rule."""

    rule: str
    draw_index: int = Field(ge=0)
    at: float
    """Seconds since the epoch."""


class ModelRecord(Model):
    """A model a retrain registered: its validation, regime and top survivors."""

    model_id: str
    request_id: str | None = None
    history_from: str | None = None
    """The first draw of the history it was trained on (its regime); None: all of it."""
    prior: ModelPrior = ModelPrior()
    pool_size: int | None = None
    top_survivors: tuple[str, ...] = ()
    churn: float | None = None


class NoSignal(Model):
    """Retraining did not beat chance: the loop stops spending GPU and backs off."""

    since_index: int = Field(ge=0)
    """The draw index at which the loop entered it."""
    attempts: int = Field(1, ge=1)
    """Automatic retrains that did not beat chance since then (the first included)."""
    next_index: int | None = Field(None, ge=0)
    """The draw index from which the next automatic retry may be filed (None: no retries —
    back-off switched off; a person decides)."""
    reason: str = ""
    escalation_id: str | None = None
    """The decision that showed it to a person (one per no-signal period)."""


class Context(Model):
    """The ledger's view on one draw."""

    open: tuple[OpenRequest, ...] = ()
    cooldown: Cooldown | None = None
    pool_index: int | None = None
    """The draw index the newest pool was made after (-1: before the first live draw)."""
    model: ModelRecord | None = None
    no_signal: NoSignal | None = None
    gpu_seconds: float = Field(0.0, ge=0)
    """GPU seconds of automatic retrains in the budget window (the last 24 h)."""

    def blocking(self, action: RequestType) -> OpenRequest | None:
        """An open or parked retrain (not a refresh) of `action` or a stronger type, if any."""
        for request in self.open:
            if request.rule == REFRESH:
                continue
            if STRENGTH[request.action] >= STRENGTH[action]:
                return request
        return None

    def parked_refresh(self) -> OpenRequest | None:
        """A refresh the watcher parked with a person (a newer refresh supersedes it)."""
        return next((r for r in self.open if r.rule == REFRESH and r.parked), None)

    def makes_next_pool(self) -> OpenRequest | None:
        """An open, unparked request that runs step 6 (a refresh or a retrain), if any."""
        for request in self.open:
            if not request.parked and request.action != "selfplay_retrain":
                return request
        return None
