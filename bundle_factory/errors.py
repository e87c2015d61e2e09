"""The errors the bundle factory raises on purpose.

::

    WatcherError
    └── BundleError                 base of every bundle-factory error
        ├── UnknownStepError        a step id with no bundle type (names the known ids)
        ├── BudgetError             the token budget cannot hold what must be sent
        ├── StatePathError          a state path escapes the state directory
        ├── TokenizerError          the model's tokenizer could not be loaded
        ├── RetrievalError          the state store could not be read
        └── ResultsError            a results payload holds a value JSON cannot carry
"""

from __future__ import annotations

from messages.errors import WatcherError


class BundleError(WatcherError):
    """Base of every error raised by the bundle factory."""


class UnknownStepError(BundleError):
    """Raised when a step id has no bundle type; the message names the known ids."""


class BudgetError(BundleError):
    """Raised when tier 0 plus the generation reserve exceeds the context, or a cap is too small."""


class StatePathError(BundleError):
    """Raised when a state path escapes the state directory (`..`, outside path, symlink out)."""


class TokenizerError(BundleError):
    """Raised when the model's own tokenizer cannot be loaded."""


class RetrievalError(BundleError):
    """Raised when a tier-2 source (the state store) cannot be read."""


class ResultsError(BundleError):
    """Raised when a results payload holds a value JSON cannot carry; names its path."""
