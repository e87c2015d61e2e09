"""The Chapter 13 conversation: prediction pools to score, and selfplay candidates to judge.

The TriggerActor registers prediction pools itself when the watcher reports a completed step 6;
`RegisterPool` lets another tool (or a test) hand one over directly. `CandidateEmitted` is how
the watcher passes on a selfplay candidate: only Chapter 13 may promote it, after shadow
evaluation on real draws.
"""

from __future__ import annotations

from typing import Literal

from messages.artifacts import PolicyCandidate, PredictionPool
from messages.base import Message


class RegisterPool(Message):
    """Register a prediction pool for the draw after its `last_draw_id` (reply: PoolRegistered)."""

    kind: Literal["register_pool"] = "register_pool"
    pool: PredictionPool
    request_id: str | None = None
    """The request whose step 6 produced it, if any."""


class PoolRegistered(Message):
    """A pool was registered (or was already): it will be scored against the next draw."""

    kind: Literal["pool_registered"] = "pool_registered"
    pool_id: str
    after_draw_id: str | None
    """The last draw the pool has seen; it predicts the real draw that follows."""
    stale: bool
    """True when that next draw had already arrived: the pool can never be scored."""


class CandidateEmitted(Message):
    """Watcher -> Trigger: selfplay produced a policy candidate (told, never asked)."""

    kind: Literal["candidate_emitted"] = "candidate_emitted"
    candidate: PolicyCandidate
    run_id: str
    request_id: str
