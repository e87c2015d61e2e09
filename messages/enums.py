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


class AdvisorFlag(StrEnum):
    """The diagnostic flags the Chapter 13 advisor reads (one vocabulary for the trigger, the
    watcher's pre-validation and the heuristic advisor)."""

    DATA_QUALITY = "data_quality"
    CHANGE_DETECTED = "change_detected"
    NO_SIGNAL_RETRY = "no_signal_retry"
    CONFIDENCE_DRIFT = "confidence_drift"
    SCHEDULED_RETRAIN = "scheduled_retrain"


RULE_FLAGS: dict[str, AdvisorFlag] = {
    "change_point": AdvisorFlag.CHANGE_DETECTED,
    "no_signal_retry": AdvisorFlag.NO_SIGNAL_RETRY,
    "confidence_drift": AdvisorFlag.CONFIDENCE_DRIFT,
    "n_draws": AdvisorFlag.SCHEDULED_RETRAIN,
    "llm_proposed": AdvisorFlag.SCHEDULED_RETRAIN,
}
"""Chapter 13's rule -> the flag it raises for the advisor."""

FLAG_EVIDENCE: dict[AdvisorFlag, str] = {
    AdvisorFlag.CHANGE_DETECTED: "change_confidence",
    AdvisorFlag.NO_SIGNAL_RETRY: "identification_confidence",
    AdvisorFlag.CONFIDENCE_DRIFT: "drift_confidence",
    AdvisorFlag.SCHEDULED_RETRAIN: "identification_confidence",
}
"""The evidence figure (in [0, 1]) each flag's confidence is read from: 1 - e^-S for a change,
1 - expected false positives for an identification, 1 - p for a drift."""
