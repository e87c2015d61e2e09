"""The watcher's decision rules (pure): what to do after a step, given the LLM's advice.

The advice is an input, never a command (ARCHITECTURE §10). Proceed needs an explicit
`proceed` verdict with confidence >= the auto-proceed threshold (0.70); anything below the
escalation threshold (0.50), an `escalate` verdict, or retries run out escalates; everything
else retries. There is no default that proceeds.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from messages.decisions import (
    DecisionModel,
    SieveAnalysis,
    SieveQuality,
    StepAction,
    StepDecision,
    SurvivorCount,
)
from messages.enums import RULE_FLAGS
from messages.metrics import flat_metrics

if TYPE_CHECKING:
    from collections.abc import Mapping

    from messages.dispatch import JobFinished

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


def prevalidation_metrics(evidence: dict[str, object]) -> dict[str, str | int | float | bool]:
    """What the pre-validation advisor reads: the evidence's figures plus its rule as a flag."""
    metrics = flat_metrics(evidence)
    rule = evidence.get("rule")
    if isinstance(rule, str) and rule:
        flag = RULE_FLAGS.get(rule)
        metrics.setdefault(rule if flag is None else flag.value, True)
    return metrics


TRANSIENT_STATUSES = frozenset({"failed", "timed_out"})
"""Job ends that may not happen again with the same inputs: a crash, a kill, a timeout."""
BAD_INPUT_EXIT = 2
"""The jobs' exit code for bad input (docs/pipeline.md): the same inputs fail the same way."""


def transient(finished: JobFinished) -> bool:
    """A failure worth one more try with the same inputs (not bad input, not a bad result)."""
    return finished.status in TRANSIENT_STATUSES and finished.exit_code != BAD_INPUT_EXIT


Params = dict[str, str | int | float | bool]


def widen_sieve(params: Params, attempt: int) -> Params | None:
    """The sieve's widening for retry `attempt` (1, 2, ...): the next, doubled block of seeds.

    Attempt 1 searches [end, end + 2 * width), attempt 2 the next 4 * width, ... where
    [start, end) is what the previous attempt searched (the job's defaults at first) — new
    seeds every time, never the same search twice; anchors double too (up to 4096), so a
    source that changed further back than the recent draws can still be found. None when the
    seed space (2^48) is exhausted.
    """
    from pipeline.params import SieveParams

    defaults = SieveParams()
    start = int(params.get("seed_start", defaults.seed_start))
    end = int(params.get("seed_end", defaults.seed_end))
    width = max(1, end - start)
    top = 1 << 48
    if end >= top:
        return None
    anchors = int(params.get("max_anchors", defaults.max_anchors))
    return {
        **params,
        "seed_start": end,
        "seed_end": min(top, end + 2 * width),
        "max_anchors": min(4096, anchors * 2),
    }


WIDENINGS = {"sieve": widen_sieve}
"""Jobs with a documented widening of their inputs for a retry (docs/chapter13.md)."""


def next_attempt(
    job: str, params: Params, suggested: Mapping[str, object], attempt: int
) -> Params | None:
    """The parameters of the next attempt after a poor result, or None: escalate at once.

    The advisor's suggested parameters when they change something; else the job's widening;
    a deterministic job with neither would only repeat its result.
    """
    merged: Params = {
        **params,
        **{k: v for k, v in suggested.items() if isinstance(v, str | int | float | bool)},
    }
    if merged != params:
        return merged
    widen = WIDENINGS.get(job)
    return None if widen is None else widen(params, attempt)
