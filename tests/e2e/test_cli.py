"""The CLI as a user runs it: dry runs change nothing, submit/halt/resume/status work."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from tests.e2e.conftest import ROOT, drop, run_cli, wait_for


def tree_digest(root: Path) -> str:
    """Names, sizes, contents and mtimes of everything under root."""
    digest = hashlib.sha256()
    for path in sorted(root.rglob("*")):
        stat = path.stat()
        digest.update(f"{path.relative_to(root)}|{stat.st_mtime_ns}|{stat.st_size}".encode())
        if path.is_file():
            digest.update(path.read_bytes())
    return digest.hexdigest()


def test_d2_dispatch_selfplay_dry_run_changes_nothing(tmp_path: Path) -> None:
    """D2: `--dispatch-selfplay --dry-run` prints the plan; the state dir is byte-identical."""
    (tmp_path / "inbox").mkdir()
    (tmp_path / "note.txt").write_text("x")
    before = tree_digest(tmp_path)
    result = run_cli(
        "actors.system",
        "--state-dir",
        str(tmp_path),
        "--dispatch-selfplay",
        "--episodes",
        "3",
        "--dry-run",
    )
    assert result.returncode == 0, result.stderr
    assert "units: selfplay" in result.stdout
    assert "job selfplay; lease: yes" in result.stdout
    assert "--episodes 3" in result.stdout  # the request's own parameter, as the run uses it
    assert "no job started" in result.stdout
    assert tree_digest(tmp_path) == before


def test_d3_learning_loop_dry_run_plans_exactly_steps_3_5_6(tmp_path: Path) -> None:
    """D3: the plan lists steps 3, 5 and 6 — never 4 — and changes nothing."""
    before = tree_digest(tmp_path)
    result = run_cli(
        "actors.system",
        "--state-dir",
        str(tmp_path),
        "--dispatch-learning-loop",
        "steps_3_5_6",
        "--dry-run",
    )
    assert result.returncode == 0, result.stderr
    assert "units: 3, 5, 6" in result.stdout
    units = [
        line.split(":")[0].strip()
        for line in result.stdout.splitlines()
        if line.startswith("  unit ")
    ]
    assert units == ["unit 3", "unit 5", "unit 6"]
    assert "pipeline.ml_meta" not in result.stdout
    assert tree_digest(tmp_path) == before


def test_submit_then_dry_run_plans_the_pending_request(tmp_path: Path) -> None:
    """`submit` prints an id and the file is in new/; a plain --dry-run plans it, moves nothing."""
    result = run_cli(
        "actors.system",
        "--state-dir",
        str(tmp_path),
        "submit",
        "pipeline_rerun",
        "--steps",
        "2,6",
        "--reason",
        "operator test",
    )
    assert result.returncode == 0, result.stderr
    request_id = result.stdout.strip()
    pending = tmp_path / "watcher_requests" / "new" / f"{request_id}.json"
    assert json.loads(pending.read_text())["steps"] == [2, 6]
    before = tree_digest(tmp_path)
    plan = run_cli("actors.system", "--state-dir", str(tmp_path), "--dry-run")
    assert plan.returncode == 0, plan.stderr
    assert f"request {request_id} (pipeline_rerun), units: 2, 6" in plan.stdout
    assert tree_digest(tmp_path) == before
    bad = run_cli(
        "actors.system", "--state-dir", str(tmp_path), "submit", "pipeline_rerun", "--steps", "9"
    )
    assert bad.returncode == 2
    assert "steps must be within 1..6" in bad.stderr


def test_halt_resume_and_status(tmp_path: Path) -> None:
    """halt shows in status with the resume command; resume clears it."""
    halted = run_cli("actors.system", "--state-dir", str(tmp_path), "halt", "--reason", "repairs")
    assert halted.returncode == 0
    assert "resume with: python -m actors.system" in halted.stdout
    status = run_cli("actors.system", "--state-dir", str(tmp_path), "status", "--json")
    data = json.loads(status.stdout)
    assert data["halt"]["reason"] == "repairs"
    assert data["daemon"]["running"] is False
    text = run_cli("actors.system", "--state-dir", str(tmp_path), "status").stdout
    assert "halt       ON (cli: repairs)" in text
    resumed = run_cli("actors.system", "--state-dir", str(tmp_path), "resume")
    assert "resumed (was halted by cli: repairs)" in resumed.stdout
    assert (
        json.loads(
            run_cli("actors.system", "--state-dir", str(tmp_path), "status", "--json").stdout
        )["halt"]
        is None
    )


def test_status_of_a_running_daemon_shows_its_actors(state_dir: Path) -> None:
    """While the daemon runs, status reports it running with its actors, LLM and GPU."""
    with (state_dir / "daemon.out").open("wb") as out:
        daemon = subprocess.Popen(
            [sys.executable, "-m", "actors.system", "--state-dir", str(state_dir)],
            cwd=ROOT,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        wait_for(lambda: (state_dir / "status.json").exists(), what="the heartbeat")
        drop(
            state_dir / "inbox",
            "d.json",
            {"draw_id": "d1", "timestamp": "2026-11-24T10:00:00Z", "value": 5},
        )

        def running() -> dict[str, object] | None:
            result = run_cli("actors.system", "--state-dir", str(state_dir), "status", "--json")
            data = json.loads(result.stdout)
            ok = data["daemon"]["running"] and data["store"].get("draws", {}).get("real") == 1
            return data if ok else None

        data = wait_for(running, what="status to show the daemon and the draw")
        names = [actor["name"] for actor in data["daemon"]["actors"]]
        assert names == ["system", "bundle", "llm", "gpu", "watcher", "trigger", "ingestion"]
        assert data["daemon"]["llm"]["model"].startswith("none")
    finally:
        daemon.send_signal(signal.SIGTERM)
        assert daemon.wait(timeout=10) == 0
    time.sleep(0.1)
    after = json.loads(
        run_cli("actors.system", "--state-dir", str(state_dir), "status", "--json").stdout
    )
    assert after["daemon"]["running"] is False
    assert os.path.exists(state_dir / "status.json")
