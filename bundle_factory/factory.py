"""The entry point: `build_llm_context()`, the one place a prompt is assembled (Guardrail #1)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from bundle_factory.budget import TokenBudget
from bundle_factory.bundle import (
    BundleContext,
    CheckStatus,
    MetricCheck,
    StepAwarenessBundle,
)
from bundle_factory.catalog import CHAPTER_13_ID, SYSTEM_MISSION, BundleType, bundle_type
from bundle_factory.errors import BundleError
from bundle_factory.frozen import FrozenDict, freeze
from bundle_factory.provenance import collect_provenance
from bundle_factory.render import render_prompt
from bundle_factory.retrieval import EmptyRetriever, Retriever
from bundle_factory.tokenizer import EstimatorTokenizer, Tokenizer
from messages.base import utcnow
from messages.metrics import metric_value

if TYPE_CHECKING:
    import os
    from collections.abc import Callable, Iterable, Mapping
    from pathlib import Path

    from messages.decisions import MetricThreshold


RECENT_OUTCOMES = 10
"""How many recent outcomes tier 2 retrieves (the renderer may cut older ones to its cap)."""
TREND_WINDOW = 10
"""How many recent values of each diagnostic a trend is computed over."""


def check_threshold(threshold: MetricThreshold, results: Mapping[str, Any]) -> MetricCheck:
    """Check one threshold against the results' value of its metric (dotted: one level down).

    A value that is absent, not a number (bools and strings included) or not finite is
    `missing`: a threshold is never passed by default.
    """
    value = metric_value(results, threshold.metric)
    if value is None:
        status = CheckStatus.MISSING
    else:
        status = CheckStatus.PASS if threshold.passes(value) else CheckStatus.FAIL
    return MetricCheck(threshold=threshold, value=value, status=status)


def _select_type(step_id: int, is_chapter_13: bool) -> BundleType:
    btype = bundle_type(step_id)
    if is_chapter_13 and btype.step_id != CHAPTER_13_ID:
        msg = (
            f"is_chapter_13=True but step_id={step_id}; Chapter 13 bundles use step id "
            f"{CHAPTER_13_ID}"
        )
        raise BundleError(msg)
    return btype


def build_bundle(
    step_id: int,
    results: Mapping[str, Any],
    *,
    run_id: str,
    state_paths: Iterable[str | os.PathLike[str]],
    state_dir: Path,
    budgets: TokenBudget | None = None,
    is_chapter_13: bool = False,
    retriever: Retriever | None = None,
    clock: Callable[[], datetime] | None = None,
) -> StepAwarenessBundle:
    """Assemble the (unrendered) bundle: type, results, provenance and tier-2 retrieval.

    Raises:
        UnknownStepError: `step_id` has no bundle type.
        ResultsError: `results` holds a value JSON cannot carry.
        StatePathError: a state path escapes `state_dir`.
        RetrievalError: the state store could not be read.
        BundleError: `run_id` is empty, the clock is naive, or `is_chapter_13` contradicts
            `step_id`.
    """
    btype = _select_type(step_id, is_chapter_13)
    if not run_id:
        msg = "run_id must be a non-empty string; it ties the bundle to its audit trail"
        raise BundleError(msg)
    frozen = freeze(results, "results")
    if not isinstance(frozen, FrozenDict):
        msg = f"results must be a mapping of metric names to values, got {type(results).__name__}"
        raise BundleError(msg)
    generated_at = (clock or utcnow)()
    if generated_at.tzinfo is None:
        msg = f"clock returned a naive datetime {generated_at.isoformat()}; it must be aware"
        raise BundleError(msg)
    provenance = collect_provenance(state_dir, state_paths)
    source = retriever if retriever is not None else EmptyRetriever()
    context = BundleContext(
        system_mission=SYSTEM_MISSION,
        mission=btype.mission,
        evaluation_schema=btype.evaluation_schema,
        grammar_name=btype.grammar_name,
        guardrails=btype.all_guardrails,
        authority_contracts=btype.authority_contracts,
        evaluation_summary=tuple(
            check_threshold(t, frozen) for t in btype.evaluation_schema.thresholds
        ),
        inputs_summary=frozen,
        recent_outcomes=source.recent_outcomes(RECENT_OUTCOMES) if btype.include_history else (),
        trend_summary=(
            source.trends(btype.trend_metrics, TREND_WINDOW) if btype.trend_metrics != () else ()
        ),
        open_incidents=source.open_incidents(),
    )
    return StepAwarenessBundle(
        step_id=btype.step_id,
        step_name=btype.step_name,
        run_id=run_id,
        is_chapter_13=btype.step_id == CHAPTER_13_ID,
        context=context,
        budgets=budgets if budgets is not None else TokenBudget(),
        provenance=provenance,
        generated_at=generated_at.astimezone(UTC),
    )


def build_llm_context(
    step_id: int,
    results: Mapping[str, Any],
    *,
    run_id: str,
    state_paths: Iterable[str | os.PathLike[str]] = (),
    state_dir: Path,
    budgets: TokenBudget | None = None,
    is_chapter_13: bool = False,
    retriever: Retriever | None = None,
    tokenizer: Tokenizer | None = None,
    clock: Callable[[], datetime] | None = None,
) -> tuple[str, str, StepAwarenessBundle]:
    """Build and render the context of one LLM decision: `(prompt, grammar_name, bundle)`.

    Same step, results, state files, run id, store contents and clock give a byte-identical
    prompt. The returned bundle records the token usage of the prompt. Blocking (hashes files,
    reads the store): call it from a worker thread in async code.

    Args:
        step_id: 1-6 for pipeline steps, 13 for Chapter 13, 99 for selfplay evaluation.
        results: The step's results, a JSON-like mapping (frozen into the bundle).
        run_id: The run the decision belongs to.
        state_paths: State files the step used, relative to (or inside) `state_dir`.
        state_dir: The state directory; no state path may escape it.
        budgets: Token caps; the defaults of `TokenBudget` when None.
        is_chapter_13: Marks a Chapter 13 bundle; requires `step_id` 13.
        retriever: Tier-2 source; `EmptyRetriever` when None (no store).
        tokenizer: Counts tokens; `EstimatorTokenizer` when None (no model configured).
        clock: Returns the aware `generated_at`; `messages.base.utcnow` when None.

    Raises:
        BundleError: see `build_bundle`; `BudgetError` when tier 0 plus the generation reserve
            does not fit the context.
    """
    bundle = build_bundle(
        step_id,
        results,
        run_id=run_id,
        state_paths=state_paths,
        state_dir=state_dir,
        budgets=budgets,
        is_chapter_13=is_chapter_13,
        retriever=retriever,
        clock=clock,
    )
    rendered = render_prompt(bundle, tokenizer if tokenizer is not None else EstimatorTokenizer())
    bundle = bundle.model_copy(update={"usage": rendered.usage})
    return rendered.text, bundle.context.grammar_name, bundle
