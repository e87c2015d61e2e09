"""Structured logs (ARCHITECTURE §11): one JSON object per line, plus a console view on a TTY.

Every line has `timestamp` (ISO 8601 UTC), `level`, `event`, `logger` (the actor) and, inside a
message flow, `correlation_id` and `message_id` — taken from the message being handled, so no
handler has to pass them by hand.
"""

from __future__ import annotations

import json
import logging
import sys
from typing import IO, TYPE_CHECKING, Any

import structlog

from actors.console import ConsoleLoggerFactory, shown
from actors.runtime.context import current

if TYPE_CHECKING:
    from pathlib import Path

    from structlog.typing import EventDict, WrappedLogger

_LEVELS = {
    "debug": logging.DEBUG,
    "info": logging.INFO,
    "warning": logging.WARNING,
    "error": logging.ERROR,
}


def add_flow_ids(_logger: WrappedLogger, _method: str, event_dict: EventDict) -> EventDict:
    """Add the handling actor's name and the current message's ids, unless already given."""
    ctx = current.get()
    if ctx is not None:
        event_dict.setdefault("logger", ctx.actor)
        if ctx.correlation_id is not None:
            event_dict.setdefault("correlation_id", ctx.correlation_id)
        if ctx.message_id is not None:
            event_dict.setdefault("message_id", ctx.message_id)
    event_dict.setdefault("logger", "system")
    return event_dict


class _Tee:
    """Final processor: write the JSON line to the file, and a readable line to the console
    (only the lines `actors.console.shown` lets through at this verbosity)."""

    def __init__(self, file: IO[str] | None, console: bool, verbosity: int = 0) -> None:
        self._file = file
        self._console = structlog.dev.ConsoleRenderer(colors=True) if console else None
        self._verbosity = verbosity

    def __call__(self, logger: WrappedLogger, method: str, event_dict: EventDict) -> str:
        if self._file is not None:
            self._file.write(json.dumps(event_dict, default=str, separators=(",", ":")) + "\n")
        level = str(event_dict.get("level", method))
        if self._console is not None and shown(
            level, str(event_dict.get("event")), self._verbosity
        ):
            return str(self._console(logger, method, dict(event_dict)))
        raise structlog.DropEvent


_open_file: IO[str] | None = None


def configure_logging(
    log_file: Path | None,
    level: str = "info",
    *,
    console: bool | None = None,
    verbosity: int = 0,
) -> None:
    """Send logs to `log_file` as JSON lines (line-buffered, so `logs tail -f` sees each line).

    `console` defaults to "stderr is a TTY"; `verbosity` (the CLI's `-v` count) chooses what
    the console shows (see `actors.console`); console lines never break a progress bar.
    """
    global _open_file  # one process-wide log sink, replaced on reconfigure
    close_logging()
    if log_file is not None:
        log_file.parent.mkdir(parents=True, exist_ok=True)
        _open_file = log_file.open("a", encoding="utf-8", buffering=1)
    show = sys.stderr.isatty() if console is None else console
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            add_flow_ids,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True, key="timestamp"),
            structlog.processors.dict_tracebacks,
            _Tee(_open_file, show, verbosity),
        ],
        wrapper_class=structlog.make_filtering_bound_logger(_LEVELS[level]),
        logger_factory=ConsoleLoggerFactory(),
        cache_logger_on_first_use=False,
    )


def close_logging() -> None:
    """Close the log file, if one is open."""
    global _open_file
    if _open_file is not None:
        _open_file.close()
        _open_file = None


def get_logger(name: str) -> Any:
    """A logger whose lines carry `logger=name`."""
    return structlog.get_logger().bind(logger=name)
