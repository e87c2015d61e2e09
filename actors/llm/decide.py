"""The fail-closed decision procedure the LLMActor runs for every `Decide` request.

::

    no model ──────────────────────────────────────────────▶ heuristic
    generate ─▶ parse ok ─────────────────────────────────▶ llm
                 │ invalid
                 ▼
               one corrective retry ─▶ parse ok ─────────▶ llm
                 │ invalid again          ▲
    generate raises (crash, stop) ────────┴──────────────▶ heuristic
    heuristic raises or answers the wrong model ─────────▶ fail_closed (escalate)

A failure never becomes "proceed": the only answers that can permit an action are a parsed LLM
answer and the heuristic's deterministic judgement of the metrics; everything else escalates.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Literal

from pydantic import ValidationError

from actors.llm.heuristic import clean_text
from grammars import UnknownGrammarError
from messages.decisions import (
    GRAMMAR_MODELS,
    AdjustmentAction,
    Chapter13Action,
    Chapter13Proposal,
    DecisionModel,
    FailureMode,
    GenericJson,
    ParameterAdjustment,
    RiskLevel,
    SieveAnalysis,
    SieveQuality,
    StepAction,
    StepDecision,
    SurvivorCount,
    parse_decision,
)

DecisionSource = Literal["llm", "heuristic", "fail_closed"]

Generate = Callable[[str, str], Awaitable[str]]
"""`await generate(prompt, grammar_name)` -> the model's raw text."""

_PROBLEM_MAX = 300  # characters of the parse error quoted back to the model


@dataclass(frozen=True, slots=True)
class DecisionOutcome:
    """What `decide` concluded and how."""

    answer: DecisionModel
    source: DecisionSource
    attempts: int
    """Calls made to `generate` (0 with no model, 1 or 2 otherwise)."""
    raw_text: str | None
    """The last raw text the model returned, if any."""
    error: str | None
    """Why the LLM's answer was not used; None when it was (or no model is configured)."""


def permits_action(answer: DecisionModel) -> bool:
    """True when the answer lets the system act without a person (proceed, apply, retrain...)."""
    if isinstance(answer, StepDecision | SieveAnalysis):
        return answer.recommended_action is StepAction.PROCEED
    if isinstance(answer, ParameterAdjustment):
        return answer.recommended_action is AdjustmentAction.APPLY
    if isinstance(answer, Chapter13Proposal):
        return answer.recommended_action in {Chapter13Action.RETRAIN, Chapter13Action.FULL_RESET}
    return False


def fail_closed_answer(grammar_name: str, reason: str) -> DecisionModel:
    """The escalate answer of `grammar_name`'s model: what is left when everything failed.

    Raises:
        UnknownGrammarError: `grammar_name` is not a known grammar.
    """
    why = clean_text(f"fail closed: {reason}", 400)
    short = clean_text(reason, 160)
    if grammar_name == "agent_decision":
        return StepDecision(
            success_condition_met=False,
            confidence=0.0,
            reasoning=why,
            recommended_action=StepAction.ESCALATE,
            warnings=(short,),
        )
    if grammar_name == "chapter_13":
        return Chapter13Proposal(
            analysis_summary=why,
            failure_mode=FailureMode.NONE_DETECTED,
            confidence=0.0,
            recommended_action=Chapter13Action.ESCALATE,
            risk_level=RiskLevel.HIGH,
            requires_human_review=True,
        )
    if grammar_name == "sieve_analysis":
        return SieveAnalysis(
            summary=why,
            candidate_quality=SieveQuality.NOISE,
            survivor_count=SurvivorCount.ADEQUATE,
            confidence=0.0,
            recommended_action=StepAction.ESCALATE,
            warnings=(short,),
        )
    if grammar_name == "parameter_adjustment":
        return ParameterAdjustment(
            rationale=why, confidence=0.0, recommended_action=AdjustmentAction.ESCALATE
        )
    if grammar_name == "json_generic":
        return GenericJson(
            data={"recommended_action": "escalate", "source": "fail_closed", "reason": short}
        )
    raise UnknownGrammarError(grammar_name)


def describe_problem(exc: ValueError) -> str:
    """A short account of why a raw answer did not parse (quoted to the model on retry).

    Unknown keys come first: "decision: Extra inputs are not permitted" tells a model that wrote
    the wrong key more than a list of the fields it left out.
    """
    if isinstance(exc, ValidationError):
        errors = sorted(exc.errors(), key=lambda e: e["type"] != "extra_forbidden")
        if errors and errors[0]["type"] == "json_invalid":
            return f"not valid JSON ({errors[0]['msg']})"[:_PROBLEM_MAX]
        parts = []
        for err in errors[:3]:
            where = ".".join(str(p) for p in err["loc"]) or "answer"
            parts.append(f"{where}: {err['msg']}")
        text = "; ".join(parts)
    elif isinstance(exc, json.JSONDecodeError):
        text = f"not valid JSON ({exc.msg} at character {exc.pos})"
    else:
        text = str(exc)
    return text[:_PROBLEM_MAX]


def corrective_prompt(prompt: str, problem: str) -> str:
    """The retry prompt: the original, then what was wrong with the first answer."""
    return (
        f"{prompt}\n\n"
        f"Your previous answer could not be used: {problem}. "
        "Answer again with one complete JSON object in exactly the required format."
    )


def _fallback(
    grammar_name: str,
    heuristic: Callable[[], DecisionModel],
    *,
    attempts: int,
    raw_text: str | None,
    error: str | None,
) -> DecisionOutcome:
    """The heuristic's answer, or the escalate answer when the heuristic fails too."""
    try:
        answer = heuristic()
    except Exception as exc:  # noqa: BLE001 - any heuristic failure must end in escalate
        problem = f"heuristic failed: {type(exc).__name__}: {exc}"
    else:
        expected = GRAMMAR_MODELS[grammar_name]
        if type(answer) is expected:
            return DecisionOutcome(answer, "heuristic", attempts, raw_text, error)
        problem = f"heuristic answered {type(answer).__name__}, not {expected.__name__}"
    reason = f"{error}; {problem}" if error else problem
    return DecisionOutcome(
        fail_closed_answer(grammar_name, reason), "fail_closed", attempts, raw_text, reason
    )


async def decide(
    prompt: str,
    grammar_name: str,
    *,
    generate: Generate | None,
    heuristic: Callable[[], DecisionModel],
) -> DecisionOutcome:
    """Ask the model for an answer in `grammar_name`'s model, failing closed.

    `generate=None` means no model is configured (or the GPU lease is out): the heuristic
    answers. Cancellation is never swallowed; every other failure of `generate` goes to the
    heuristic at once (a crashed worker is not asked twice).

    Raises:
        UnknownGrammarError: `grammar_name` is not a known grammar.
    """
    if grammar_name not in GRAMMAR_MODELS:
        raise UnknownGrammarError(grammar_name)
    if generate is None:
        return _fallback(grammar_name, heuristic, attempts=0, raw_text=None, error=None)
    current = prompt
    raw_text: str | None = None
    problems: list[str] = []
    for attempt in (1, 2):
        try:
            raw_text = await generate(current, grammar_name)
        except Exception as exc:  # noqa: BLE001 - a failed generation is answered by the fallback
            error = "; ".join([*problems, f"generate failed: {type(exc).__name__}: {exc}"])
            return _fallback(
                grammar_name, heuristic, attempts=attempt, raw_text=raw_text, error=error
            )
        try:
            answer = parse_decision(grammar_name, raw_text)
        except ValueError as exc:
            problem = describe_problem(exc)
            problems.append(f"attempt {attempt}: {problem}")
            current = corrective_prompt(prompt, problem)
            continue
        return DecisionOutcome(answer, "llm", attempt, raw_text, None)
    error = "invalid answer twice: " + "; ".join(problems)
    return _fallback(grammar_name, heuristic, attempts=2, raw_text=raw_text, error=error)
