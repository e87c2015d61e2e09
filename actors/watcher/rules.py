"""The watcher's decision rules (pure): what to do after a step, given the LLM's advice.

The advice is an input, never a command (ARCHITECTURE §10). Proceed needs an explicit
`proceed` verdict with confidence >= the auto-proceed threshold (0.70); anything below the
escalation threshold (0.50), an `escalate` verdict, or retries run out escalates; everything
else retries. There is no default that proceeds.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from messages.decisions import (
    DecisionModel,
    SieveAnalysis,
    SieveQuality,
    StepAction,
    StepDecision,
    SurvivorCount,
)
from messages.metrics import flat_metrics

Action = Literal["proceed", "retry", "escalate"]


@dataclass(frozen=True)
class Limits:
    """Thresholds and retry budgets (from the `[watcher]` config)."""

    auto_proceed: float = 0.70
    escalate_below: float = 0.50
    max_retries_per_step: int = 3
    max_retries_per_run: int = 10


@dataclass(frozen=True)
class Verdict:
    """The rule's outcome and the reason, for the audit trail."""

    action: Action
    reason: str


def judge(
    decision: StepDecision, *, step_retries: int, run_retries: int, limits: Limits
) -> Verdict:
    """Apply the watcher rules to one step's decision."""
    confidence = decision.confidence
    if decision.recommended_action is StepAction.ESCALATE:
        return Verdict("escalate", "the advisor recommends escalation")
    if confidence < limits.escalate_below:
        return Verdict(
            "escalate", f"confidence {confidence:.2f} is below {limits.escalate_below:.2f}"
        )
    if decision.recommended_action is StepAction.PROCEED and decision.success_condition_met:
        if confidence >= limits.auto_proceed:
            return Verdict("proceed", f"proceed at confidence {confidence:.2f}")
        why = f"proceed advised at confidence {confidence:.2f} < {limits.auto_proceed:.2f}"
    elif decision.recommended_action is StepAction.PROCEED:
        why = "proceed advised although the success condition is not met"
    else:
        why = decision.retry_reason or "the advisor recommends a retry"
    if step_retries >= limits.max_retries_per_step:
        return Verdict("escalate", f"{why}; step retries exhausted ({step_retries})")
    if run_retries >= limits.max_retries_per_run:
        return Verdict("escalate", f"{why}; run retries exhausted ({run_retries})")
    return Verdict("retry", why)


def as_step_decision(answer: DecisionModel) -> StepDecision:
    """Read any decision model as a step verdict; a model that is not one escalates."""
    if isinstance(answer, StepDecision):
        return answer
    if isinstance(answer, SieveAnalysis):
        good = answer.candidate_quality in {SieveQuality.STRONG, SieveQuality.PLAUSIBLE}
        return StepDecision(
            success_condition_met=good and answer.survivor_count is SurvivorCount.ADEQUATE,
            confidence=answer.confidence,
            reasoning=answer.summary,
            recommended_action=answer.recommended_action,
            suggested_params=dict(answer.suggested_params),
            warnings=answer.warnings,
        )
    return StepDecision(
        success_condition_met=False,
        confidence=0.0,
        reasoning=f"a {type(answer).__name__} is not a step verdict",
        recommended_action=StepAction.ESCALATE,
    )


# Chapter 13's trigger rules, as the diagnostic flags the advisor reads.
_RULE_FLAGS = {"n_draws": "scheduled_retrain", "llm_proposed": "scheduled_retrain"}


def prevalidation_metrics(evidence: dict[str, object]) -> dict[str, str | int | float | bool]:
    """What the pre-validation advisor reads: the evidence's figures plus its rule as a flag."""
    metrics = flat_metrics(evidence)
    rule = evidence.get("rule")
    if isinstance(rule, str) and rule:
        flag = _RULE_FLAGS.get(rule, rule)
        metrics.setdefault(flag, True)
    return metrics
