"""`ingest FILE...` and `inject --count N`, run as a user would."""

from __future__ import annotations

import json
import sqlite3
from typing import TYPE_CHECKING

from pipeline.synthetic import synthetic_records
from tests.e2e.conftest import run_cli

if TYPE_CHECKING:
    from pathlib import Path


def watcher(state: Path, *args: str, config: Path | None = None) -> tuple[int, str, str]:
    extra = ["--config", str(config)] if config is not None else []
    result = run_cli("actors.system", "--state-dir", str(state), *extra, *args)
    return result.returncode, result.stdout, result.stderr


def test_ingest_prints_a_summary_and_exits_1_when_a_file_is_quarantined(tmp_path: Path) -> None:
    """Good files are appended, a bad one is set aside with its reason; exit 1; originals stay."""
    state = tmp_path / "state"
    good = tmp_path / "good.csv"
    good.write_text("timestamp,value\n2026-01-02T00:00:00Z,5\n2026-01-01T00:00:00Z,6\n")
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"timestamp": "2026-01-03T00:00:00Z", "value": 1000}))
    code, out, err = watcher(state, "ingest", str(good), str(bad))
    assert code == 1, err
    assert "good.csv: 2 appended to 'real' (1 backfill), 0 duplicates" in out
    assert "bad.json: QUARANTINED: value out of range [0, 1000) at record 1" in out
    assert "2 files: 2 draws appended (1 backfill), 0 duplicates, 1 quarantined" in out
    reason = json.loads((state / "quarantine" / "bad.json.reason.json").read_text())
    assert reason["rule"] == "value out of range [0, 1000)"
    assert reason["origin"] == "cli"
    assert good.exists()
    assert bad.exists()
    assert (state / "processed" / "good.csv").exists()


def test_ingest_again_counts_duplicates_and_exits_0_with_json(tmp_path: Path) -> None:
    """A second ingest of the same file appends nothing; --json gives the machine summary."""
    state = tmp_path / "state"
    draws = tmp_path / "d.txt"
    draws.write_text("2026-01-01T00:00:00Z 417 d-1\n2026-01-01T01:00:00Z 12 d-2\n")
    assert watcher(state, "ingest", str(draws))[0] == 0
    code, out, err = watcher(state, "ingest", "--json", str(draws))
    assert code == 0, err
    summary = json.loads(out)
    assert summary["totals"] == {
        "files": 1,
        "quarantined": 0,
        "appended": 0,
        "duplicates": 2,
        "backfill": 0,
    }


def test_ingest_of_a_missing_file_is_a_usage_error(tmp_path: Path) -> None:
    """A FILE that does not exist: exit 2, nothing ingested."""
    code, _out, err = watcher(tmp_path / "state", "ingest", str(tmp_path / "nope.json"))
    assert code == 2
    assert "no such file" in err


def test_inject_refuses_without_both_flags(tmp_path: Path) -> None:
    """Without test_mode and synthetic.enabled, `inject` exits 2 naming the missing flags."""
    config = tmp_path / "w.toml"
    config.write_text("test_mode = true\n")
    code, _out, err = watcher(tmp_path / "state", "inject", "--count", "3", config=config)
    assert code == 2
    assert "synthetic.enabled is false" in err
    assert not (tmp_path / "state" / "state.db").exists() or _count(tmp_path / "state") == 0


def _count(state: Path, stream: str = "synthetic") -> int:
    conn = sqlite3.connect(state / "state.db")
    try:
        return int(
            conn.execute("SELECT COUNT(*) FROM draws WHERE stream = ?", (stream,)).fetchone()[0]
        )
    finally:
        conn.close()


def test_inject_continues_its_sequence_across_runs(tmp_path: Path) -> None:
    """Two runs give the first 5 draws of the seed, with the regime change at draw 3."""
    state = tmp_path / "state"
    config = tmp_path / "w.toml"
    config.write_text(
        "test_mode = true\n[synthetic]\nenabled = true\nfamily = 'xorshift32'\nseed = 99\n"
        "[[synthetic.regime_changes]]\nat_draw = 3\nseed = 5\n"
    )
    code, out, err = watcher(state, "inject", "--count", "2", config=config)
    assert code == 0, err
    assert "injected 2 synthetic draws into 'synthetic' (positions 0..1)" in out
    code, out, err = watcher(state, "inject", "--count", "3", "--json", config=config)
    assert code == 0, err
    second = json.loads(out)
    assert (second["first_position"], second["next_position"]) == (2, 5)
    expected = [r.value for r in synthetic_records("xorshift32", 99, 5, switch_at=3, new_seed=5)]
    assert second["values"] == expected[2:]
    assert _count(state) == 5
    assert _count(state, "real") == 0
