"""Rows as dicts: what the tables' owners return to readers that want named columns."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import sqlite3


def as_dicts(cursor: sqlite3.Cursor) -> list[dict[str, Any]]:
    """Every remaining row of `cursor` as a column name -> value dict, in the query's order."""
    names = [d[0] for d in cursor.description]
    return [dict(zip(names, tuple(row), strict=True)) for row in cursor.fetchall()]
