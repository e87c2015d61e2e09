"""D4: a request claimed when the daemon dies (kill -9) completes exactly once after a restart."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import sqlite3
import subprocess
import sys
from pathlib import Path

from tests.e2e.conftest import ROOT, audit_records, history, run_cli, wait_for


def test_a_claim_left_by_a_crash_completes_exactly_once(tmp_path: Path) -> None:
    """Claimed, killed mid-job, restarted: recovered, run, archived and recorded once."""
    config = tmp_path / "watcher.toml"
    # Chapter 13 in forced mode with a cadence it never reaches: only our request runs.
    config.write_text("[trigger]\nrequest_every_n_draws = 1000000\n")
    draws = tmp_path / "history.json"
    draws.write_text(json.dumps(history()))
    base = ["actors.system", "--state-dir", str(tmp_path), "--config", str(config)]
    assert run_cli(*base, "ingest", str(draws)).returncode == 0
    submitted = run_cli(*base, "submit", "pipeline_rerun", "--steps", "1,2,3")
    assert submitted.returncode == 0, submitted.stderr
    request_id = submitted.stdout.strip()
    claimed = tmp_path / "watcher_requests" / "cur" / f"{request_id}.json"

    with (tmp_path / "daemon.out").open("wb") as out:
        daemon = subprocess.Popen(
            [sys.executable, "-m", *base], cwd=ROOT, stdout=out, stderr=subprocess.STDOUT
        )
    try:
        wait_for(claimed.exists, timeout=60, what="the request to be claimed")
        started = wait_for(
            lambda: [r for r in audit_records(tmp_path) if r["event"] == "job_started"],
            timeout=60,
            what="its first job to start",
        )
    finally:
        daemon.send_signal(signal.SIGKILL)
        daemon.wait(timeout=10)
    # The job runs in its own session, so it outlived the daemon: end it as an operator would.
    for record in started:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(int(record["detail"]["pid"]), signal.SIGKILL)
    assert claimed.exists(), "the claim must still be in cur/ after the crash"

    recovered = run_cli(*base, "--once", timeout=300)
    assert recovered.returncode == 0, recovered.stderr
    again = run_cli(*base, "--once", timeout=300)
    assert again.returncode == 0, again.stderr

    spool = tmp_path / "watcher_requests"
    assert (spool / "done" / f"{request_id}.json").exists()
    assert not claimed.exists()
    assert not (spool / "new" / f"{request_id}.json").exists()
    endings = [
        r
        for r in audit_records(tmp_path)
        if r["entity"] == "request"
        and r["entity_id"] == request_id
        and r["event"] in {"completed", "failed", "rejected"}
    ]
    assert [r["event"] for r in endings] == ["completed"]
    with sqlite3.connect(tmp_path / "state.db") as conn:
        rows = conn.execute(
            "SELECT status FROM request_outcomes WHERE request_id = ?", (request_id,)
        ).fetchall()
        unreturned = conn.execute(
            "SELECT COUNT(*) FROM leases WHERE returned_at IS NULL"
        ).fetchone()[0]
    assert rows == [("completed",)]
    # The lease the dead daemon held was closed on record when the next one started.
    assert unreturned == 0
    assert any(r["event"] == "closed_after_crash" for r in audit_records(tmp_path))
    log = (tmp_path / "logs" / "watcher.jsonl").read_text()
    assert "spool.recovered_claim" in log
