"""The file being handled, noted on disk: a file that kills the daemon is not met forever.

An exception while a file is handled quarantines it at once (the actor). A death of the whole
process (the kernel's OOM killer, a crash in native code) leaves no exception to catch: before
each file the actor writes `STATE/ingesting.json` (file name, inode, attempts) and removes it
once the file is handled. At start-up a note naming a file still in the inbox means the daemon
died while handling it; after `MAX_ATTEMPTS` such deaths in a row the file is quarantined with
the rule `file was being handled when the daemon died N times`, so the next start is clean.
(One death is not enough: `kill -9` or a power cut mid-file is no fault of the file.)
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pathlib import Path

NOTE = "ingesting.json"
MAX_ATTEMPTS = 3
"""Deaths in a row while handling one file before it is quarantined."""


@dataclass(frozen=True)
class InFlight:
    """The file a daemon was handling, and how many handlings of it never ended."""

    name: str
    inode: int
    attempts: int


def read_note(root: Path) -> InFlight | None:
    """The note a previous daemon left, or None (none, or unreadable)."""
    try:
        data: Any = json.loads((root / NOTE).read_text(encoding="utf-8"))
        return InFlight(str(data["file"]), int(data["inode"]), int(data["attempts"]))
    except (OSError, ValueError, KeyError, TypeError):
        return None


def write_note(root: Path, note: InFlight) -> None:
    """Note the file about to be handled (a plain write: it must survive the process, not a
    power cut, so no fsync on the per-file path)."""
    body = {"file": note.name, "inode": note.inode, "attempts": note.attempts}
    tmp = root / f".{NOTE}.tmp"
    tmp.write_text(json.dumps(body), encoding="utf-8")
    os.replace(tmp, root / NOTE)


def clear_note(root: Path) -> None:
    """The file was handled: forget it."""
    try:
        os.unlink(root / NOTE)
    except FileNotFoundError:
        return


def next_note(previous: InFlight | None, name: str, inode: int) -> InFlight:
    """The note for handling `name` now: one more attempt if the last death was on it."""
    if previous is not None and previous.name == name and previous.inode == inode:
        return InFlight(name, inode, previous.attempts + 1)
    return InFlight(name, inode, 1)
