"""The bad-input corpus (tests/corpus/) against the daemon as a subprocess: every poison file is
quarantined or rejected with its rule, the good files of the same batch are processed, and the
daemon stays up, bounded in memory, and stops on SIGTERM within 5 s."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from tests.e2e.conftest import ROOT, wait_for

CORPUS = Path(__file__).resolve().parents[1] / "corpus"
PEAK_RSS_LIMIT_KB = 600 * 1024
"""The daemon's peak resident memory over the whole corpus (a followed /dev/zero took 2.3 GB)."""


def make(folder: Path, name: str, how: str, staging: Path) -> Path:
    """Create the special entry `name` (FIFO, directory, symlink) in `staging`."""
    path = staging / name
    if how == "fifo":
        os.mkfifo(path)
    elif how == "dir":
        path.mkdir()
        (path / "inside.json").write_text("[]")
    elif how.startswith("symlink:"):
        target = how.removeprefix("symlink:")
        path.symlink_to(target if target.startswith("/") else folder / target)
    return path


def peak_rss_kb(pid: int) -> int:
    """VmHWM of a live process, in KiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    return 0


def reasons(folder: Path) -> dict[str, dict[str, Any]]:
    """name -> reason record of every `*.reason.json` in `folder`."""
    return {
        p.name.removesuffix(".reason.json"): json.loads(p.read_text())
        for p in folder.glob("*.reason.json")
    }


def test_the_corpus_is_set_aside_with_reasons_and_the_daemon_stays_up(tmp_path: Path) -> None:
    """Drop the whole corpus into a running daemon's inbox and spool (renamed in, FIFOs,
    directories and symlinks among them): each entry lands where the manifest says with its
    rule, the three good draw files are processed, nothing is left behind, the daemon is alive
    and under the memory bound, and SIGTERM stops it with exit 0 in under 5 s."""
    manifest = json.loads((CORPUS / "expected.json").read_text())
    state = tmp_path / "state"
    config = tmp_path / "watcher.toml"
    config.write_text(manifest["config"])
    staging = tmp_path / "staging"
    shutil.copytree(CORPUS / "inbox", staging / "inbox")
    shutil.copytree(CORPUS / "spool", staging / "spool")
    for name, (how, _rule) in manifest["inbox"]["made"].items():
        make(state / "inbox", name, how, staging / "inbox")
    for name, (how, _rule) in manifest["spool"]["made"].items():
        make(state / "inbox", name, how, staging / "spool")
    out = (tmp_path / "daemon.out").open("wb")
    argv = [sys.executable, "-m", "actors.system", "--state-dir", str(state)]
    daemon = subprocess.Popen(
        [*argv, "--config", str(config)], cwd=ROOT, stdout=out, stderr=subprocess.STDOUT
    )
    try:
        wait_for(lambda: (state / "daemon.lock").exists(), timeout=60, what="daemon start")
        wait_for(lambda: (state / "status.json").exists(), timeout=60, what="heartbeat")
        for folder, target in (
            ("inbox", state / "inbox"),
            ("spool", state / "watcher_requests" / "new"),
        ):
            for entry in sorted((staging / folder).iterdir()):
                os.rename(entry, target / entry.name)  # rename in, as writers must
        inbox, new = state / "inbox", state / "watcher_requests" / "new"
        wait_for(lambda: not any(inbox.iterdir()), timeout=60, what="the inbox to empty")
        wait_for(lambda: not any(new.iterdir()), timeout=60, what="the spool to empty")
        assert daemon.poll() is None, (tmp_path / "daemon.out").read_text()[-3000:]
        peak = peak_rss_kb(daemon.pid)
        start = time.monotonic()
        daemon.send_signal(signal.SIGTERM)
        code = daemon.wait(timeout=20)
        stopped_in = time.monotonic() - start
    finally:
        if daemon.poll() is None:
            daemon.kill()
            daemon.wait()
        out.close()
    assert code == 0, (tmp_path / "daemon.out").read_text()[-3000:]
    assert stopped_in < 5.0
    assert peak < PEAK_RSS_LIMIT_KB, f"peak RSS {peak} KiB"

    quarantined = reasons(state / "quarantine")
    expected = dict(manifest["inbox"]["quarantined"])
    expected.update({name: rule for name, (_how, rule) in manifest["inbox"]["made"].items()})
    got = {name: quarantined[name]["rule"] for name in expected if name in quarantined}
    assert got == expected
    assert sorted(p.name for p in (state / "processed").iterdir()) == sorted(
        manifest["inbox"]["good"]
    )
    rejected = reasons(state / "watcher_requests" / "rejected")
    expected_spool = dict(manifest["spool"]["rejected"])
    expected_spool.update({name: rule for name, (_how, rule) in manifest["spool"]["made"].items()})
    got_spool = {
        name: rejected[name.removesuffix(".json")]["rule"]
        for name in expected_spool
        if name.removesuffix(".json") in rejected
    }
    assert got_spool == expected_spool
    log = (state / "logs" / "watcher.jsonl").read_text()
    assert "actor.crashed" not in log
