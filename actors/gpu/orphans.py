"""Job processes never outlive the daemon: recorded while they run, reaped at the next start.

Two guards (issue 16). Each job process is started with `PR_SET_PDEATHSIG = SIGKILL`
(`actors.gpu.runner`), so the kernel kills it the moment the daemon dies, even by `kill -9`.
Its own children may not have that flag, so every job's process group is also recorded here
(`job_processes`, one row per running job, with the leader's start time from `/proc`) and
removed when the job is over; at start-up, a group still recorded belonged to a daemon that
died, and whatever is left of it is killed. The start time guards against a reused PID.
The one module that reads and writes the `job_processes` table.
"""

from __future__ import annotations

import contextlib
import os
import signal
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import sqlite3

__all__ = ["forget", "process_start_ticks", "reap", "record"]


def process_start_ticks(pid: int) -> int | None:
    """The process's start time in clock ticks since boot (`/proc/PID/stat` field 22)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_bytes()
    except OSError:
        return None
    fields = stat[stat.rfind(b")") + 2 :].split()
    # Field 22 of the whole line is the 20th after the command name (state is the 3rd field).
    return int(fields[19]) if len(fields) > 19 else None


def record(conn: sqlite3.Connection, pid: int, *, job: str, run_id: str) -> None:
    """A job process (and process group) `pid` started."""
    conn.execute(
        "INSERT OR REPLACE INTO job_processes (pid, start_ticks, job, run_id, started_at)"
        " VALUES (?, ?, ?, ?, ?)",
        (pid, process_start_ticks(pid) or 0, job, run_id, datetime.now(UTC).isoformat()),
    )


def forget(conn: sqlite3.Connection, pid: int) -> None:
    """The job process `pid` is over and its group is stopped."""
    conn.execute("DELETE FROM job_processes WHERE pid = ?", (pid,))


def _group_members(pgid: int) -> list[int]:
    members = []
    with contextlib.suppress(OSError), os.scandir("/proc") as entries:
        for entry in entries:
            if not entry.name.isdigit():
                continue
            try:
                stat = Path(entry.path, "stat").read_bytes()
            except OSError:
                continue
            fields = stat[stat.rfind(b")") + 2 :].split()
            if len(fields) > 2 and int(fields[2]) == pgid and fields[0] not in (b"Z", b"X"):
                members.append(int(entry.name))
    return members


def reap(conn: sqlite3.Connection) -> list[tuple[int, str, int]]:
    """Kill what is left of every recorded job group; return (pgid, job, processes killed).

    A recorded leader that is alive with another start time is a reused PID: left alone.
    Members of the group are killed whether the leader is alive or not (the leader may have
    died with the daemon while a child of it lives on in its group).
    """
    rows = conn.execute("SELECT pid, start_ticks, job FROM job_processes").fetchall()
    reaped: list[tuple[int, str, int]] = []
    for pid, ticks, job in rows:
        now_ticks = process_start_ticks(int(pid))
        if now_ticks is not None and ticks and now_ticks != int(ticks):
            conn.execute("DELETE FROM job_processes WHERE pid = ?", (pid,))
            continue
        members = _group_members(int(pid))
        if members:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(int(pid), signal.SIGKILL)
        reaped.append((int(pid), str(job), len(members)))
        conn.execute("DELETE FROM job_processes WHERE pid = ?", (pid,))
    return reaped
