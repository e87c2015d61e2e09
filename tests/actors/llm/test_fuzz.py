"""Fuzz: a random-weight model writes 300 constrained answers per grammar; all of them parse.

One worker process per grammar, all at once (the 2 cores share them): this is the real worker and
protocol, the same llama.cpp grammar engine the real model uses, and a model that has no idea what
JSON is — so whatever holds the answers to the schema is the grammar alone.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import anyio
import pytest

from actors.llm.client import WorkerClient
from grammars import GRAMMAR_NAMES, grammar_max_tokens
from messages.decisions import parse_decision

if TYPE_CHECKING:
    from pathlib import Path

SAMPLES = 300
TEMPERATURES = (0.6, 0.8, 1.0, 1.2, 1.5)
"""Cycled over the samples: low ones repeat the model's favourites, high ones wander."""


@pytest.fixture
def anyio_backend() -> str:
    """One backend is enough here: the fuzz is about grammars, not event loops."""
    return "asyncio"


async def _fuzz(model: Path, name: str, failures: list[str], distinct: dict[str, int]) -> None:
    client = await WorkerClient.start(model, n_ctx=4096, n_threads=1, chat_format="raw")
    max_tokens = grammar_max_tokens(name)
    texts: set[str] = set()
    try:
        for i in range(SAMPLES):
            result = await client.generate(
                "answer:",
                name,
                max_tokens=max_tokens,
                temperature=TEMPERATURES[i % len(TEMPERATURES)],
                seed=i,
            )
            texts.add(result.text)
            if result.finish_reason != "stop":
                failures.append(f"{name}#{i}: cut at {result.tokens_out} tokens")
            elif len(result.text.encode()) > max_tokens - 1:
                failures.append(f"{name}#{i}: {len(result.text.encode())} bytes > bound")
            try:
                parse_decision(name, result.text)
            except ValueError as exc:
                failures.append(f"{name}#{i}: {exc} in {result.text!r}")
    finally:
        await client.stop()
    distinct[name] = len(texts)


@pytest.mark.anyio
async def test_constrained_samples_always_parse(tiny_model: Path) -> None:
    """300 samples per grammar at temperature > 0: 100% end on their own and parse."""
    failures: list[str] = []
    distinct: dict[str, int] = {}
    async with anyio.create_task_group() as tg:
        for name in GRAMMAR_NAMES:
            tg.start_soon(_fuzz, tiny_model, name, failures, distinct)
    assert failures == []
    # The samples really differ: the fuzz explores, it does not repeat one answer.
    assert all(count >= SAMPLES * 0.8 for count in distinct.values()), distinct
