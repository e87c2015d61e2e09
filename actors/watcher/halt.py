"""The kill switch: one halt file. While it exists the watcher starts nothing new.

The file holds why and when (JSON), and whether the running job must be cancelled too
(`halt --now`). `resume` removes it. Blocking calls: run them in a worker thread.
"""

from __future__ import annotations

import os
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Literal

from pydantic import ValidationError

from actors.atomic import write_atomic
from messages.base import Model

if TYPE_CHECKING:
    from pathlib import Path


class HaltState(Model):
    """What the halt file says."""

    reason: str
    halted_at: datetime
    by: Literal["cli", "escalation", "external"] = "cli"
    now: bool = False
    """Also cancel the running job (`halt --now`)."""
    request_id: str | None = None
    """The request that escalated, when an escalation halted the watcher."""


def read_halt(path: Path) -> HaltState | None:
    """The halt state, or None when not halted. An unreadable file still means halted."""
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return None
    try:
        return HaltState.model_validate_json(raw)
    except ValidationError:
        # Someone `touch`ed it, or wrote prose: the switch is on all the same.
        text = raw.decode("utf-8", errors="replace").strip()[:200]
        return HaltState(reason=text or "halt file present", halted_at=_mtime(path), by="external")


def _mtime(path: Path) -> datetime:
    try:
        return datetime.fromtimestamp(path.stat().st_mtime, UTC)
    except FileNotFoundError:
        return datetime.now(UTC)


def write_halt(path: Path, state: HaltState) -> None:
    """Switch on (atomically); an existing halt is replaced by the newer reason."""
    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(path, (state.model_dump_json(indent=2) + "\n").encode("utf-8"))


def clear_halt(path: Path) -> HaltState | None:
    """Switch off; return what the halt said (None if it was not on)."""
    state = read_halt(path)
    try:
        os.unlink(path)
    except FileNotFoundError:
        return None
    return state


def resume_command(state_dir: Path, request_id: str | None = None) -> str:
    """The exact command that resumes this watcher (or one request parked with a person)."""
    tail = f" {request_id}" if request_id else ""
    return f"python -m actors.system --state-dir {state_dir} resume{tail}"
