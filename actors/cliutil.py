"""What every CLI subcommand shares: settings from the global flags, and the exit codes."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

from actors.config import Settings, load_settings
from messages.errors import ConfigError

if TYPE_CHECKING:
    import argparse

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
"""Bad configuration or bad input named on the command line."""


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
