"""The watcher's decision rules: proceed needs an explicit, confident proceed; else fail closed."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from actors.watcher.rules import Limits, as_step_decision, judge
from messages.decisions import (
    GenericJson,
    SieveAnalysis,
    SieveQuality,
    StepAction,
    StepDecision,
    SurvivorCount,
)

LIMITS = Limits()


def decision(action: StepAction, confidence: float, met: bool = True) -> StepDecision:
    return StepDecision(
        success_condition_met=met, confidence=confidence, reasoning="r", recommended_action=action
    )


@pytest.mark.parametrize(
    ("action", "confidence", "met", "step_retries", "run_retries", "expected"),
    [
        (StepAction.PROCEED, 0.70, True, 0, 0, "proceed"),
        (StepAction.PROCEED, 0.95, True, 3, 10, "proceed"),
        (StepAction.PROCEED, 0.69, True, 0, 0, "retry"),
        (StepAction.PROCEED, 0.90, False, 0, 0, "retry"),
        (StepAction.PROCEED, 0.49, True, 0, 0, "escalate"),
        (StepAction.RETRY, 0.80, False, 0, 0, "retry"),
        (StepAction.RETRY, 0.80, False, 3, 0, "escalate"),
        (StepAction.RETRY, 0.80, False, 0, 10, "escalate"),
        (StepAction.RETRY, 0.40, False, 0, 0, "escalate"),
        (StepAction.ESCALATE, 0.99, True, 0, 0, "escalate"),
    ],
)
def test_rule_table(
    action: StepAction,
    confidence: float,
    met: bool,
    step_retries: int,
    run_retries: int,
    expected: str,
) -> None:
    """Each row of the rule table gives its action."""
    verdict = judge(
        decision(action, confidence, met),
        step_retries=step_retries,
        run_retries=run_retries,
        limits=LIMITS,
    )
    assert verdict.action == expected
    assert verdict.reason


@given(
    st.sampled_from(StepAction),
    st.floats(0, 1),
    st.booleans(),
    st.integers(0, 20),
    st.integers(0, 20),
)
def test_never_proceeds_without_a_confident_proceed(
    action: StepAction, confidence: float, met: bool, step: int, run: int
) -> None:
    """Whatever the inputs, proceed only follows a met, proceed verdict at >= 0.70."""
    verdict = judge(
        decision(action, confidence, met), step_retries=step, run_retries=run, limits=LIMITS
    )
    if verdict.action == "proceed":
        assert action is StepAction.PROCEED
        assert met
        assert confidence >= 0.70


def test_other_models_read_as_step_verdicts() -> None:
    """A sieve analysis maps onto a step verdict; a model that is not a verdict escalates."""
    sieve = SieveAnalysis(
        summary="s",
        candidate_quality=SieveQuality.STRONG,
        survivor_count=SurvivorCount.ADEQUATE,
        confidence=0.8,
        recommended_action=StepAction.PROCEED,
    )
    mapped = as_step_decision(sieve)
    assert mapped.success_condition_met
    assert mapped.recommended_action is StepAction.PROCEED
    weak = as_step_decision(sieve.model_copy(update={"candidate_quality": SieveQuality.NOISE}))
    assert not weak.success_condition_met
    generic = as_step_decision(GenericJson(data={"recommended_action": "proceed"}))
    assert generic.recommended_action is StepAction.ESCALATE
