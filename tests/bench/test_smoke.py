"""Benchmarks cannot rot: each one's --quick mode runs and writes its results file."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from bench.__main__ import benchmarks

ROOT = Path(__file__).resolve().parents[2]
# Real-model benchmarks load gemma3-270m: a few seconds each, kept in the suite all the same.
NEEDS_MODEL = {"llm", "lease"}


@pytest.mark.parametrize(
    "name",
    [pytest.param(n, marks=[pytest.mark.llm] if n in NEEDS_MODEL else []) for n in benchmarks()],
)
def test_quick_mode_runs(name: str, tmp_path: Path) -> None:
    """`python -m bench.NAME --quick --out TMP` exits 0 and writes NAME.json with the machine."""
    result = subprocess.run(
        [sys.executable, "-m", f"bench.{name}", "--quick", "--out", str(tmp_path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    data = json.loads((tmp_path / f"{name}.json").read_text())
    assert data["benchmark"] == name
    assert data["machine"]["cores"] >= 1
    assert data["figures"]


def test_every_benchmark_is_listed() -> None:
    """`make bench` runs every module of bench/ except the shared ones."""
    assert set(benchmarks()) >= {
        "mailbox",
        "dispatch",
        "bundle",
        "llm",
        "sieve",
        "ingest",
        "lease",
        "loop",
        "scaling",
        "recovery",
    }
