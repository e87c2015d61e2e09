"""Map grammar names to their GBNF files and read them (ARCHITECTURE §9)."""

from __future__ import annotations

import re
from functools import cache
from pathlib import Path

from messages.errors import WatcherError

GRAMMAR_DIR = Path(__file__).resolve().parent
"""The folder that holds the `.gbnf` files."""

GRAMMAR_NAMES: tuple[str, ...] = (
    "agent_decision",
    "chapter_13",
    "json_generic",
    "parameter_adjustment",
    "sieve_analysis",
)
"""Every grammar name, sorted; one file `<name>.gbnf` each, one model each (GRAMMAR_MODELS)."""

_MAX_BYTES = re.compile(r"^# max_bytes: (\d+)$", re.MULTILINE)


class GrammarError(WatcherError):
    """Base of the grammar errors: an unknown name, an unreadable or broken grammar file."""


class UnknownGrammarError(GrammarError, KeyError):
    """Raised for a grammar name that has no file; the message lists the known names."""

    def __init__(self, name: str) -> None:
        super().__init__(f"unknown grammar {name!r}; known: {', '.join(GRAMMAR_NAMES)}")
        self.name = name

    def __str__(self) -> str:
        # KeyError's __str__ would quote the message; show it as written.
        return str(self.args[0])


def _check(name: str) -> None:
    if name not in GRAMMAR_NAMES:
        raise UnknownGrammarError(name)


@cache
def load_grammar(name: str) -> str:
    """The GBNF text of grammar `name`.

    Raises:
        UnknownGrammarError: `name` is not one of GRAMMAR_NAMES.
        GrammarError: the file cannot be read.
    """
    _check(name)
    path = GRAMMAR_DIR / f"{name}.gbnf"
    try:
        return path.read_text(encoding="utf-8")
    except OSError as exc:
        msg = f"grammar {name!r}: cannot read {path}: {exc}"
        raise GrammarError(msg) from exc


def grammar_max_tokens(name: str) -> int:
    """The most tokens an answer in grammar `name` can take, end-of-text token included.

    The generator writes the worst-case size in bytes into the file header; every token adds at
    least one byte, so bytes + 1 is a safe `max_tokens` that never truncates a valid answer.
    """
    found = _MAX_BYTES.search(load_grammar(name))
    if found is None:
        msg = f"grammar {name!r}: header has no '# max_bytes: N' line"
        raise GrammarError(msg)
    return int(found.group(1)) + 1
