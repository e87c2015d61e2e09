"""The real small model (gemma3-270m): decisions parse, greedy answers repeat, release works.

Marked `llm`: they need the packaged model (extra `model`) and take ~15 s on 2 cores.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from actors.llm.client import WorkerClient
from actors.llm.decide import decide
from actors.llm.heuristic import heuristic_decision
from grammars import GRAMMAR_NAMES, grammar_max_tokens
from messages.decisions import GRAMMAR_MODELS, parse_decision

if TYPE_CHECKING:
    from pathlib import Path

pytestmark = [pytest.mark.llm, pytest.mark.anyio]

SYSTEM = "You are a careful reviewer. Answer with one JSON object only. Keep text fields short."
# The packaged model is a 270M base model: an example answer keeps it brief (and the test quick).
PROMPTS = {
    "agent_decision": "Step 3: accuracy 0.93 (min 0.90). Example answer: "
    '{"success_condition_met": true, "confidence": 0.8, "reasoning": "ok", '
    '"recommended_action": "proceed", "retry_reason": null, "suggested_params": {}, '
    '"warnings": []}',
    "chapter_13": "Hit rate fell from 0.31 to 0.12. Example answer: "
    '{"analysis_summary": "drift", "failure_mode": "regime_shift", "confidence": 0.6, '
    '"recommended_action": "WAIT", "retrain_scope": null, "parameter_proposals": [], '
    '"risk_level": "low", "requires_human_review": false, "alternative_hypothesis": null}',
    "json_generic": 'Summarise: 12 draws ingested. Example answer: {"draws": 12}',
    "parameter_adjustment": "Loss plateaued at 0.4. Example answer: "
    '{"adjustments": [], "rationale": "keep", "confidence": 0.5, "recommended_action": "hold"}',
    "sieve_analysis": "The sieve kept 37 of 100000 seeds. Example answer: "
    '{"summary": "fine", "candidate_quality": "weak", "survivor_count": "adequate", '
    '"confidence": 0.5, "recommended_action": "retry", "suggested_params": {}, "warnings": []}',
}


@pytest.fixture
def anyio_backend() -> str:
    """One backend: the client is tested on both with the tiny model; this is about the model."""
    return "asyncio"


async def _start(model: Path) -> WorkerClient:
    # One thread: on 2 shared cores, llama.cpp threads spin-waiting on a busy core run 5x slower.
    return await WorkerClient.start(model, n_ctx=2048, n_threads=1)


async def test_one_decision_per_grammar_parses(gemma_model: Path) -> None:
    """For every grammar, a greedy answer from gemma ends on its own and parses into its model."""
    client = await _start(gemma_model)
    try:
        assert client.loaded is not None
        assert client.loaded.chat_format == "gemma"
        for name in GRAMMAR_NAMES:
            result = await client.generate(
                PROMPTS[name], name, max_tokens=grammar_max_tokens(name), system=SYSTEM
            )
            assert result.finish_reason == "stop", (name, result)
            answer = parse_decision(name, result.text)
            assert type(answer) is GRAMMAR_MODELS[name]
    finally:
        await client.stop()


async def test_release_then_reload_gives_the_same_greedy_answer(gemma_model: Path) -> None:
    """Stop frees the worker (gone, memory reported); a new worker answers identically at T=0."""
    name = "agent_decision"

    async def ask(client: WorkerClient) -> str:
        async def generate(prompt: str, grammar_name: str) -> str:
            result = await client.generate(
                prompt, grammar_name, max_tokens=grammar_max_tokens(grammar_name), system=SYSTEM
            )
            return result.text

        outcome = await decide(
            PROMPTS[name],
            name,
            generate=generate,
            heuristic=lambda: heuristic_decision(name, {}, []),
        )
        assert outcome.source == "llm", outcome.error
        assert outcome.raw_text is not None
        return outcome.raw_text

    first = await _start(gemma_model)
    try:
        before = await ask(first)
    finally:
        freed = await first.stop()
    assert freed > 100 * 1024 * 1024  # the 250 MB model was resident
    assert first.returncode == 0
    assert first.rss_bytes() == 0

    second = await _start(gemma_model)
    try:
        assert second.pid != first.pid
        assert await ask(second) == before
    finally:
        await second.stop()
