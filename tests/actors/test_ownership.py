"""Each table has one owning module: SQL naming a table is written only in its owner.

Scanned: every top-level package of the repository (actors/, bundle_factory/, messages/,
pipeline/, grammars/, and any added later), migrations aside. Not scanned: tests/ and bench/,
which may write rows directly as fixtures and read them back to verify what the owners did.
"""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
MIGRATIONS = ROOT / "actors" / "store" / "migrations"
NOT_SCANNED = frozenset({"tests", "bench"})
"""Top-level packages whose SQL is fixtures or verification, not a second owner."""
CREATED = re.compile(r"\bCREATE TABLE\s+(?:IF NOT EXISTS\s+)?(\w+)", re.IGNORECASE)
# The packages' SQL is upper case, so `from x import y` never matches; DELETE FROM is a FROM.
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
    "policies": "actors/trigger/policy_store.py",
    "policy_history": "actors/trigger/policy_store.py",
    "request_outcomes": "actors/watcher/outcomes.py",
    "request_progress": "actors/watcher/progress.py",
    "step_outcomes": "actors/watcher/steps.py",
    "synthetic_injector": "actors/ingestion/synthetic.py",
    "trigger_decisions": "actors/trigger/decision_store.py",
    "trigger_diagnostics": "actors/trigger/ledger.py",
    "trigger_models": "actors/trigger/ledger.py",
    "trigger_no_signal": "actors/trigger/ledger.py",
    "trigger_pools": "actors/trigger/ledger.py",
    "trigger_requests": "actors/trigger/decision_store.py",
    "trigger_scores": "actors/trigger/ledger.py",
    "trigger_state": "actors/trigger/ledger.py",
}
"""Table -> the one module whose SQL names it; every other module calls its functions."""


def _created_tables() -> set[str]:
    return {
        name.lower()
        for path in MIGRATIONS.rglob("*.py")
        for name in CREATED.findall(path.read_text(encoding="utf-8"))
    }


def _scanned_packages() -> list[Path]:
    """The repository's top-level packages, tests/ and bench/ aside."""
    return sorted(
        path.parent for path in ROOT.glob("*/__init__.py") if path.parent.name not in NOT_SCANNED
    )


def _sql_sites() -> dict[str, set[str]]:
    """table -> the modules of the scanned packages (migrations aside) whose SQL names it."""
    sites: dict[str, set[str]] = {}
    for path in (p for package in _scanned_packages() for p in package.rglob("*.py")):
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


def test_the_scan_covers_every_package_but_tests_and_bench() -> None:
    """The packages scanned include actors/ and bundle_factory/ (whose self-test seeds a store
    and whose retriever once read it directly), and never tests/ or bench/."""
    names = {path.name for path in _scanned_packages()}
    assert {"actors", "bundle_factory", "messages", "pipeline"} <= names
    assert not names & NOT_SCANNED


def test_sql_on_each_table_is_written_only_in_its_owner() -> None:
    """Outside its owner no module of the scanned packages names a table in SQL (FROM, INTO,
    UPDATE, JOIN, DELETE FROM), and each owner does name its table (the map stays true)."""
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
