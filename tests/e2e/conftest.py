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

from pipeline.synthetic import synthetic_records

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


HISTORY = 40
"""Draws in the test history: enough for the reference pipeline's windows and holdout."""


def history(count: int = HISTORY, **kwargs: Any) -> dict[str, Any]:
    """A draw file's content: `count` draws of lcg32 from a planted seed (4242)."""
    records = synthetic_records("lcg32", 4242, count, **kwargs)
    return {"draws": [json.loads(r.model_dump_json(exclude={"schema_version"})) for r in records]}


@pytest.fixture
def state_dir(tmp_path: Path) -> Path:
    """A fresh state directory whose config runs the full pipeline once 40 draws are in.

    Chapter 13's forced mode files the request; the real reference jobs run steps 1-6 and the
    heuristic advisor judges each one.
    """
    config = tmp_path / "watcher.toml"
    config.write_text(
        f"[trigger]\nrequest_every_n_draws = {HISTORY}\nrequest_type = 'pipeline_rerun'\n"
    )
    return tmp_path
