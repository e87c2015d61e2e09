"""Enumerations shared by several conversations, defined once so they can never drift apart."""

from __future__ import annotations

from enum import StrEnum


class LearningLoopScope(StrEnum):
    """Which steps a learning loop runs: one enum for Chapter 13, the grammar and the dispatcher."""

    STEPS_3_5_6 = "steps_3_5_6"
    STEPS_5_6 = "steps_5_6"
    STEP_6_ONLY = "step_6_only"

    @property
    def steps(self) -> tuple[int, ...]:
        """The explicit, ordered step list of this scope (step 4 never runs unless listed)."""
        return _SCOPE_STEPS[self]


_SCOPE_STEPS: dict[LearningLoopScope, tuple[int, ...]] = {
    LearningLoopScope.STEPS_3_5_6: (3, 5, 6),
    LearningLoopScope.STEPS_5_6: (5, 6),
    LearningLoopScope.STEP_6_ONLY: (6,),
}
