"""Forward-only migrations, one module each: `vNNN_name.py` with `OWNER` and `SQL`.

A new table or column is a new module with the next free number; a released module is never
edited. Modules are found by name, so adding one touches no other file.
"""

from __future__ import annotations

import importlib
import pkgutil
import re
from pathlib import Path

_NAME = re.compile(r"^v(\d{3})_\w+$")


def load_migrations() -> tuple[tuple[int, str, str], ...]:
    """Every migration as (version, owner, SQL), in version order; numbers must be 1..N."""
    found: list[tuple[int, str, str]] = []
    for info in pkgutil.iter_modules([str(Path(__file__).parent)]):
        match = _NAME.match(info.name)
        if match is None:
            continue
        module = importlib.import_module(f"{__name__}.{info.name}")
        found.append((int(match.group(1)), str(module.OWNER), str(module.SQL)))
    found.sort()
    versions = [version for version, _owner, _sql in found]
    if versions != list(range(1, len(versions) + 1)):
        msg = f"migration numbers must run 1..N without gaps or repeats, found {versions}"
        raise RuntimeError(msg)
    return tuple(found)
