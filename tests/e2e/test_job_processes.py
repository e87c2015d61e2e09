"""Job processes never outlive the daemon, and a job ignoring SIGTERM cannot stretch a stop."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from tests.e2e.conftest import ROOT, audit_records, run_cli, wait_for

# A job that ignores SIGTERM and starts a child (in its process group) that does too; the child
# writes its PID where the test can find it.
_STUBBORN = (
    "import os, signal, subprocess, sys, time\n"
    "signal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
    "code = 'import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); time.sleep(120)'\n"
    "child = subprocess.Popen([sys.executable, '-c', code])\n"
    "open(os.path.join(sys.argv[1], 'child.pid'), 'w').write(str(child.pid))\n"
    "time.sleep(120)\n"
)


def _config(tmp_path: Path) -> Path:
    config = tmp_path / "watcher.toml"
    config.write_text(
        "[jobs.stubborn]\n"
        f"argv = ['{{python}}', '-c', {json.dumps(_STUBBORN)}, '{{state_dir}}']\n"
        "history = false\n"
        '[watcher.step_jobs]\n"2" = "stubborn"\n'
    )
    return config


def _alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] not in {"Z", "X"}


def _start(config: Path, state: Path) -> subprocess.Popen[str]:
    state.mkdir()
    filed = run_cli("actors.system", "--config", str(config), "--state-dir", str(state),
                    "submit", "pipeline_rerun", "--steps", "2")  # fmt: skip
    assert filed.returncode == 0, filed.stderr
    daemon = subprocess.Popen(
        [sys.executable, "-m", "actors.system", "--config", str(config), "--state-dir", str(state)],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    wait_for(lambda: (state / "child.pid").exists(), timeout=60, what="the job's child")
    return daemon


def _job_pids(state: Path) -> tuple[int, int]:
    (started,) = [r for r in audit_records(state) if r["event"] == "job_started"]
    return int(started["detail"]["pid"]), int((state / "child.pid").read_text())


def test_a_killed_daemons_jobs_die_and_the_restart_reaps_the_rest(tmp_path: Path) -> None:
    """kill -9 of the daemon: the job dies with it (PR_SET_PDEATHSIG); its child, left in the
    job's process group, is killed by the next start before anything runs."""
    config, state = _config(tmp_path), tmp_path / "state"
    daemon = _start(config, state)
    leader, child = _job_pids(state)
    daemon.send_signal(signal.SIGKILL)
    daemon.wait(timeout=10)
    wait_for(lambda: not _alive(leader), timeout=10, what="the job to die with the daemon")
    assert _alive(child)  # a grandchild has no death signal: only the restart can reap it
    os.unlink(state / "child.pid")
    # Halted, the restart starts nothing new: it only reaps what the dead daemon left.
    restarted = subprocess.run(
        [
            sys.executable,
            "-m",
            "actors.system",
            "--config",
            str(config),
            "--state-dir",
            str(state),
            "halt",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert restarted.returncode == 0, restarted.stderr
    once = run_cli("actors.system", "--config", str(config), "--state-dir", str(state), "--once")
    assert once.returncode == 0, once.stderr[-2000:]
    wait_for(lambda: not _alive(child), timeout=10, what="the orphan to be reaped")
    log = (state / "logs" / "watcher.jsonl").read_text()
    assert '"event":"job.orphan_reaped"' in log.replace(" ", "")


def test_sigterm_with_a_job_ignoring_it_stops_the_job_within_the_first_phase(
    tmp_path: Path,
) -> None:
    """SIGTERM to the daemon: the job group gets SIGTERM at once and SIGKILL after the grace,
    before the first busy shutdown phase ends; the watcher leaves the request for the restart
    at once instead of waiting out its phase; the daemon exits 0 and leaves no process."""
    config, state = _config(tmp_path), tmp_path / "state"
    daemon = _start(config, state)
    leader, child = _job_pids(state)
    started = time.monotonic()
    daemon.send_signal(signal.SIGTERM)
    assert daemon.wait(timeout=30) == 0
    took = time.monotonic() - started
    assert not _alive(leader)
    assert not _alive(child)
    events = [
        json.loads(line) for line in (state / "logs" / "watcher.jsonl").read_text().splitlines()
    ]
    names = [e["event"] for e in events]
    kill = names.index("gpu.job.sigkill")
    watcher_phase = next(
        i
        for i, e in enumerate(events)
        if e["event"] == "shutdown.phase" and e["actor"] == "watcher"
    )
    assert kill < watcher_phase, "the job was killed only after the watcher's phase"
    # The watcher heard at once that the job has no verdict, so its phase did not run out
    # waiting for a reply (it used to, adding a whole phase to every stop during a job).
    assert events[watcher_phase]["finished_in_bound"] is True
    assert "request.left_for_restart" in names
    # The request is not failed by the stop: it runs again after a restart (at-least-once).
    assert "failed" not in [r["event"] for r in audit_records(state) if r["entity"] == "request"]
    print(f"daemon stopped {took:.1f} s after SIGTERM")
