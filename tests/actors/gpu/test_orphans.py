"""Recorded job process groups are reaped at start-up; a reused PID is left alone."""

from __future__ import annotations

import subprocess
import sys
import time
from contextlib import closing
from pathlib import Path

from actors.gpu import orphans
from actors.store import connect, in_transaction

# A leader in its own session with a child in the same group; both ignore SIGTERM.
_TREE = (
    "import signal, subprocess, sys, time\n"
    "signal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
    "child = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)'])\n"
    "print(child.pid, flush=True)\n"
    "time.sleep(60)\n"
)


def _alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] not in {"Z", "X"}


def test_a_recorded_group_is_killed_and_forgotten(tmp_path: Path) -> None:
    """A group left by a dead daemon — leader and child — is killed by `reap`."""
    leader = subprocess.Popen(
        [sys.executable, "-c", _TREE], stdout=subprocess.PIPE, text=True, start_new_session=True
    )
    assert leader.stdout is not None
    child = int(leader.stdout.readline())
    leader.stdout.close()
    with closing(connect(tmp_path / "state.db")) as conn:
        in_transaction(conn, lambda c: orphans.record(c, leader.pid, job="j", run_id="r"))
        reaped = in_transaction(conn, orphans.reap)
        assert reaped == [(leader.pid, "j", 2)]
        assert conn.execute("SELECT COUNT(*) FROM job_processes").fetchone()[0] == 0
    leader.wait(timeout=10)
    deadline = time.monotonic() + 10
    while _alive(child) and time.monotonic() < deadline:
        time.sleep(0.02)
    assert not _alive(child)


def test_a_reused_pid_is_left_alone(tmp_path: Path) -> None:
    """A recorded PID now held by another process (other start time) is not killed."""
    other = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        with closing(connect(tmp_path / "state.db")) as conn:

            def fake(c: object) -> None:
                conn.execute(
                    "INSERT INTO job_processes (pid, start_ticks, job, run_id, started_at)"
                    " VALUES (?, ?, 'j', 'r', 'then')",
                    (other.pid, (orphans.process_start_ticks(other.pid) or 0) + 1),
                )

            in_transaction(conn, fake)
            assert in_transaction(conn, orphans.reap) == []
        assert _alive(other.pid)
    finally:
        other.kill()
        other.wait()
