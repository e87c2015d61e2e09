"""The self-test CLI, run as a user would: `python -m bundle_factory`."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "bundle_factory", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_self_test_passes_and_prints_the_table() -> None:
    """--self-test exits 0 and prints one row per bundle type with grammar, tiers and hash."""
    proc = _run("--self-test")
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert "tokenizer: estimator" in out
    header = out.splitlines()[1]
    for column in ("type", "grammar", "tier0", "tier1", "tier2", "total", "prompt sha256"):
        assert column in header
    rows = [
        line
        for line in out.splitlines()
        if re.match(r"^\d+ \S+\s+(sieve_analysis|agent_decision|chapter_13)\s", line)
    ]
    assert [row.split()[0] for row in rows] == ["1", "2", "3", "4", "5", "6", "13", "99"]
    assert all(row.rstrip().endswith("ok") for row in rows)
    assert all(re.search(r"\b[0-9a-f]{64}\b", row) for row in rows)
    assert "8 of 8 bundle types passed" in out


def test_self_test_hashes_are_stable_across_runs() -> None:
    """Two runs print the same prompt hashes (fixed clock, no dict-order dependence)."""
    first, second = _run("--self-test").stdout, _run("--self-test").stdout
    assert first == second


def test_show_prints_one_prompt() -> None:
    """--show 13 prints the Chapter 13 prompt, with its grammar named."""
    proc = _run("--show", "13")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("# WATCHER STEP AWARENESS BUNDLE v1\nstep 13 (chapter_13)")
    assert "grammar: chapter_13" in proc.stdout


def test_show_unknown_step_names_the_known_ids() -> None:
    """--show 7 fails with exit code 2 and lists the known ids."""
    proc = _run("--show", "7")
    assert proc.returncode == 2
    assert "known bundle types: 1, 2, 3, 4, 5, 6, 13, 99" in proc.stderr


def test_a_broken_model_path_is_a_clear_error(tmp_path: Path) -> None:
    """--model with a file that is not a GGUF exits 2 with a one-line reason, no traceback."""
    bad = tmp_path / "bad.gguf"
    bad.write_bytes(b"not a model")
    proc = _run("--self-test", "--model", str(bad))
    assert proc.returncode == 2
    # llama.cpp logs its own diagnostics first; ours is the last line.
    assert proc.stderr.splitlines()[-1].startswith("error: cannot load the tokenizer of")
    assert "Traceback" not in proc.stderr
