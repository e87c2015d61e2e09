"""The terminal a person watches: log lines and progress bars that never share a line.

Every console line goes through `tqdm.write`, which clears the bars, prints the line and draws
the bars again below it; `ProgressBar` keeps one tqdm bar per running job (plain lines when
stderr is not a terminal). The console shows warnings and up, and by default one line per
draw file and per request (`CONSOLE_EVENTS`); `-v` shows every info line, `-vv` debug too.
The JSON log file always gets everything at its own level.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Any, TextIO

from tqdm import tqdm

if TYPE_CHECKING:
    from messages.dispatch import JobProgress

CONSOLE_EVENTS = frozenset(
    {
        "system.started",
        "system.stopped",
        "ingest.file_processed",
        "injector.injected",
        "request.finished",
    }
)
"""Info events shown on the console without `-v`: one line per draw file and per request."""

_RANK = {"debug": 10, "info": 20, "warning": 30, "warn": 30, "error": 40, "critical": 50}


def shown(level: str, event: str, verbosity: int) -> bool:
    """Whether a log line of `level` and `event` goes to the console at `verbosity`."""
    rank = _RANK.get(level, 20)
    if rank >= _RANK["warning"]:
        return True
    if verbosity >= 2:
        return True
    if verbosity == 1:
        return rank >= _RANK["info"]
    return rank >= _RANK["info"] and event in CONSOLE_EVENTS


def write_line(text: str, stream: TextIO | None = None) -> None:
    """Print one line above any progress bars (they are redrawn below it)."""
    tqdm.write(text, file=stream or sys.stderr)


class ConsoleLogger:
    """A structlog logger that prints each rendered line with `write_line`."""

    def __init__(self, stream: TextIO | None = None) -> None:
        self._stream = stream

    def msg(self, message: str) -> None:
        """Print one rendered line."""
        write_line(message, self._stream)

    log = debug = info = warn = warning = err = error = critical = exception = fatal = msg


class ConsoleLoggerFactory:
    """structlog's logger factory for `ConsoleLogger`."""

    def __init__(self, stream: TextIO | None = None) -> None:
        self._stream = stream

    def __call__(self, *_args: Any) -> ConsoleLogger:
        return ConsoleLogger(self._stream)


class ProgressBar:
    """Job progress on stderr: one tqdm bar per job on a terminal, plain lines otherwise."""

    def __init__(self, stream: TextIO | None = None) -> None:
        self.stream = stream or sys.stderr
        self.tty = self.stream.isatty()
        self._bars: dict[str, tqdm[Any]] = {}

    def __call__(self, event: JobProgress) -> None:
        total = max(event.total, 1)
        done = min(event.done, total)
        if not self.tty:
            label = f"{event.job} {done}/{event.total} {event.message}".rstrip()
            write_line(label, self.stream)
            return
        bar = self._bars.get(event.job)
        if bar is None:
            bar = tqdm(total=total, desc=event.job, file=self.stream, leave=True)
            self._bars[event.job] = bar
        bar.total = total
        bar.set_postfix_str(event.message, refresh=False)
        bar.update(done - bar.n)
        if done >= total:
            bar.close()
            del self._bars[event.job]

    def close(self) -> None:
        """Close the bars still open (a job that never reported its end)."""
        for bar in self._bars.values():
            bar.close()
        self._bars.clear()
