"""The heuristic advisor: table-driven over thresholds and diagnostic flags."""

from __future__ import annotations

from typing import Any

import pytest

from actors.llm.heuristic import (
    ESCALATE_CONFIDENCE,
    PROCEED_CONFIDENCE,
    RETRY_CONFIDENCE,
    clean_text,
    heuristic_decision,
    metric_number,
)
from grammars import GRAMMAR_NAMES, UnknownGrammarError
from messages.decisions import (
    GRAMMAR_MODELS,
    AdjustmentAction,
    Chapter13Action,
    Chapter13Proposal,
    FailureMode,
    GenericJson,
    MetricThreshold,
    ParameterAdjustment,
    RiskLevel,
    SieveAnalysis,
    SieveQuality,
    StepAction,
    StepDecision,
    SurvivorCount,
)
from messages.enums import LearningLoopScope

ACC = MetricThreshold(metric="accuracy", min=0.9)
LOSS = MetricThreshold(metric="loss", max=0.5)
BAND = MetricThreshold(metric="ratio", min=0.2, max=0.4)

# (metrics, thresholds, action, confidence, success)
STEP_TABLE: list[tuple[dict[str, Any], list[MetricThreshold], StepAction, float, bool]] = [
    ({"accuracy": 0.95, "loss": 0.1}, [ACC, LOSS], StepAction.PROCEED, PROCEED_CONFIDENCE, True),
    ({"accuracy": 0.9}, [ACC], StepAction.PROCEED, PROCEED_CONFIDENCE, True),  # bound inclusive
    ({"accuracy": "0.93"}, [ACC], StepAction.PROCEED, PROCEED_CONFIDENCE, True),  # numeric text
    ({"accuracy": 0.85, "loss": 0.1}, [ACC, LOSS], StepAction.RETRY, RETRY_CONFIDENCE, False),
    ({"accuracy": 0.95, "loss": 0.6}, [ACC, LOSS], StepAction.RETRY, RETRY_CONFIDENCE, False),
    ({"ratio": 0.45}, [BAND], StepAction.RETRY, RETRY_CONFIDENCE, False),  # 0.05 < 0.5 * 0.2
    ({"ratio": 0.55}, [BAND], StepAction.ESCALATE, ESCALATE_CONFIDENCE, False),  # 0.15 > 0.1
    ({"accuracy": 0.4}, [ACC], StepAction.ESCALATE, ESCALATE_CONFIDENCE, False),  # miss 0.5 > 0.45
    ({"loss": 0.9}, [LOSS], StepAction.ESCALATE, ESCALATE_CONFIDENCE, False),  # miss 0.4 > 0.25
    ({"loss": 0.1}, [ACC, LOSS], StepAction.ESCALATE, ESCALATE_CONFIDENCE, False),  # missing
    ({"accuracy": "high"}, [ACC], StepAction.ESCALATE, ESCALATE_CONFIDENCE, False),  # a word
    ({"accuracy": float("nan")}, [ACC], StepAction.ESCALATE, ESCALATE_CONFIDENCE, False),
    ({"accuracy": 0.95}, [], StepAction.ESCALATE, ESCALATE_CONFIDENCE, False),  # nothing to judge
    ({"ok": True}, [MetricThreshold(metric="ok", min=1)], StepAction.PROCEED, 0.75, True),
    ({"ok": False}, [MetricThreshold(metric="ok", min=1)], StepAction.ESCALATE, 0.3, False),
]


@pytest.mark.parametrize(("metrics", "thresholds", "action", "confidence", "success"), STEP_TABLE)
def test_step_decision_table(
    metrics: dict[str, Any],
    thresholds: list[MetricThreshold],
    action: StepAction,
    confidence: float,
    success: bool,
) -> None:
    """Thresholds decide proceed / retry / escalate with fixed confidences."""
    answer = heuristic_decision("agent_decision", metrics, thresholds)
    assert isinstance(answer, StepDecision)
    assert answer.recommended_action is action
    assert answer.confidence == confidence
    assert answer.success_condition_met is success
    assert (answer.retry_reason is not None) is (action is StepAction.RETRY)


def test_confidences_sit_on_the_right_side_of_the_watcher_rules() -> None:
    """Proceed clears auto-proceed (0.70); escalate sits below the escalate line (0.50)."""
    assert PROCEED_CONFIDENCE >= 0.70
    assert 0.50 <= RETRY_CONFIDENCE < 0.70
    assert ESCALATE_CONFIDENCE < 0.50


def test_reasons_name_the_failing_metric() -> None:
    """A retry says which metric missed which bound."""
    answer = heuristic_decision("agent_decision", {"accuracy": 0.85}, [ACC])
    assert isinstance(answer, StepDecision)
    assert answer.retry_reason == "accuracy=0.85 below min 0.9"
    assert answer.warnings == ("accuracy=0.85 below min 0.9",)


SURVIVORS = MetricThreshold(metric="survivors", min=10, max=1000)


@pytest.mark.parametrize(
    ("metrics", "action", "quality", "count"),
    [
        ({"survivors": 50}, StepAction.PROCEED, SieveQuality.PLAUSIBLE, SurvivorCount.ADEQUATE),
        ({"survivors": 8}, StepAction.RETRY, SieveQuality.WEAK, SurvivorCount.TOO_FEW),
        ({"survivors": 1100}, StepAction.RETRY, SieveQuality.WEAK, SurvivorCount.TOO_MANY),
        ({"survivors": 5000}, StepAction.ESCALATE, SieveQuality.NOISE, SurvivorCount.TOO_MANY),
        ({}, StepAction.ESCALATE, SieveQuality.NOISE, SurvivorCount.ADEQUATE),
    ],
)
def test_sieve_analysis_table(
    metrics: dict[str, Any], action: StepAction, quality: SieveQuality, count: SurvivorCount
) -> None:
    """Sieve answers follow the thresholds; a survivor threshold sets the count verdict."""
    answer = heuristic_decision("sieve_analysis", metrics, [SURVIVORS])
    assert isinstance(answer, SieveAnalysis)
    assert (answer.recommended_action, answer.candidate_quality) == (action, quality)
    assert answer.survivor_count is count


@pytest.mark.parametrize(
    ("metrics", "action"),
    [
        ({"accuracy": 0.95}, AdjustmentAction.HOLD),
        ({"accuracy": 0.85}, AdjustmentAction.HOLD),
        ({}, AdjustmentAction.ESCALATE),
    ],
)
def test_parameter_adjustment_never_invents_values(
    metrics: dict[str, Any], action: AdjustmentAction
) -> None:
    """The heuristic holds the parameters (or escalates); it never applies changes."""
    answer = heuristic_decision("parameter_adjustment", metrics, [ACC])
    assert isinstance(answer, ParameterAdjustment)
    assert answer.adjustments == ()
    assert answer.recommended_action is action


# (metrics, mode, action, scope, risk, review)
CH13_TABLE: list[
    tuple[
        dict[str, Any],
        FailureMode,
        Chapter13Action,
        LearningLoopScope | None,
        RiskLevel,
        bool,
    ]
] = [
    ({"change_detected": 1, "change_confidence": 0.9999}, FailureMode.REGIME_SHIFT,
     Chapter13Action.RETRAIN, None, RiskLevel.LOW, False),
    ({"change_detected": 1, "change_confidence": 0.9999, "consecutive_misses": 12},
     FailureMode.REGIME_SHIFT, Chapter13Action.RETRAIN, None, RiskLevel.LOW, False),
    ({"no_signal_retry": 1, "identification_confidence": 0.99}, FailureMode.FEATURE_RELEVANCE,
     Chapter13Action.RETRAIN, None, RiskLevel.LOW, False),
    ({"scheduled_retrain": 1, "identification_confidence": 1.0}, FailureMode.NONE_DETECTED,
     Chapter13Action.RETRAIN, None, RiskLevel.LOW, False),
    ({"confidence_drift": 1, "drift_confidence": 0.995}, FailureMode.CALIBRATION_DRIFT,
     Chapter13Action.RETRAIN, LearningLoopScope.STEP_6_ONLY, RiskLevel.LOW, False),
    ({"consecutive_misses": 4, "change_detected": 0}, FailureMode.NONE_DETECTED,
     Chapter13Action.WAIT, None, RiskLevel.LOW, False),
    ({"data_quality": True, "change_detected": True}, FailureMode.DATA_QUALITY,
     Chapter13Action.ESCALATE, None, RiskLevel.HIGH, True),
    ({"accuracy": 0.2}, FailureMode.NONE_DETECTED, Chapter13Action.ESCALATE,
     None, RiskLevel.MEDIUM, True),
]  # fmt: skip


@pytest.mark.parametrize(("metrics", "mode", "action", "scope", "risk", "review"), CH13_TABLE)
def test_chapter_13_table(
    metrics: dict[str, Any],
    mode: FailureMode,
    action: Chapter13Action,
    scope: LearningLoopScope | None,
    risk: RiskLevel,
    review: bool,
) -> None:
    """Diagnostic flags map to failure mode, action, scope (the dispatcher's enum) and risk."""
    answer = heuristic_decision("chapter_13", metrics, [])
    assert isinstance(answer, Chapter13Proposal)
    assert (answer.failure_mode, answer.recommended_action) == (mode, action)
    assert answer.retrain_scope is scope
    assert (answer.risk_level, answer.requires_human_review) == (risk, review)


def test_second_flag_becomes_the_alternative_hypothesis() -> None:
    """With two flags set, the lower-priority one is named as the alternative."""
    answer = heuristic_decision("chapter_13", {"change_detected": 1, "confidence_drift": 1}, [])
    assert isinstance(answer, Chapter13Proposal)
    assert answer.alternative_hypothesis == "calibration_drift (confidence_drift is also set)"


@pytest.mark.parametrize(
    ("flag", "evidence"),
    [
        ("change_detected", "change_confidence"),
        ("no_signal_retry", "identification_confidence"),
        ("confidence_drift", "drift_confidence"),
        ("scheduled_retrain", "identification_confidence"),
    ],
)
def test_confidence_is_read_from_the_evidence(flag: str, evidence: str) -> None:
    """The proposal's confidence is the evidence's figure, not a constant; without the figure
    the advisor cannot vouch for it (escalation-level confidence)."""
    for value in (0.61, 0.97, 1.0):
        answer = heuristic_decision("chapter_13", {flag: 1, evidence: value}, [])
        assert isinstance(answer, Chapter13Proposal)
        assert answer.confidence == value
    bare = heuristic_decision("chapter_13", {flag: 1}, [])
    assert isinstance(bare, Chapter13Proposal)
    assert bare.confidence < 0.5


def test_free_json_heuristic_escalates() -> None:
    """json_generic has no heuristic meaning: the answer is an escalate marker."""
    answer = heuristic_decision("json_generic", {}, [])
    assert isinstance(answer, GenericJson)
    assert answer.data["recommended_action"] == "escalate"


@pytest.mark.parametrize("name", GRAMMAR_NAMES)
def test_every_grammar_has_a_deterministic_heuristic(name: str) -> None:
    """Each grammar gets its own model, and the same input gives the same answer."""
    metrics = {"accuracy": 0.95, "regime_shift": True}
    first = heuristic_decision(name, metrics, [ACC])
    assert type(first) is GRAMMAR_MODELS[name]
    assert heuristic_decision(name, metrics, [ACC]) == first


def test_unknown_grammar_is_refused() -> None:
    """An unknown grammar name raises UnknownGrammarError."""
    with pytest.raises(UnknownGrammarError):
        heuristic_decision("agent", {}, [])


def test_odd_metric_names_still_give_valid_text() -> None:
    """Quotes, backslashes and newlines in metric names are cleaned to fit the text rule."""
    weird = MetricThreshold(metric='acc"ur\\acy\n' + "x" * 500, min=1)
    answer = heuristic_decision("agent_decision", {weird.metric: 0.9}, [weird])
    assert isinstance(answer, StepDecision)
    assert len(answer.reasoning) <= 400
    assert clean_text('a"b\\c\nd', 10) == "a?b?c?d"


@pytest.mark.parametrize(
    ("value", "number"),
    [(True, 1.0), (False, 0.0), (3, 3.0), ("2.5", 2.5), ("x", None), (float("inf"), None)],
)
def test_metric_number(value: Any, number: float | None) -> None:
    """Booleans, numbers and numeric text are judged; words and infinities are not."""
    assert metric_number(value) == number
