"""The grammar tests compile and probe grammars with llama.cpp on the tiny model."""

from __future__ import annotations

from tests.actors.llm.conftest import tiny_engine, tiny_model

__all__ = ["tiny_engine", "tiny_model"]
