"""The deterministic heuristic advisor: an answer for every grammar from the request's metrics.

It answers when no model is configured, while the GPU lease is out, and when the LLM's answer is
unusable. Pure functions, no I/O: the same metrics and thresholds always give the same answer.

Step-like grammars (`agent_decision`, `sieve_analysis`, `parameter_adjustment`) judge the
thresholds: all pass -> proceed (confidence 0.75, above the watcher's auto-proceed 0.70); some
fail -> retry (0.60); a metric missing or not a number, a miss by more than half the threshold's
scale, or no threshold at all -> escalate (0.30, below the watcher's escalate line 0.50).
`chapter_13` reads diagnostic flags from the metrics in a fixed priority order (`CHAPTER_13_RULES`),
with a confidence read from the flag's evidence (never a constant).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

from grammars import UnknownGrammarError
from messages.decisions import (
    AdjustmentAction,
    Chapter13Action,
    Chapter13Proposal,
    DecisionModel,
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
from messages.enums import FLAG_EVIDENCE, AdvisorFlag, LearningLoopScope

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping, Sequence

MetricValue = float | int | str | bool
"""A metric as reported by a step: numbers, numeric strings and booleans can be judged."""

PROCEED_CONFIDENCE = 0.75
RETRY_CONFIDENCE = 0.60
HOLD_CONFIDENCE = 0.50
ESCALATE_CONFIDENCE = 0.30

BAD_MISS = 0.5
"""A metric that misses its bound by more than half the threshold's scale fails badly."""

_NOT_TEXT = re.compile(r"[^ !#-\[\]-~]")


def clean_text(text: str, max_length: int) -> str:
    """Fit `text` to a decision model's text rule: printable ASCII, no quote or backslash."""
    text = _NOT_TEXT.sub("?", text)
    return text if len(text) <= max_length else text[: max_length - 3] + "..."


def metric_number(value: MetricValue | None) -> float | None:
    """A metric as a finite number, or None when it cannot be judged (absent, NaN, a word)."""
    if value is None:
        return None
    if isinstance(value, bool):
        return 1.0 if value else 0.0
    try:
        number = float(value)
    except ValueError:
        return None
    return number if math.isfinite(number) else None


@dataclass(frozen=True, slots=True)
class ThresholdCheck:
    """One threshold judged against the metrics."""

    threshold: MetricThreshold
    value: float | None
    """The metric's value; None when missing or not a number."""
    passed: bool
    bad: bool
    """Failed by more than BAD_MISS of the threshold's scale (or the metric is missing)."""

    def describe(self) -> str:
        """A short human line, e.g. `accuracy=0.81 below min 0.9`."""
        name = self.threshold.metric
        if self.value is None:
            return f"{name} missing"
        lo, hi = self.threshold.min, self.threshold.max
        if lo is not None and self.value < lo:
            return f"{name}={self.value:g} below min {lo:g}"
        if hi is not None and self.value > hi:
            return f"{name}={self.value:g} above max {hi:g}"
        return f"{name}={self.value:g} ok"


def check_threshold(
    threshold: MetricThreshold, metrics: Mapping[str, MetricValue]
) -> ThresholdCheck:
    """Judge one threshold: passed, failed, or failed badly."""
    value = metric_number(metrics.get(threshold.metric))
    if value is None:
        return ThresholdCheck(threshold, None, passed=False, bad=True)
    if threshold.passes(value):
        return ThresholdCheck(threshold, value, passed=True, bad=False)
    lo, hi = threshold.min, threshold.max
    bound = lo if lo is not None and value < lo else hi
    if bound is None:  # unreachable: a failing value lies outside a bound that exists
        return ThresholdCheck(threshold, value, passed=False, bad=True)
    if lo is not None and hi is not None and hi > lo:
        scale = hi - lo
    else:
        scale = abs(bound) if bound != 0 else 1.0
    return ThresholdCheck(threshold, value, passed=False, bad=abs(value - bound) > BAD_MISS * scale)


@dataclass(frozen=True, slots=True)
class Verdict:
    """The thresholds' overall verdict."""

    action: StepAction
    confidence: float
    checks: tuple[ThresholdCheck, ...]

    @property
    def failures(self) -> tuple[ThresholdCheck, ...]:
        """The checks that did not pass."""
        return tuple(c for c in self.checks if not c.passed)

    def summary(self) -> str:
        """One line naming what decided the verdict."""
        if not self.checks:
            return "no thresholds to judge by"
        if self.action is StepAction.PROCEED:
            return f"all {len(self.checks)} thresholds pass: " + ", ".join(
                c.describe() for c in self.checks
            )
        return ", ".join(c.describe() for c in self.failures)


def judge(metrics: Mapping[str, MetricValue], thresholds: Sequence[MetricThreshold]) -> Verdict:
    """Proceed when every threshold passes, retry on plain failures, escalate otherwise."""
    checks = tuple(check_threshold(t, metrics) for t in thresholds)
    if not checks or any(c.bad for c in checks):
        return Verdict(StepAction.ESCALATE, ESCALATE_CONFIDENCE, checks)
    if all(c.passed for c in checks):
        return Verdict(StepAction.PROCEED, PROCEED_CONFIDENCE, checks)
    return Verdict(StepAction.RETRY, RETRY_CONFIDENCE, checks)


def step_decision(
    metrics: Mapping[str, MetricValue], thresholds: Sequence[MetricThreshold]
) -> StepDecision:
    """The heuristic StepDecision (grammar `agent_decision`)."""
    verdict = judge(metrics, thresholds)
    failures = verdict.failures
    return StepDecision(
        success_condition_met=verdict.action is StepAction.PROCEED,
        confidence=verdict.confidence,
        reasoning=clean_text(f"heuristic: {verdict.summary()}", 400),
        recommended_action=verdict.action,
        retry_reason=(
            clean_text(", ".join(c.describe() for c in failures), 160)
            if verdict.action is StepAction.RETRY
            else None
        ),
        warnings=tuple(clean_text(c.describe(), 160) for c in failures[:4]),
    )


def _survivor_count(verdict: Verdict) -> SurvivorCount:
    for check in verdict.checks:
        if "survivor" in check.threshold.metric and check.value is not None and not check.passed:
            low = check.threshold.min is not None and check.value < check.threshold.min
            return SurvivorCount.TOO_FEW if low else SurvivorCount.TOO_MANY
    return SurvivorCount.ADEQUATE


_SIEVE_QUALITY = {
    StepAction.PROCEED: SieveQuality.PLAUSIBLE,
    StepAction.RETRY: SieveQuality.WEAK,
    StepAction.ESCALATE: SieveQuality.NOISE,
}


def sieve_analysis(
    metrics: Mapping[str, MetricValue], thresholds: Sequence[MetricThreshold]
) -> SieveAnalysis:
    """The heuristic SieveAnalysis: thresholds decide; a `survivor*` threshold sets the count."""
    verdict = judge(metrics, thresholds)
    return SieveAnalysis(
        summary=clean_text(f"heuristic: {verdict.summary()}", 400),
        candidate_quality=_SIEVE_QUALITY[verdict.action],
        survivor_count=_survivor_count(verdict),
        confidence=verdict.confidence,
        recommended_action=verdict.action,
        warnings=tuple(clean_text(c.describe(), 160) for c in verdict.failures[:3]),
    )


def parameter_adjustment(
    metrics: Mapping[str, MetricValue], thresholds: Sequence[MetricThreshold]
) -> ParameterAdjustment:
    """The heuristic ParameterAdjustment: it never invents values, so hold (or escalate)."""
    verdict = judge(metrics, thresholds)
    escalate = verdict.action is StepAction.ESCALATE
    return ParameterAdjustment(
        adjustments=(),
        rationale=clean_text(f"heuristic keeps the current parameters: {verdict.summary()}", 400),
        confidence=ESCALATE_CONFIDENCE if escalate else HOLD_CONFIDENCE,
        recommended_action=AdjustmentAction.ESCALATE if escalate else AdjustmentAction.HOLD,
    )


@dataclass(frozen=True, slots=True)
class Chapter13Rule:
    """A diagnostic flag and the proposal it leads to."""

    flag: str
    failure_mode: FailureMode
    action: Chapter13Action
    scope: LearningLoopScope | None
    risk: RiskLevel
    human_review: bool
    evidence: str | None
    """The metric (in [0, 1]) the proposal's confidence is read from; None: a fixed escalation."""

    def active(self, metrics: Mapping[str, MetricValue]) -> bool:
        """True when the flag is set: a true boolean or a positive number."""
        value = metric_number(metrics.get(self.flag))
        return value is not None and value > 0

    def confidence(self, metrics: Mapping[str, MetricValue]) -> float:
        """The confidence the evidence supports (ESCALATE_CONFIDENCE when it is missing)."""
        if self.evidence is None:
            return ESCALATE_CONFIDENCE
        value = metric_number(metrics.get(self.evidence))
        if value is None:
            return ESCALATE_CONFIDENCE
        return min(1.0, max(0.0, value))


CHAPTER_13_RULES: tuple[Chapter13Rule, ...] = (
    Chapter13Rule(
        AdvisorFlag.DATA_QUALITY, FailureMode.DATA_QUALITY, Chapter13Action.ESCALATE, None,
        RiskLevel.HIGH, human_review=True, evidence=None,
    ),
    # The change detector alarmed: the survivors describe a source that is gone, and the fix
    # is a search on the post-change draws. Low risk (no parameter changes; a wrong retrain
    # costs one run); confidence 1 - e^-S >= 1 - 1/ARL0; no scope: the full pipeline stands.
    Chapter13Rule(
        AdvisorFlag.CHANGE_DETECTED, FailureMode.REGIME_SHIFT, Chapter13Action.RETRAIN, None,
        RiskLevel.LOW, human_review=False, evidence=FLAG_EVIDENCE[AdvisorFlag.CHANGE_DETECTED],
    ),
    # Retraining found nothing that beats chance; the back-off ran out and more draws are in.
    Chapter13Rule(
        AdvisorFlag.NO_SIGNAL_RETRY, FailureMode.FEATURE_RELEVANCE, Chapter13Action.RETRAIN,
        None, RiskLevel.LOW, human_review=False,
        evidence=FLAG_EVIDENCE[AdvisorFlag.NO_SIGNAL_RETRY],
    ),
    Chapter13Rule(
        AdvisorFlag.CONFIDENCE_DRIFT, FailureMode.CALIBRATION_DRIFT, Chapter13Action.RETRAIN,
        LearningLoopScope.STEP_6_ONLY, RiskLevel.LOW, human_review=False,
        evidence=FLAG_EVIDENCE[AdvisorFlag.CONFIDENCE_DRIFT],
    ),
    # The first model (or a scheduled retrain): nothing is wrong, the history identifies a seed.
    Chapter13Rule(
        AdvisorFlag.SCHEDULED_RETRAIN, FailureMode.NONE_DETECTED, Chapter13Action.RETRAIN,
        None, RiskLevel.LOW, human_review=False,
        evidence=FLAG_EVIDENCE[AdvisorFlag.SCHEDULED_RETRAIN],
    ),
)  # fmt: skip
"""Flags in priority order: the first one set decides; the next one set is the alternative."""

DIAGNOSTIC_FLAGS: tuple[str, ...] = tuple(r.flag for r in CHAPTER_13_RULES)
"""Every metric the Chapter 13 heuristic reads as a flag."""


def _active_rules(metrics: Mapping[str, MetricValue]) -> list[Chapter13Rule]:
    return [r for r in CHAPTER_13_RULES if r.active(metrics)]


def chapter13_proposal(metrics: Mapping[str, MetricValue]) -> Chapter13Proposal:
    """The heuristic Chapter13Proposal from diagnostic flags (see CHAPTER_13_RULES)."""
    if not any(flag in metrics for flag in DIAGNOSTIC_FLAGS):
        return Chapter13Proposal(
            analysis_summary="heuristic: no diagnostic flags in the request; a person must look",
            failure_mode=FailureMode.NONE_DETECTED,
            confidence=ESCALATE_CONFIDENCE,
            recommended_action=Chapter13Action.ESCALATE,
            risk_level=RiskLevel.MEDIUM,
            requires_human_review=True,
        )
    rules = _active_rules(metrics)
    if not rules:
        return Chapter13Proposal(
            analysis_summary="heuristic: no diagnostic flag is set; wait for more draws",
            failure_mode=FailureMode.NONE_DETECTED,
            confidence=HOLD_CONFIDENCE,
            recommended_action=Chapter13Action.WAIT,
            risk_level=RiskLevel.LOW,
            requires_human_review=False,
        )
    rule = rules[0]
    other = rules[1] if len(rules) > 1 else None
    flags = ", ".join(f"{r.flag}={metrics[r.flag]}" for r in rules)
    confidence = rule.confidence(metrics)
    evidence = "" if rule.evidence is None else f"; {rule.evidence}={confidence:.4f}"
    return Chapter13Proposal(
        analysis_summary=clean_text(
            f"heuristic: {rule.failure_mode} from flags {flags}{evidence}", 400
        ),
        failure_mode=rule.failure_mode,
        confidence=confidence,
        recommended_action=rule.action,
        retrain_scope=rule.scope,
        risk_level=rule.risk,
        requires_human_review=rule.human_review,
        alternative_hypothesis=(
            clean_text(f"{other.failure_mode} ({other.flag} is also set)", 160) if other else None
        ),
    )


def generic_json() -> GenericJson:
    """Free JSON has no heuristic meaning: an escalate marker, never a permission."""
    return GenericJson(
        data={
            "recommended_action": "escalate",
            "source": "heuristic",
            "reason": "no heuristic answer exists for free JSON",
        }
    )


_BY_GRAMMAR: dict[
    str, Callable[[Mapping[str, MetricValue], Sequence[MetricThreshold]], DecisionModel]
] = {
    "agent_decision": step_decision,
    "chapter_13": lambda metrics, _thresholds: chapter13_proposal(metrics),
    "json_generic": lambda _metrics, _thresholds: generic_json(),
    "parameter_adjustment": parameter_adjustment,
    "sieve_analysis": sieve_analysis,
}


def heuristic_decision(
    grammar_name: str,
    metrics: Mapping[str, MetricValue],
    thresholds: Sequence[MetricThreshold],
) -> DecisionModel:
    """The heuristic answer for `grammar_name`, in that grammar's model.

    Raises:
        UnknownGrammarError: `grammar_name` is not a known grammar.
    """
    try:
        advise = _BY_GRAMMAR[grammar_name]
    except KeyError:
        raise UnknownGrammarError(grammar_name) from None
    return advise(metrics, thresholds)
