"""What every CLI subcommand shares: settings from the global flags, and the exit codes."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

from actors.config import Settings, load_settings
from messages.errors import ConfigError

if TYPE_CHECKING:
    import argparse
    from collections.abc import Collection

    from pydantic import ValidationError

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
"""Bad configuration or bad input named on the command line."""
EXIT_ATTENTION = 3
"""`--once` / `--dry-run`: the run itself went through, but something needs a person (a file
quarantined, a request rejected or escalated, a PROBLEM line in the plan)."""


def validation_lines(error: ValidationError, *, tags: Collection[str] = ()) -> list[str]:
    """One `key: value: rule` line per problem of a pydantic error (no pydantic internals).

    `tags`: union tags (e.g. request types) dropped from the front of a key.
    """
    lines = []
    for item in error.errors():
        loc = [str(part) for part in item["loc"]]
        if loc and loc[0] in tags:
            loc = loc[1:]
        key = ".".join(loc) or "(whole input)"
        rule = str(item["msg"]).removeprefix("Value error, ").removeprefix("Assertion failed, ")
        if item["type"] == "extra_forbidden":
            rule = "not a field of this kind (unknown key)"
        value = item.get("input")
        shown = repr(value) if len(repr(value)) <= 80 else repr(value)[:77] + "..."
        lines.append(f"{key}: {shown}: {rule}")
    return lines


def require_state_dir(settings: Settings, command: str) -> bool:
    """False (after saying so on stderr) when the state directory does not exist: a command
    that acts on a daemon's state must not create one at a mistyped path."""
    root = settings.state_dir
    if root.is_dir():
        return True
    sys.stderr.write(
        f"{command}: state directory {root} does not exist (is --state-dir right? the daemon"
        " creates it on its first start)\n"
    )
    return False


def settings_or_exit(args: argparse.Namespace) -> Settings:
    """Settings from `--config` / `--state-dir`; on a config error, print it and exit 2."""
    try:
        settings = load_settings(args.config, state_dir=args.state_dir)
    except ConfigError as exc:
        sys.stderr.write(f"watcher: configuration error:\n{exc}\n")
        raise SystemExit(EXIT_USAGE) from exc
    if getattr(args, "log_level", None):
        logging = settings.logging.model_copy(update={"level": args.log_level})
        settings = settings.model_copy(update={"logging": logging})
    return settings
