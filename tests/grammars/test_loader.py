"""The loader maps grammar names to files and refuses unknown names with the known ones."""

from __future__ import annotations

import pytest

import grammars
from grammars import GRAMMAR_NAMES, GrammarError, UnknownGrammarError, load_grammar


def test_all_is_sorted_and_complete() -> None:
    """The package re-exports exactly its public names, sorted."""
    assert grammars.__all__ == sorted(grammars.__all__)
    assert all(hasattr(grammars, name) for name in grammars.__all__)


@pytest.mark.parametrize("name", GRAMMAR_NAMES)
def test_every_grammar_loads_with_a_root_rule(name: str) -> None:
    """Each grammar file reads and starts its rules with `root`."""
    text = load_grammar(name)
    rules = [line for line in text.splitlines() if "::=" in line]
    assert rules[0].startswith("root ")


def test_unknown_name_lists_the_known_ones() -> None:
    """An unknown name raises UnknownGrammarError naming it and every known grammar."""
    with pytest.raises(UnknownGrammarError) as info:
        load_grammar("agent_decisions")
    text = str(info.value)
    assert "'agent_decisions'" in text
    assert all(name in text for name in GRAMMAR_NAMES)
    assert isinstance(info.value, GrammarError)
    assert isinstance(info.value, KeyError)
