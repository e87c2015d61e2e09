"""Each table has one owning module: SQL on `draws` is written only in its owner."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DRAWS_SQL = re.compile(r"\b(FROM|INTO|UPDATE|JOIN)\s+draws\b")  # SQL is upper case here
OWNER = "actors/ingestion/history.py"
NOT_YET_MOVED = {"actors/trigger/ledger.py", "actors/gpu/history_file.py"}
"""Readers whose owners are reshaping them this round; they move to the owner's functions next."""


def test_only_the_owner_writes_sql_on_the_draws_table() -> None:
    """Outside actors/ingestion/history.py no module of actors/ names `draws` in SQL (the
    known remaining readers excepted, by name)."""
    found = {
        str(path.relative_to(ROOT))
        for path in (ROOT / "actors").rglob("*.py")
        if DRAWS_SQL.search(path.read_text(encoding="utf-8"))
    }
    assert OWNER in found
    assert found - {OWNER} <= NOT_YET_MOVED, found - {OWNER} - NOT_YET_MOVED


def test_assembly_and_foreground_never_import_the_cli_module() -> None:
    """actors.assembly builds the system and actors.foreground runs it; neither imports
    actors.system (the CLI), so the CLI can import both without a cycle."""
    for name in ("assembly", "foreground"):
        source = (ROOT / "actors" / f"{name}.py").read_text(encoding="utf-8")
        assert not re.search(
            r"^\s*(from actors\.system|import actors\.system)\b", source, re.MULTILINE
        )
