"""Grammar files are generated from the models; the generator refuses what it cannot bound."""

from __future__ import annotations

import subprocess
import sys
from typing import TYPE_CHECKING, Any

import pytest

from grammars import GRAMMAR_NAMES, grammar_max_tokens, load_grammar
from grammars.gbnf import GrammarBuildError, compile_schema
from grammars.generate import GRAMMAR_DIR, render_grammar, stale_files, write_all
from messages.decisions import GRAMMAR_MODELS

if TYPE_CHECKING:
    from pathlib import Path

GENERATION_RESERVE = 2000
"""Tokens the bundle keeps for the answer (ARCHITECTURE §8)."""


def test_committed_files_are_up_to_date() -> None:
    """Every .gbnf file is exactly what the models generate (run the generator if this fails)."""
    assert stale_files() == []


def test_check_command_passes_on_the_committed_files() -> None:
    """`python -m grammars.generate --check` exits 0, as a user or CI runs it."""
    done = subprocess.run(
        [sys.executable, "-m", "grammars.generate", "--check"],
        capture_output=True,
        text=True,
        check=False,
        cwd=GRAMMAR_DIR.parent,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "up to date" in done.stdout


def test_check_finds_an_edited_file(tmp_path: Path) -> None:
    """A hand edit (or a model change without regenerating) is reported by name."""
    write_all(tmp_path)
    assert stale_files(tmp_path) == []
    path = tmp_path / "chapter_13.gbnf"
    path.write_text(path.read_text(encoding="utf-8").replace("{0,400}", "{0,4000}"))
    (tmp_path / "sieve_analysis.gbnf").unlink()
    assert stale_files(tmp_path) == ["chapter_13.gbnf", "sieve_analysis.gbnf"]


def test_one_grammar_per_model_and_file() -> None:
    """Grammar names, models and files are the same set."""
    assert tuple(sorted(GRAMMAR_MODELS)) == GRAMMAR_NAMES
    assert sorted(p.stem for p in GRAMMAR_DIR.glob("*.gbnf")) == list(GRAMMAR_NAMES)


@pytest.mark.parametrize("name", GRAMMAR_NAMES)
def test_every_answer_fits_the_generation_reserve(name: str) -> None:
    """The worst-case answer of every grammar fits the 2,000-token generation reserve."""
    assert grammar_max_tokens(name) <= GENERATION_RESERVE + 1


@pytest.mark.parametrize("name", GRAMMAR_NAMES)
def test_no_unbounded_repetition(name: str) -> None:
    """No `*` or `+` anywhere: every repetition is `{m,n}`, so every answer is bounded."""
    rules = [line for line in load_grammar(name).splitlines() if "::=" in line]
    for rule in rules:
        body = rule.split("::=", 1)[1]
        outside_classes = "".join(part.split("]")[-1] for part in body.split("["))
        assert "*" not in outside_classes
        assert "+" not in outside_classes


@pytest.mark.parametrize("name", GRAMMAR_NAMES)
def test_no_left_recursion(name: str) -> None:
    """No rule starts with a reference to itself (llama.cpp would loop on it)."""
    for line in load_grammar(name).splitlines():
        if "::=" not in line:
            continue
        head, body = (part.strip() for part in line.split("::=", 1))
        for alternative in body.split(" | "):
            assert alternative.strip().split(" ")[0] != head


def _schema(prop: dict[str, Any]) -> dict[str, Any]:
    return {"type": "object", "properties": {"x": prop}}


@pytest.mark.parametrize(
    ("prop", "complaint"),
    [
        ({"type": "string"}, "maxLength"),
        ({"type": "string", "maxLength": 5, "pattern": "^.*$"}, "TEXT_PATTERN"),
        ({"type": "number"}, "upper bound"),
        ({"type": "number", "minimum": -5, "maximum": 5}, "power of ten"),
        ({"type": "number", "minimum": -1, "maximum": 10}, "must be"),
        ({"type": "array", "items": {"type": "boolean"}}, "maxItems"),
        ({"type": "object", "additionalProperties": True}, "no GBNF translation"),
    ],
)
def test_shapes_without_a_bound_are_refused(prop: dict[str, Any], complaint: str) -> None:
    """The compiler names the field and the rule instead of writing an unbounded grammar."""
    with pytest.raises(GrammarBuildError, match=complaint) as info:
        compile_schema(_schema(prop), "test")
    assert "root.x" in str(info.value)


def test_render_is_deterministic() -> None:
    """Rendering twice gives the same bytes (the staleness check depends on it)."""
    assert [render_grammar(n) for n in GRAMMAR_NAMES] == [render_grammar(n) for n in GRAMMAR_NAMES]
