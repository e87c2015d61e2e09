"""Forward-only migrations, one module each: `vNNN_name.py` with `OWNER` and `SQL`.

A new table or column is a new module with a number above every released one; a released
module is never edited. Modules are found by name, so adding one touches no other file.
Numbers may leave gaps (each owner has a range: ingestion 5-9, trigger 10-19, watcher 20-29,
gpu 30-39, llm 40-49, web/notify 50-59) but never repeat.
"""

from __future__ import annotations

import importlib
import pkgutil
import re
from pathlib import Path

_NAME = re.compile(r"^v(\d{3})_\w+$")


def load_migrations() -> tuple[tuple[int, str, str], ...]:
    """Every migration as (version, owner, SQL), in version order; numbers never repeat."""
    found: list[tuple[int, str, str]] = []
    for info in pkgutil.iter_modules([str(Path(__file__).parent)]):
        match = _NAME.match(info.name)
        if match is None:
            continue
        module = importlib.import_module(f"{__name__}.{info.name}")
        found.append((int(match.group(1)), str(module.OWNER), str(module.SQL)))
    found.sort()
    versions = [version for version, _owner, _sql in found]
    if len(set(versions)) != len(versions) or (versions and versions[0] < 1):
        msg = f"migration numbers must be positive and unique, found {versions}"
        raise RuntimeError(msg)
    return tuple(found)
