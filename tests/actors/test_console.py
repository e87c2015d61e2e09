"""The console a person watches: few lines by default, bars and log lines never on one line,
and a banner that says what the daemon watches."""

from __future__ import annotations

import io
from typing import TYPE_CHECKING

import pytest

from actors import banner
from actors.config import Settings
from actors.console import ProgressBar, shown, write_line
from messages.dispatch import JobProgress

if TYPE_CHECKING:
    from pathlib import Path


class FakeTerminal(io.StringIO):
    """A stream that says it is a terminal (so bars are drawn)."""

    def isatty(self) -> bool:
        return True


def test_console_shows_warnings_and_one_line_per_file_and_request_by_default() -> None:
    """Default: warnings, and the per-file / per-request info lines; -v: all info; -vv: debug."""
    assert shown("warning", "anything", 0)
    assert shown("info", "ingest.file_processed", 0)
    assert shown("info", "request.finished", 0)
    assert not shown("info", "lease.released", 0)
    assert shown("info", "lease.released", 1)
    assert not shown("debug", "lease.released", 1)
    assert shown("debug", "lease.released", 2)


def test_log_lines_never_share_a_line_with_a_progress_bar() -> None:
    """A log line written while a bar is drawn lands on a line of its own; the bar comes back."""
    term = FakeTerminal()
    bars = ProgressBar(term)
    bars(JobProgress(job="sieve", run_id="r", done=3, total=10, message="seeds"))
    write_line("a log line", term)
    bars(JobProgress(job="sieve", run_id="r", done=10, total=10, message="done"))
    out = term.getvalue()
    line = next(chunk for chunk in out.split("\n") if "a log line" in chunk)
    assert line.rsplit("\r", 1)[-1] == "a log line"
    assert "10/10" in out.split("a log line", 1)[1]


def test_progress_without_a_terminal_is_plain_lines() -> None:
    """Not a terminal: one plain line per progress event, no carriage returns."""
    pipe = io.StringIO()
    bars = ProgressBar(pipe)
    bars(JobProgress(job="sieve", run_id="r", done=1, total=2, message="half"))
    assert pipe.getvalue() == "sieve 1/2 half\n"


def test_banner_names_the_inbox_the_logs_and_added_lines(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The banner says what is watched, where the logs are, how to feed a draw, and carries
    the lines other parts add (once each)."""

    def dashboard(_settings: Settings) -> str:
        return "dashboard http://127.0.0.1:8765/"

    monkeypatch.setattr(banner, "_EXTRA", [])
    banner.add_line(dashboard)
    banner.add_line(dashboard)
    text = banner.banner(Settings(state_dir=tmp_path))
    assert f"{tmp_path / 'inbox'}/" in text
    assert str(tmp_path / "logs" / "watcher.jsonl") in text
    assert "python -m pipeline.synthetic" in text
    assert text.count("dashboard http://127.0.0.1:8765/") == 1
