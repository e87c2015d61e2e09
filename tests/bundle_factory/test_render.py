"""Rendering: section order, grammar names, budgets and the tier-0 overflow error."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bundle_factory import (
    BUNDLE_TYPES,
    BudgetError,
    EstimatorTokenizer,
    OutcomeRecord,
    TokenBudget,
    build_llm_context,
)
from bundle_factory.budget import MIN_SECTION_TOKENS
from bundle_factory.render import SECTION_TITLES, clear_count_cache, header, render_prompt
from bundle_factory.retrieval import EmptyRetriever
from bundle_factory.selftest import SAMPLE_RESULTS
from tests.bundle_factory.conftest import NOW

if TYPE_CHECKING:
    from collections.abc import Callable
    from datetime import datetime
    from pathlib import Path

TOKENIZER = EstimatorTokenizer()


class ManyOutcomes(EmptyRetriever):
    """A retriever with `n` long outcomes, to push the history over its cap."""

    def __init__(self, n: int) -> None:
        self.n = n

    def recent_outcomes(self, n: int) -> tuple[OutcomeRecord, ...]:
        return tuple(
            OutcomeRecord(
                source="step",
                recorded_at=f"2025-01-01T00:{k:02d}:00+00:00",
                status="succeeded",
                request_id=f"q{k}",
                run_id="r",
                step_id=3,
                attempt=1,
                action="proceed",
                confidence=0.8,
                summary="z" * 150,
            )
            for k in range(min(n, self.n))
        )


@pytest.mark.parametrize("step_id", sorted(BUNDLE_TYPES))
def test_every_type_renders_with_its_grammar_in_order(
    step_id: int, state_dir: Path, clock: Callable[[], datetime]
) -> None:
    """Each type renders all 11 sections in order and names its grammar."""
    prompt, grammar, bundle = build_llm_context(
        step_id,
        SAMPLE_RESULTS[step_id],
        run_id="r1",
        state_paths=["survivors.json"],
        state_dir=state_dir,
        clock=clock,
    )
    assert grammar == BUNDLE_TYPES[step_id].grammar_name
    assert f"grammar: {grammar}" in prompt
    positions = [prompt.index(header(n)) for n in range(1, len(SECTION_TITLES) + 1)]
    assert positions == sorted(positions)
    assert "Selfplay explores. Chapter 13 decides. WATCHER enforces. The LLM advises." in prompt
    assert bundle.is_chapter_13 == (step_id == 13)
    assert bundle.usage is not None
    assert bundle.usage.total == TOKENIZER.count(prompt)
    assert NOW.isoformat() in prompt


def test_tier0_overflow_is_a_clear_error(state_dir: Path, clock: Callable[[], datetime]) -> None:
    """When tier 0 plus the generation reserve exceeds the context, BudgetError names both."""
    budget = TokenBudget(
        context=600, generation_reserve=100, tier0_reserved=0, tier1_cap=128, telemetry_cap=128
    )
    with pytest.raises(
        BudgetError, match=r"tier 0 .* needs \d+ tokens.*generation reserve of 100.*never truncated"
    ):
        build_llm_context(1, {}, run_id="r", state_dir=state_dir, budgets=budget, clock=clock)


def test_too_little_room_after_tier0_is_a_clear_error(
    state_dir: Path, clock: Callable[[], datetime]
) -> None:
    """Tier 0 fits but tiers 1 and 2 cannot get their minimum: BudgetError, not a silent drop."""
    budget = TokenBudget(
        context=1000, generation_reserve=100, tier0_reserved=0, tier1_cap=128, telemetry_cap=128
    )
    with pytest.raises(BudgetError, match="tiers 1 and 2 need at least"):
        build_llm_context(1, {}, run_id="r", state_dir=state_dir, budgets=budget, clock=clock)


def test_history_is_cut_oldest_first_with_a_marker(
    state_dir: Path, clock: Callable[[], datetime]
) -> None:
    """Over its cap, the history keeps the newest outcomes and marks the older ones as cut."""
    budget = TokenBudget(history_cap=300)
    prompt, _g, bundle = build_llm_context(
        3,
        {},
        run_id="r",
        state_dir=state_dir,
        budgets=budget,
        retriever=ManyOutcomes(10),
        clock=clock,
    )
    assert bundle.usage is not None
    assert bundle.usage.history <= 300
    assert "request q0)" in prompt
    assert "request q9)" not in prompt
    assert "older outcomes not shown]" in prompt
    assert any(cut.startswith("RECENT OUTCOMES") for cut in bundle.usage.cuts)


@settings(max_examples=40, deadline=None)
@given(
    results=st.sampled_from(sorted(SAMPLE_RESULTS)).map(lambda k: SAMPLE_RESULTS[k])
    | st.builds(lambda n: {"xs": list(range(n)), "note": "w" * n}, st.integers(0, 3000)),
    extra=st.integers(min_value=5 * MIN_SECTION_TOKENS + 10, max_value=6000),
    reserve=st.integers(min_value=0, max_value=4000),
    tier1=st.integers(min_value=2 * MIN_SECTION_TOKENS, max_value=4000),
    history=st.integers(min_value=MIN_SECTION_TOKENS, max_value=4000),
    telemetry=st.integers(min_value=2 * MIN_SECTION_TOKENS, max_value=4000),
    outcomes=st.integers(min_value=0, max_value=30),
)
def test_prompt_never_exceeds_context_minus_reserve(
    results: dict[str, Any],
    extra: int,
    reserve: int,
    tier1: int,
    history: int,
    telemetry: int,
    outcomes: int,
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    """With any budget that leaves tiers 1-2 their minimum, every cap and the limit hold."""
    state_dir = tmp_path_factory.getbasetemp() / "empty-state"
    tier0 = 800  # above every type's tier 0 with the estimator (self-test: <= 700)
    budget = TokenBudget(
        context=tier0 + reserve + extra + 5,
        generation_reserve=reserve,
        tier0_reserved=tier0,
        tier1_cap=tier1,
        history_cap=history,
        telemetry_cap=telemetry,
    )
    prompt, _g, bundle = build_llm_context(
        1,
        results,
        run_id="r",
        state_dir=state_dir,
        budgets=budget,
        retriever=ManyOutcomes(outcomes),
        clock=lambda: NOW,
    )
    usage = bundle.usage
    assert usage is not None
    assert TOKENIZER.count(prompt) == usage.total <= budget.prompt_limit
    assert usage.tier1 <= tier1
    assert usage.history <= history
    assert usage.telemetry <= telemetry


def test_render_is_a_function_of_the_bundle(state_dir: Path, clock: Callable[[], datetime]) -> None:
    """Rendering the returned bundle again gives the same prompt and usage."""
    prompt, _g, bundle = build_llm_context(
        5, SAMPLE_RESULTS[5], run_id="r", state_dir=state_dir, clock=clock
    )
    again = render_prompt(bundle, TOKENIZER)
    assert again.text == prompt
    assert again.usage == bundle.usage
    clear_count_cache()  # remembered section counts change nothing either
    cold = render_prompt(bundle, TOKENIZER)
    assert (cold.text, cold.usage) == (prompt, bundle.usage)
