"""`kill -9` of the daemon while it ingests a big file: after a restart, exactly once.

(The other crash window, committed but not yet announced, is tested in-process in
tests/actors/ingestion/test_actor.py, where the announcements can be counted.)
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

import pytest

from actors.ingestion.history import verify_chain
from tests.e2e.conftest import ROOT, audit_records, wait_for

if TYPE_CHECKING:
    from pathlib import Path

DRAWS = 50_000
EPOCH = datetime(2026, 1, 1, tzinfo=UTC)


def big_file(path: Path) -> None:
    records = [
        {
            "draw_id": f"k-{i:06d}",
            "timestamp": (EPOCH + timedelta(minutes=i)).isoformat(),
            "value": (i * 7919) % 1000,
        }
        for i in range(DRAWS)
    ]
    path.write_text(json.dumps(records))


def log_events(state_dir: Path) -> list[str]:
    path = state_dir / "logs" / "watcher.jsonl"
    if not path.exists():
        return []
    events = []
    for line in path.read_text().splitlines():
        try:
            events.append(json.loads(line)["event"])
        except (ValueError, KeyError):
            continue  # the last line may be cut short by the kill
    return events


def start_daemon(flags: list[str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "actors.system", *flags],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def kill_9(daemon: subprocess.Popen[bytes]) -> None:
    daemon.send_signal(signal.SIGKILL)
    daemon.wait(timeout=10)


@pytest.mark.parametrize("delay_s", [0.05, 0.5])
def test_kill_9_mid_ingest_then_restart_ingests_the_file_exactly_once(
    tmp_path: Path, delay_s: float
) -> None:
    """Killed while a 50,000-draw file is in flight, the daemon leaves no partial history;
    after a restart the file is ingested once, into a history whose chain verifies."""
    state = tmp_path / "state"
    config = tmp_path / "watcher.toml"
    config.write_text("[trigger]\nrequest_every_n_draws = 10000000\n")
    flags = ["--state-dir", str(state), "--config", str(config)]
    daemon = start_daemon(flags)
    try:
        wait_for(lambda: audit_records(state), what="daemon start")
        staged = tmp_path / "big.json"
        big_file(staged)
        os.replace(staged, state / "inbox" / "big.json")
        wait_for(lambda: "ingest.file_started" in log_events(state), what="the ingest to start")
        time.sleep(delay_s)
        kill_9(daemon)
        assert "ingest.file_processed" not in log_events(state), "the kill came too late"
        assert (state / "inbox" / "big.json").exists()
        # Restarted, it ingests the file again from the top. The TriggerActor takes its time
        # over 50,000 announcements (not this test's subject): stop once the file is in.
        daemon = start_daemon(flags)
        wait_for(
            lambda: "ingest.file_processed" in log_events(state), what="the file to be ingested"
        )
    finally:
        if daemon.poll() is None:
            kill_9(daemon)

    conn = sqlite3.connect(state / "state.db")
    try:
        count, distinct = conn.execute(
            "SELECT COUNT(*), COUNT(DISTINCT draw_id) FROM draws WHERE stream = 'real'"
        ).fetchone()
        assert (count, distinct) == (DRAWS, DRAWS)
        check = verify_chain(conn, "real")
        assert check.ok, check.detail
        assert check.checked == DRAWS
        files = conn.execute("SELECT name, outcome, appended FROM ingest_files").fetchall()
        assert files == [("big.json", "processed", DRAWS)]
    finally:
        conn.close()
    assert (state / "processed" / "big.json").exists()
    assert not list((state / "inbox").iterdir())
