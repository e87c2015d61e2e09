"""Each table has one owning module: SQL naming a table is written only in its owner."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
MIGRATIONS = ROOT / "actors" / "store" / "migrations"
CREATED = re.compile(r"\bCREATE TABLE\s+(?:IF NOT EXISTS\s+)?(\w+)", re.IGNORECASE)
# SQL in actors/ is upper case, so `from x import y` never matches; DELETE FROM is a FROM.
NAMED = re.compile(r"\b(?:FROM|INTO|UPDATE|JOIN)\s+(\w+)\b")

OWNERS = {
    "diagnostics": "actors/trigger/ledger.py",
    "draws": "actors/ingestion/history.py",
    "incidents": "actors/watcher/outcomes.py",
    "ingest_files": "actors/ingestion/filelog.py",
    "job_processes": "actors/gpu/orphans.py",
    "leases": "actors/gpu/lease.py",
    "notifications": "actors/notify/notifier.py",
    "notify_cursor": "actors/notify/notifier.py",
    "policies": "actors/trigger/ledger.py",
    "policy_history": "actors/trigger/ledger.py",
    "request_outcomes": "actors/watcher/outcomes.py",
    "request_progress": "actors/watcher/progress.py",
    "step_outcomes": "actors/watcher/steps.py",
    "synthetic_injector": "actors/ingestion/synthetic.py",
    "trigger_decisions": "actors/trigger/ledger.py",
    "trigger_diagnostics": "actors/trigger/ledger.py",
    "trigger_models": "actors/trigger/ledger.py",
    "trigger_no_signal": "actors/trigger/ledger.py",
    "trigger_pools": "actors/trigger/ledger.py",
    "trigger_requests": "actors/trigger/ledger.py",
    "trigger_scores": "actors/trigger/ledger.py",
    "trigger_state": "actors/trigger/ledger.py",
}
"""Table -> the one module of actors/ whose SQL names it; every other module calls its functions."""


def _created_tables() -> set[str]:
    return {
        name.lower()
        for path in MIGRATIONS.rglob("*.py")
        for name in CREATED.findall(path.read_text(encoding="utf-8"))
    }


def _sql_sites() -> dict[str, set[str]]:
    """table -> the modules of actors/ (migrations aside) whose SQL names it."""
    sites: dict[str, set[str]] = {}
    for path in (ROOT / "actors").rglob("*.py"):
        if MIGRATIONS in path.parents:
            continue
        module = str(path.relative_to(ROOT))
        for table in NAMED.findall(path.read_text(encoding="utf-8")):
            sites.setdefault(table, set()).add(module)
    return sites


def test_every_table_the_migrations_create_has_an_owner() -> None:
    """The owner map names exactly the tables the migrations create: a new table without an
    owner (or an owner left for a dropped table) fails here."""
    created = _created_tables()
    assert len(created) >= 20  # the parse found the migrations' tables, not nothing
    assert set(OWNERS) == created, {
        "no owner": sorted(created - set(OWNERS)),
        "not created": sorted(set(OWNERS) - created),
    }


def test_sql_on_each_table_is_written_only_in_its_owner() -> None:
    """Outside its owner no module of actors/ names a table in SQL (FROM, INTO, UPDATE, JOIN,
    DELETE FROM), and each owner does name its table (the map stays true)."""
    sites = _sql_sites()
    strays = {
        table: sorted(modules - {owner})
        for table, owner in OWNERS.items()
        if (modules := sites.get(table, set())) - {owner}
    }
    assert not strays
    unused = sorted(table for table, owner in OWNERS.items() if owner not in sites.get(table, ()))
    assert not unused


def test_assembly_and_foreground_never_import_the_cli_module() -> None:
    """actors.assembly builds the system and actors.foreground runs it; neither imports
    actors.system (the CLI), so the CLI can import both without a cycle."""
    for name in ("assembly", "foreground"):
        source = (ROOT / "actors" / f"{name}.py").read_text(encoding="utf-8")
        assert not re.search(
            r"^\s*(from actors\.system|import actors\.system)\b", source, re.MULTILINE
        )
