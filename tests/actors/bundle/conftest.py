"""Fixtures for the store's retriever: a real, migrated store seeded with the self-test's rows."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from actors.store.schema import connect
from bundle_factory.selftest import seed_store

if TYPE_CHECKING:
    import sqlite3
    from collections.abc import Iterator
    from pathlib import Path


@pytest.fixture
def store(tmp_path: Path) -> Iterator[sqlite3.Connection]:
    """A real, migrated state store seeded with the self-test's sample records."""
    conn = connect(tmp_path / "store.sqlite")
    seed_store(conn)
    yield conn
    conn.close()


@pytest.fixture
def state_dir(tmp_path: Path) -> Path:
    """A state directory holding `survivors.json`."""
    root = tmp_path / "state"
    root.mkdir()
    (root / "survivors.json").write_bytes(b'{"survivors": 1284}\n')
    return root
