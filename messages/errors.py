"""The error tree: every error Watcher raises on purpose derives from `WatcherError`.

::

    WatcherError
    ├── ConfigError             bad configuration file or value (exit code 2)
    ├── ActorError              raised by the actor kernel
    │   ├── ActorDeadError      ask() target stopped before it replied
    │   ├── AskTimeoutError     ask() got no reply in time
    │   └── MailboxFullError    tell_nowait() on a full mailbox
    └── InputError              a file or request broke a validation rule (kept aside, never lost)

Packages add their own subclasses next to their code and list them here.
"""

from __future__ import annotations


class WatcherError(Exception):
    """Base of every error this project raises on purpose."""


class ConfigError(WatcherError):
    """Raised at start-up when the configuration breaks a rule; names the key and the rule."""


class ActorError(WatcherError):
    """Base of the errors raised by the actor kernel."""


class ActorDeadError(ActorError):
    """Raised by ask() when the target actor stopped before it replied."""


class AskTimeoutError(ActorError):
    """Raised by ask() when no reply came within the timeout; names actor, kind and seconds."""

    def __init__(self, actor: str, kind: str, seconds: float) -> None:
        super().__init__(f"ask {kind!r} to actor {actor!r} got no reply within {seconds:g} s")
        self.actor = actor
        self.kind = kind
        self.seconds = seconds


class MailboxFullError(ActorError):
    """Raised by tell_nowait() when the target mailbox is full."""


class StoppedForShutdownError(WatcherError):
    """Raised to the asker of a job that the system's shutdown stopped: it has no verdict.

    Not an `ActorError` on purpose: it is not a failure of the request. The request stays in
    progress (claimed in the spool) and its unit runs again after the restart.
    """


class InputError(WatcherError):
    """Raised when an input file or request breaks a rule; names the input and the rule."""

    def __init__(self, source: str, rule: str, detail: str = "") -> None:
        text = f"{source}: {rule}" + (f" ({detail})" if detail else "")
        super().__init__(text)
        self.source = source
        self.rule = rule
        self.detail = detail
