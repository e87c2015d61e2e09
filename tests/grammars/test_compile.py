"""Every grammar compiles in llama.cpp, and one that does not is named with the parser's message."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from grammars import GRAMMAR_NAMES, load_grammar

if TYPE_CHECKING:
    from pathlib import Path

    from actors.llm.worker import Engine


def test_every_grammar_compiles(tiny_engine: Engine) -> None:
    """Loading a model compiles all grammars; each is there, ready to constrain."""
    assert sorted(tiny_engine.grammars) == list(GRAMMAR_NAMES)
    assert all(tiny_engine.grammars.values())


@pytest.mark.parametrize(
    ("text", "parser_says"),
    [
        ("root ::= undefined-rule", "Undefined rule identifier 'undefined-rule'"),
        ('root ::= "unterminated', "unexpected end of input"),
    ],
)
def test_a_broken_grammar_is_named_with_the_parser_message(
    tiny_model: Path, text: str, parser_says: str
) -> None:
    """Start-up fails with GrammarCompileError naming the grammar and quoting llama.cpp."""
    from actors.llm.worker import Engine, GrammarCompileError  # after the conftest's importorskip

    grammars = {"agent_decision": load_grammar("agent_decision"), "broken_one": text}
    with pytest.raises(GrammarCompileError) as info:
        Engine.load(tiny_model, n_ctx=512, grammars=grammars)
    assert info.value.grammar_name == "broken_one"
    assert "'broken_one'" in str(info.value)
    assert parser_says in str(info.value)
