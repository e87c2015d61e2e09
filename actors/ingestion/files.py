"""Where handled draw files go (blocking): `processed/`, or `quarantine/` with a reason file.

The inbox path moves files (the inbox must empty); the one-shot CLI copies them, since the
originals are the user's. A reason file is written (fsynced) before its file is moved, so a
crash in between leaves the file in the inbox, to be handled again, never a file without reason.
"""

from __future__ import annotations

import json
import os
import shutil
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from actors.atomic import write_atomic
from messages.base import new_id

if TYPE_CHECKING:
    from actors.ingestion.parse import DrawFileError

REASON_SUFFIX = ".reason.json"


def unique_target(folder: Path, name: str) -> Path:
    """`folder/name`, or `folder/STEM.<8 hex>SUFFIX` when that name is taken."""
    target = folder / name
    reason = target.with_name(target.name + REASON_SUFFIX)
    if os.path.lexists(target) or os.path.lexists(reason):
        stem, suffix = Path(name).stem, Path(name).suffix
        target = folder / f"{stem}.{new_id()[:8]}{suffix}"
    return target


def reason_record(
    name: str, error: DrawFileError, *, sha256: str, origin: str, correlation_id: str
) -> dict[str, Any]:
    """The content of a `.reason.json`: which file, which rule, where, and the flow's id."""
    return {
        "file": name,
        "rule": error.rule,
        "record": error.record,
        "detail": error.detail,
        "sha256": sha256,
        "origin": origin,
        "correlation_id": correlation_id,
        "quarantined_at": datetime.now(UTC).isoformat(),
    }


def set_aside(path: Path, folder: Path, reason: dict[str, Any], *, move: bool) -> Path:
    """Put `path` into `folder` (the quarantine) with its reason file; return where it went."""
    folder.mkdir(parents=True, exist_ok=True)
    target = unique_target(folder, path.name)
    body = json.dumps(reason, indent=2, sort_keys=True).encode("utf-8") + b"\n"
    write_atomic(target.with_name(target.name + REASON_SUFFIX), body)
    _place(path, target, move=move)
    return target


def keep(path: Path, folder: Path, *, move: bool) -> Path:
    """Put a processed file into `folder`; return where it went."""
    folder.mkdir(parents=True, exist_ok=True)
    target = unique_target(folder, path.name)
    _place(path, target, move=move)
    return target


def _place(path: Path, target: Path, *, move: bool) -> None:
    if move:
        os.replace(path, target)
    else:
        shutil.copyfile(path, target)
