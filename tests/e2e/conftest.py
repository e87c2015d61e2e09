"""Helpers for end-to-end tests: run Watcher's commands as subprocesses, as a user would."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]


def run_cli(*args: str, timeout: float = 120, **kwargs: Any) -> subprocess.CompletedProcess[str]:
    """Run `python -m ARGS...` from the project root and capture its output."""
    return subprocess.run(
        [sys.executable, "-m", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
        **kwargs,
    )


def drop(inbox: Path, name: str, payload: object) -> Path:
    """Write a draw file beside the inbox, then rename it in (atomic, as users must)."""
    inbox.mkdir(parents=True, exist_ok=True)
    tmp = inbox.parent / f".{name}.tmp"
    tmp.write_text(json.dumps(payload) if not isinstance(payload, str) else payload)
    target = inbox / name
    os.replace(tmp, target)
    return target


def audit_records(state_dir: Path) -> list[dict[str, Any]]:
    """Every audit record written so far."""
    path = state_dir / "audit.jsonl"
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def wait_for(predicate: Any, *, timeout: float = 30, what: str = "condition") -> Any:
    """Poll `predicate` until it returns something truthy (a subprocess is out of our clock)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    pytest.fail(f"timed out after {timeout} s waiting for {what}")


@pytest.fixture
def state_dir(tmp_path: Path) -> Path:
    """A fresh state directory whose config files a step-6 request after every draw.

    Step 6 runs the `noop` job here: these tests follow the plumbing, not the pipeline.
    """
    config = tmp_path / "watcher.toml"
    config.write_text(
        "[trigger]\nrequest_every_n_draws = 1\nrequest_type = 'learning_loop'\n"
        "learning_scope = 'step_6_only'\n[watcher.step_jobs]\n6 = 'noop'\n"
    )
    return tmp_path
