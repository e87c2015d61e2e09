"""The state directory's layout (one place, so no module invents its own paths)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pathlib import Path

SPOOL_STATES = ("tmp", "new", "cur", "held", "done", "failed", "rejected")


@dataclass(frozen=True)
class StatePaths:
    """Every path under the state directory."""

    root: Path

    @property
    def inbox(self) -> Path:
        """Where draw files are dropped (atomically: write elsewhere, then rename in)."""
        return self.root / "inbox"

    @property
    def processed(self) -> Path:
        """Draw files ingested successfully."""
        return self.root / "processed"

    @property
    def quarantine(self) -> Path:
        """Draw files that broke a rule, each with a `.reason.json` beside it."""
        return self.root / "quarantine"

    @property
    def spool(self) -> Path:
        """The request spool (maildir style, ARCHITECTURE §6)."""
        return self.root / "watcher_requests"

    def spool_dir(self, state: str) -> Path:
        """One of the spool's folders: tmp, new, cur, held, done, failed, rejected."""
        if state not in SPOOL_STATES:
            msg = f"unknown spool state {state!r}; known: {', '.join(SPOOL_STATES)}"
            raise ValueError(msg)
        return self.spool / state

    @property
    def db(self) -> Path:
        """The SQLite state store."""
        return self.root / "state.db"

    @property
    def audit(self) -> Path:
        """The append-only audit trail (JSON lines)."""
        return self.root / "audit.jsonl"

    @property
    def log_file(self) -> Path:
        """The structured log (JSON lines)."""
        return self.root / "logs" / "watcher.jsonl"

    @property
    def artifacts(self) -> Path:
        """Job artifacts (survivors, models, prediction pools, candidates)."""
        return self.root / "artifacts"

    @property
    def runs(self) -> Path:
        """Per-job working folders: result files, materialised history."""
        return self.root / "runs"

    @property
    def cache(self) -> Path:
        """Caches (e.g. the assembled model file)."""
        return self.root / "cache"

    def ensure(self) -> StatePaths:
        """Create every folder (idempotent) and return self."""
        for folder in (
            self.inbox,
            self.processed,
            self.quarantine,
            self.artifacts,
            self.runs,
            self.cache,
            self.log_file.parent,
            *(self.spool_dir(state) for state in SPOOL_STATES),
        ):
            folder.mkdir(parents=True, exist_ok=True)
        return self
