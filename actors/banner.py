"""What the daemon says once at start-up: what it watches, where the logs are, how to feed it.

`banner(settings)` is the whole text; other parts of the system add a line of their own with
`add_line(fn)` (`fn(settings)` returns the line, or None to say nothing), e.g. the dashboard's
address.
"""

from __future__ import annotations

import os
import shlex
from collections.abc import Callable
from typing import TYPE_CHECKING

from actors.paths import StatePaths

if TYPE_CHECKING:
    from actors.config import Settings

BannerLine = Callable[["Settings"], "str | None"]

_EXTRA: list[BannerLine] = []


def add_line(line: BannerLine) -> None:
    """Add a line to every later banner (once per function: adding it again changes nothing)."""
    if line not in _EXTRA:
        _EXTRA.append(line)


def banner(settings: Settings) -> str:
    """The start-up text of a daemon running on `settings.state_dir`."""
    paths = StatePaths(settings.state_dir)
    root = shlex.quote(str(paths.root))
    cli = f"python -m actors.system --state-dir {root}"
    lines = [
        f"Watcher is running on {paths.root} (pid {os.getpid()}); Ctrl-C stops it.",
        f"  watching  {paths.inbox}/  draw files (.json .csv .txt): write elsewhere, then mv in",
        f"  feed it   python -m pipeline.synthetic --seed 4242 --count 40 --out /tmp/d.json"
        f" && mv /tmp/d.json {shlex.quote(str(paths.inbox))}/",
        f"  logs      {paths.log_file}  (follow: python -m actors.logs --state-dir {root} tail -f)",
        f"  audit     {paths.audit}  (python -m actors.logs --state-dir {root} tail --audit)",
        f"  status    {cli} status",
    ]
    for line in _EXTRA:
        text = line(settings)
        if text:
            lines.append(f"  {text}")
    return "\n".join(lines)
