"""One process runs a state directory: an advisory lock held for the daemon's life.

`hold(root, role)` takes `fcntl.flock(LOCK_EX | LOCK_NB)` on `STATE/daemon.lock` and writes the
holder's pid, role and start time into it; the lock goes with the process (the kernel drops it
when the descriptor closes, also on `kill -9`), so a stale file never blocks a start. The
descriptor is close-on-exec: a job process the daemon starts never inherits the lock. A second
daemon, or a foreground dispatch beside a running daemon, gets `StateDirLockedError` naming the
holder's pid.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from messages.errors import WatcherError

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

LOCK_FILE = "daemon.lock"


@dataclass(frozen=True)
class Holder:
    """Who holds the lock, as its lock file says (pid None: not written yet, or unreadable)."""

    pid: int | None
    role: str
    started_at: str

    def describe(self) -> str:
        """`the daemon (pid 1234, since ...)`."""
        pid = "pid unknown" if self.pid is None else f"pid {self.pid}"
        since = f", since {self.started_at}" if self.started_at else ""
        return f"the {self.role or 'daemon'} ({pid}{since})"


class StateDirLockedError(WatcherError):
    """Another process holds the state directory's lock."""

    def __init__(self, root: Path, holder: Holder) -> None:
        self.root = root
        self.holder = holder
        super().__init__(
            f"state directory {root} is in use by {holder.describe()}; one process runs a state"
            " directory at a time: stop that one first, or give it work with"
            f" `python -m actors.system --state-dir {root} submit ...`"
        )


def read_holder(root: Path) -> Holder:
    """What the lock file says of its holder (whether or not the lock is held now)."""
    try:
        data: Any = json.loads((root / LOCK_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return Holder(None, "", "")
    if not isinstance(data, dict):
        return Holder(None, "", "")
    pid = data.get("pid")
    return Holder(
        pid if isinstance(pid, int) else None,
        str(data.get("role", "")),
        str(data.get("started_at", "")),
    )


@contextmanager
def hold(root: Path, role: str = "daemon") -> Iterator[Holder]:
    """Hold the state directory's lock for the block (`root` must exist).

    Raises:
        StateDirLockedError: another process holds it (its pid is named).
    """
    path = root / LOCK_FILE
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise StateDirLockedError(root, read_holder(root)) from None
        me = Holder(os.getpid(), role, datetime.now(UTC).isoformat(timespec="seconds"))
        body = json.dumps({"pid": me.pid, "role": me.role, "started_at": me.started_at})
        os.ftruncate(fd, 0)
        os.pwrite(fd, (body + "\n").encode("utf-8"), 0)
        yield me
    finally:
        # Closing the descriptor drops the lock; the file stays (its content is only a hint).
        with contextlib.suppress(OSError):
            os.close(fd)
