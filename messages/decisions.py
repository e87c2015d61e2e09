"""Decision models: what the LLM (or the heuristic advisor) answers, one model per grammar.

Each model is the single source of truth for its grammar: `python -m grammars.generate` writes
`grammars/<name>.gbnf` from the model's JSON schema, so keys, enum values, number ranges and length
bounds cannot drift apart (a test fails when a file is stale).

Free text is printable ASCII without `"` and `\\` (`Text`): the grammar then needs no escapes, one
character is one byte, and every answer has a small, computable worst-case size (ARCHITECTURE §9).
"""

from __future__ import annotations

import json
from enum import StrEnum
from typing import TYPE_CHECKING, Annotated, cast

from pydantic import Field, JsonValue, StringConstraints

from messages.base import Model
from messages.enums import LearningLoopScope

if TYPE_CHECKING:
    from collections.abc import Mapping

TEXT_PATTERN = r"^[ !#-\[\]-~]*$"
"""Printable ASCII (0x20-0x7e) except `"` and `\\`: what every free-text field may hold."""

NAME_PATTERN = r"^[a-z][a-z0-9_]{0,31}$"
"""A parameter name: lowercase snake case, 1 to 32 characters."""

NUMBER_LIMIT = 1e9
"""Parameter values lie strictly between -1e9 and 1e9: nine integer digits in the grammar."""

Confidence = Annotated[float, Field(ge=0.0, le=1.0)]
"""A probability-like confidence between 0 and 1."""

ParamName = Annotated[str, StringConstraints(pattern=NAME_PATTERN)]
"""A parameter name (see NAME_PATTERN)."""

ParamNumber = Annotated[float, Field(gt=-NUMBER_LIMIT, lt=NUMBER_LIMIT, allow_inf_nan=False)]
"""A real parameter value: negative, fractional and >= 10 all allowed, bounded by NUMBER_LIMIT."""


Reasoning = Annotated[str, StringConstraints(max_length=400, pattern=TEXT_PATTERN)]
"""Why the answer is what it is: ~80 words, enough for a verdict, short enough for the budget."""

ShortText = Annotated[str, StringConstraints(max_length=160, pattern=TEXT_PATTERN)]
"""One sentence: a retry reason, a rationale, a warning."""

ParamText = Annotated[str, StringConstraints(max_length=32, pattern=TEXT_PATTERN)]
"""A parameter value given as a word (a mode, a window name) rather than a number."""


class MetricThreshold(Model):
    """A success threshold on one reported metric: the value must be >= min and <= max."""

    metric: str
    min: float | None = None
    max: float | None = None

    def passes(self, value: float) -> bool:
        """True when `value` lies within the bounds."""
        return (self.min is None or value >= self.min) and (self.max is None or value <= self.max)


class StepAction(StrEnum):
    """What the watcher should do after a step: proceed, retry it, or stop for a person."""

    PROCEED = "proceed"
    RETRY = "retry"
    ESCALATE = "escalate"


class StepDecision(Model):
    """The verdict on one step's result (grammar `agent_decision`)."""

    success_condition_met: bool
    confidence: Confidence
    reasoning: Reasoning
    recommended_action: StepAction
    """The one field the watcher acts on: there is no other action field to confuse it with."""
    retry_reason: ShortText | None = None
    suggested_params: dict[ParamName, ParamNumber | ParamText] = Field(
        default_factory=dict, max_length=6
    )
    """Parameter changes for a retry; at most 6 so the answer fits its token budget."""
    warnings: tuple[ShortText, ...] = Field(default=(), max_length=4)


class FailureMode(StrEnum):
    """The diagnosed cause of a prediction failure (Chapter 13)."""

    CALIBRATION_DRIFT = "calibration_drift"
    FEATURE_RELEVANCE = "feature_relevance"
    WINDOW_MISALIGNMENT = "window_misalignment"
    RANDOM_VARIANCE = "random_variance"
    REGIME_SHIFT = "regime_shift"
    MODEL_OVERFIT = "model_overfit"
    DATA_QUALITY = "data_quality"
    NONE_DETECTED = "none_detected"


class Chapter13Action(StrEnum):
    """What Chapter 13 proposes: retrain, wait for more draws, ask a person, or start over."""

    RETRAIN = "RETRAIN"
    WAIT = "WAIT"
    ESCALATE = "ESCALATE"
    FULL_RESET = "FULL_RESET"


class RiskLevel(StrEnum):
    """How much harm the proposal could do if it is wrong."""

    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"


class ParameterProposal(Model):
    """One proposed parameter change; the acceptance rules judge its size against the policy."""

    parameter: ParamName
    current_value: ParamNumber | None = None
    """The value the proposer believes is active; None when it does not know."""
    proposed_value: ParamNumber
    rationale: ShortText


class Chapter13Proposal(Model):
    """A Chapter 13 proposal after a diagnosed failure (grammar `chapter_13`)."""

    analysis_summary: Reasoning
    failure_mode: FailureMode
    confidence: Confidence
    recommended_action: Chapter13Action
    retrain_scope: LearningLoopScope | None = None
    """Which learning-loop steps a RETRAIN runs: the dispatcher's own enum. Ignored otherwise."""
    parameter_proposals: tuple[ParameterProposal, ...] = Field(default=(), max_length=3)
    risk_level: RiskLevel
    requires_human_review: bool
    alternative_hypothesis: ShortText | None = None


class SieveQuality(StrEnum):
    """How convincing the sieve's surviving candidates are."""

    STRONG = "strong"
    PLAUSIBLE = "plausible"
    WEAK = "weak"
    NOISE = "noise"


class SurvivorCount(StrEnum):
    """Whether the sieve kept a workable number of candidates."""

    TOO_FEW = "too_few"
    ADEQUATE = "adequate"
    TOO_MANY = "too_many"


class SieveAnalysis(Model):
    """The verdict on a PRNG sieve run (grammar `sieve_analysis`)."""

    summary: Reasoning
    candidate_quality: SieveQuality
    survivor_count: SurvivorCount
    confidence: Confidence
    recommended_action: StepAction
    suggested_params: dict[ParamName, ParamNumber] = Field(default_factory=dict, max_length=4)
    """Sieve settings to change on a retry (thresholds, window sizes); at most 4."""
    warnings: tuple[ShortText, ...] = Field(default=(), max_length=3)


class AdjustmentAction(StrEnum):
    """Whether to apply a set of parameter adjustments, keep the current ones, or ask a person."""

    APPLY = "apply"
    HOLD = "hold"
    ESCALATE = "escalate"


class ParameterAdjustment(Model):
    """Proposed parameter adjustments for the next run (grammar `parameter_adjustment`)."""

    adjustments: tuple[ParameterProposal, ...] = Field(default=(), max_length=4)
    rationale: Reasoning
    confidence: Confidence
    recommended_action: AdjustmentAction


class GenericJson(Model):
    """Free JSON (grammar `json_generic`): any bounded JSON object, kept under `data`.

    The grammar makes the LLM write the object itself; `parse_decision` wraps it here. Nothing acts
    on free JSON, so it can never be taken as permission to proceed.
    """

    data: dict[str, JsonValue]


DecisionModel = StepDecision | Chapter13Proposal | SieveAnalysis | ParameterAdjustment | GenericJson
"""Any answer the LLMActor can return."""

GRAMMAR_MODELS: Mapping[str, type[Model]] = {
    "agent_decision": StepDecision,
    "chapter_13": Chapter13Proposal,
    "json_generic": GenericJson,
    "parameter_adjustment": ParameterAdjustment,
    "sieve_analysis": SieveAnalysis,
}
"""Grammar name -> the model its answers parse into (one grammar file per entry)."""


def parse_decision(grammar_name: str, text: str) -> DecisionModel:
    """Parse the LLM's raw text for `grammar_name` into its model.

    Raises:
        KeyError: the grammar name is unknown.
        ValueError: the text is not valid JSON for the model (pydantic's ValidationError is one).
    """
    model = GRAMMAR_MODELS[grammar_name]
    if model is GenericJson:
        data = json.loads(text, parse_constant=_refuse_constant)
        if not isinstance(data, dict):
            msg = f"json_generic answers must be a JSON object, got {type(data).__name__}"
            raise ValueError(msg)
        return GenericJson(data=data)
    # GRAMMAR_MODELS holds only DecisionModel members, so the cast is exact.
    return cast("DecisionModel", model.model_validate_json(text))


def _refuse_constant(name: str) -> None:
    """Refuse NaN and Infinity, which Python's json accepts but JSON does not."""
    msg = f"{name} is not a JSON number"
    raise ValueError(msg)
