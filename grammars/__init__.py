"""GBNF grammars for the decision models and the loader that maps grammar names to files."""

from grammars.loader import (
    GRAMMAR_NAMES as GRAMMAR_NAMES,
)
from grammars.loader import (
    GrammarError as GrammarError,
)
from grammars.loader import (
    UnknownGrammarError as UnknownGrammarError,
)
from grammars.loader import (
    grammar_max_tokens as grammar_max_tokens,
)
from grammars.loader import (
    load_grammar as load_grammar,
)

__all__ = [
    "GRAMMAR_NAMES",
    "GrammarError",
    "UnknownGrammarError",
    "grammar_max_tokens",
    "load_grammar",
]
