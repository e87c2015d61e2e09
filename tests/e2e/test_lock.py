"""One process per state directory: a second daemon exits 2 naming the holder; a foreground
dispatch beside a daemon hands its request over and claims nothing."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from typing import TYPE_CHECKING

import pytest

from actors.statelock import LOCK_FILE, StateDirLockedError, hold
from tests.e2e.conftest import ROOT, run_cli, wait_for

if TYPE_CHECKING:
    from pathlib import Path


def test_a_second_holder_in_one_process_tree_is_refused(tmp_path: Path) -> None:
    """`hold` twice on one directory: the second raises, naming the first's pid and role;
    after the first lets go, the lock is free again."""
    with hold(tmp_path, "daemon") as me:
        with pytest.raises(StateDirLockedError) as info, hold(tmp_path, "foreground dispatch"):
            pass
        assert info.value.holder.pid == me.pid
        assert f"pid {me.pid}" in str(info.value)
    with hold(tmp_path, "daemon"):
        assert json.loads((tmp_path / LOCK_FILE).read_text())["role"] == "daemon"


def test_second_daemon_and_foreground_dispatch_beside_a_running_daemon(tmp_path: Path) -> None:
    """A running daemon holds the lock: `--once` exits 2 naming its pid; `--dispatch-selfplay`
    files the request into the daemon's spool (claims nothing, runs nothing) and exits 0."""
    state = tmp_path / "state"
    out = (tmp_path / "daemon.out").open("wb")
    daemon = subprocess.Popen(
        [sys.executable, "-m", "actors.system", "--state-dir", str(state)],
        cwd=ROOT,
        stdout=out,
        stderr=subprocess.STDOUT,
    )
    try:
        lock = state / LOCK_FILE
        wait_for(
            lambda: lock.exists() and f'"pid": {daemon.pid}' in lock.read_text(),
            what="the daemon's lock",
        )
        # Halted: the handed-over request waits in new/, so nothing runs meanwhile.
        halted = run_cli("actors.system", "--state-dir", str(state), "halt", "--reason", "test")
        assert halted.returncode == 0, halted.stderr
        second = run_cli("actors.system", "--state-dir", str(state), "--once")
        assert second.returncode == 2, second.stderr
        assert f"pid {daemon.pid}" in second.stderr
        assert "in use by the daemon" in second.stderr
        dispatch = run_cli(
            "actors.system", "--state-dir", str(state), "--dispatch-selfplay", "--episodes", "1"
        )
        assert dispatch.returncode == 0, dispatch.stderr
        assert "handed selfplay_retrain to it" in dispatch.stdout
        assert len(list((state / "watcher_requests" / "new").glob("*.json"))) == 1
        assert not list((state / "watcher_requests" / "cur").iterdir())
        assert daemon.poll() is None
    finally:
        daemon.send_signal(signal.SIGTERM)
        code = daemon.wait(timeout=15)
        out.close()
    assert code == 0, (tmp_path / "daemon.out").read_text()
