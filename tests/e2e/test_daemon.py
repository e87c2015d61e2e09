"""End to end: the daemon as a subprocess, a draw dropped in, the flow in the audit trail."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from typing import TYPE_CHECKING

from tests.e2e.conftest import ROOT, audit_records, drop, history, run_cli, wait_for

if TYPE_CHECKING:
    from pathlib import Path

DRAWS = history()
GPU_STEPS = {"1", "3", "5"}  # sieve, full scoring, training: they take the VRAM lease


def start_daemon(state_dir: Path) -> subprocess.Popen[bytes]:
    with (state_dir / "daemon.out").open("wb") as out:
        return subprocess.Popen(
            [
                sys.executable,
                "-m",
                "actors.system",
                "--state-dir",
                str(state_dir),
                "--config",
                str(state_dir / "watcher.toml"),
            ],
            cwd=ROOT,
            stdout=out,
            stderr=subprocess.STDOUT,
        )


def finished_requests(state_dir: Path) -> list[dict[str, object]]:
    terminal = {"completed", "failed", "escalated", "halted", "rejected"}
    return [
        r for r in audit_records(state_dir) if r["entity"] == "request" and r["event"] in terminal
    ]


def test_daemon_runs_a_draw_through_every_actor_and_stops_on_sigterm(state_dir: Path) -> None:
    """A dropped draw reaches a job and the audit trail; SIGTERM exits 0 within 5 s."""
    daemon = start_daemon(state_dir)
    try:
        wait_for(
            lambda: (state_dir / "inbox").is_dir() and audit_records(state_dir), what="daemon start"
        )
        drop(state_dir / "inbox", "d-0001.json", DRAWS)
        done = wait_for(lambda: finished_requests(state_dir), what="the request to finish")
        records = audit_records(state_dir)
        cid = done[0]["correlation_id"]
        flow = [r for r in records if r["correlation_id"] == cid]
        hops = [(r["actor"], r["event"]) for r in flow]
        assert ("ingestion", "ingested") in hops
        assert ("trigger", "filed") in hops
        assert ("watcher", "claimed") in hops
        assert ("gpu", "job_started") in hops
        assert ("gpu", "job_completed") in hops
        assert ("watcher", "advised") in hops
        assert done[0]["event"] == "completed", done[0]
        leases = [r for r in flow if r["entity"] == "lease"]
        assert [r["event"] for r in leases] == ["taken", "returned"] * len(GPU_STEPS)
        assert (state_dir / "processed" / "d-0001.json").exists()
        start = time.monotonic()
        daemon.send_signal(signal.SIGTERM)
        code = daemon.wait(timeout=10)
        assert code == 0, (state_dir / "daemon.out").read_text()
        assert time.monotonic() - start < 5
    finally:
        if daemon.poll() is None:
            daemon.kill()
            daemon.wait()
    assert audit_records(state_dir)[-1]["event"] == "stopped"


def test_once_processes_what_is_pending_and_exits(state_dir: Path) -> None:
    """`--once` ingests the inbox, runs the filed request to its end, exits 0."""
    drop(state_dir / "inbox", "d-0001.json", DRAWS)
    result = run_cli(
        "actors.system",
        "--state-dir",
        str(state_dir),
        "--config",
        str(state_dir / "watcher.toml"),
        "--once",
    )
    assert result.returncode == 0, result.stderr
    assert finished_requests(state_dir)
    spool = state_dir / "watcher_requests"
    assert not list((spool / "new").iterdir())
    assert not list((spool / "cur").iterdir())


def test_logs_tail_json_yields_the_flows_lines(state_dir: Path) -> None:
    """`logs tail --json --correlation-id` prints valid JSON lines of that one flow."""
    drop(state_dir / "inbox", "d-0001.json", DRAWS)
    run = run_cli(
        "actors.system",
        "--state-dir",
        str(state_dir),
        "--config",
        str(state_dir / "watcher.toml"),
        "--once",
    )
    assert run.returncode == 0, run.stderr
    cid = finished_requests(state_dir)[0]["correlation_id"]
    result = run_cli(
        "actors.logs", "--state-dir", str(state_dir), "tail", "--json", "--correlation-id", str(cid)
    )
    assert result.returncode == 0, result.stderr
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert lines
    assert {line["correlation_id"] for line in lines} == {cid}
    assert {"ingestion", "trigger", "watcher", "gpu", "llm", "bundle"} <= {
        line["logger"] for line in lines
    }
    for line in lines:
        assert {"timestamp", "level", "event", "logger"} <= line.keys()
    human = run_cli("actors.system", "--state-dir", str(state_dir), "logs", "tail", "--audit")
    assert human.returncode == 0, human.stderr
    assert "ingested" in human.stdout


def test_bad_draw_is_quarantined_and_the_daemon_goes_on(state_dir: Path) -> None:
    """A malformed draw file is moved aside with a reason; the next good file still flows;
    `--once` exits 3 (something needs a person) and says what."""
    drop(state_dir / "inbox", "a-bad.json", {"timestamp": "yesterday", "value": 5})
    drop(state_dir / "inbox", "b-good.json", DRAWS)
    result = run_cli(
        "actors.system",
        "--state-dir",
        str(state_dir),
        "--config",
        str(state_dir / "watcher.toml"),
        "--once",
    )
    assert result.returncode == 3, result.stderr
    assert "needs a person: 1 draw file(s) quarantined" in result.stderr
    reason = json.loads((state_dir / "quarantine" / "a-bad.json.reason.json").read_text())
    assert reason["rule"] == "timestamp is not ISO 8601"
    assert (state_dir / "quarantine" / "a-bad.json").exists()
    assert (state_dir / "processed" / "b-good.json").exists()
    assert finished_requests(state_dir)


def test_bad_request_file_is_rejected_with_a_reason(state_dir: Path) -> None:
    """A request file that is not a valid request goes to rejected/ with a reason file; `--once`
    exits 3 (a rejection needs a person)."""
    new = state_dir / "watcher_requests" / "new"
    new.mkdir(parents=True)
    (new / "r-1.json").write_text('{"request_type": "reboot_the_moon", "request_id": "r-1"}')
    result = run_cli("actors.system", "--state-dir", str(state_dir), "--once")
    assert result.returncode == 3, result.stderr
    assert "needs a person: 1 request(s) rejected" in result.stderr
    rejected = state_dir / "watcher_requests" / "rejected"
    reason = json.loads((rejected / "r-1.reason.json").read_text())
    assert reason["rule"] == "request does not match the request schema"
    assert "reboot_the_moon" in reason["detail"]
    assert (rejected / "r-1.json").exists()


def test_bad_config_exits_2_naming_the_key(tmp_path: Path) -> None:
    """A config value that breaks a rule stops start-up with exit 2 and names the key."""
    config = tmp_path / "bad.toml"
    config.write_text("[watcher]\nauto_proceed_confidence = 7\n[llm]\nnot_a_key = 1\n")
    result = run_cli("actors.system", "--state-dir", str(tmp_path), "--config", str(config))
    assert result.returncode == 2
    assert "watcher.auto_proceed_confidence" in result.stderr
    assert "llm.not_a_key" in result.stderr


def test_help_documents_every_flag() -> None:
    """`--help` lists each flag of the daemon."""
    result = run_cli("actors.system", "--help")
    assert result.returncode == 0
    for flag in ("--config", "--state-dir", "--once", "--log-level", "--backend", "logs"):
        assert flag in result.stdout
