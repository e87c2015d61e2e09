"""The request spool (ARCHITECTURE §6): maildir-style moves, blocking calls for a worker thread.

Writers create `tmp/<id>.json`, fsync it, rename it into `new/` and fsync the folder. The watcher
claims a request by renaming it into `cur/` (a rename is atomic, so two claimers cannot both
win) and finishes it by renaming it into `done/`, `failed/` or `rejected/`, with a
`<id>.reason.json` beside it when there is something to say. Nothing is ever deleted.
"""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, Literal

from pydantic import ValidationError

from actors.atomic import fsync_dir, write_atomic
from actors.config import SpoolConfig
from actors.safefile import inspect, load_json, read_regular
from messages.errors import InputError
from messages.requests import REQUEST_ADAPTER, LearningLoop, PipelineRerun, SelfplayRetrain

if TYPE_CHECKING:
    from pathlib import Path

    from actors.paths import StatePaths

Request = SelfplayRetrain | LearningLoop | PipelineRerun
Terminal = Literal["done", "failed", "rejected"]
SUFFIX = ".json"
REASON_SUFFIX = ".reason.json"


class SpoolError(InputError):
    """A request file broke a spool rule (unparseable, bad fields, duplicate id)."""


def find(paths: StatePaths, request_id: str) -> tuple[str, Path] | None:
    """Where a request id's file is, as (state, path), or None."""
    for state in ("new", "cur", "held", "done", "failed", "rejected"):
        candidate = paths.spool_dir(state) / f"{request_id}{SUFFIX}"
        if os.path.lexists(candidate):
            return state, candidate
    return None


def submit(paths: StatePaths, request: Request) -> Path:
    """File `request` into `new/` atomically and return its path.

    Raises:
        SpoolError: a request with this id already exists in the spool.
    """
    if (found := find(paths, request.request_id)) is not None:
        msg = f"request id already in the spool ({found[0]}/)"
        raise SpoolError(request.request_id, "duplicate request id", msg)
    name = f"{request.request_id}{SUFFIX}"
    tmp = paths.spool_dir("tmp") / name
    with tmp.open("wb") as handle:
        handle.write(request.model_dump_json(indent=2).encode("utf-8"))
        handle.flush()
        os.fsync(handle.fileno())
    fsync_dir(tmp.parent)
    target = paths.spool_dir("new") / name
    tmp.rename(target)
    fsync_dir(target.parent)
    return target


def pending(paths: StatePaths) -> list[Path]:
    """Request files waiting in `new/`, oldest first (dotfiles and temp files skipped).

    Entries of any kind are listed (by `lstat`: a symlink is not followed), so a FIFO or a
    directory named `*.json` is claimed and rejected with its reason, never left to block.
    """
    folder = paths.spool_dir("new")
    found = []
    for path in folder.iterdir():
        if path.suffix != SUFFIX or path.name.startswith("."):
            continue
        try:
            found.append((inspect(path).mtime_ns, path.name, path))
        except FileNotFoundError:
            continue
    return [path for _mtime, _name, path in sorted(found)]


def claim(paths: StatePaths, path: Path) -> Path | None:
    """Move a file from `new/` into `cur/`; None if another claimer won the race."""
    target = paths.spool_dir("cur") / path.name
    try:
        path.rename(target)
    except FileNotFoundError:
        return None
    fsync_dir(target.parent)
    return target


def parse(path: Path, config: SpoolConfig | None = None, *, now: datetime | None = None) -> Request:
    """Read and validate one request file (within `config`'s limits; default: the embedded).

    Raises:
        SpoolError: not a regular file, too large, not UTF-8 JSON, nested too deeply, not a
            valid request, or created further in the future than the clock-skew bound.
    """
    limits = config or SpoolConfig()
    max_bytes = limits.max_request_kb * 1024
    try:
        raw = read_regular(path, max_bytes)
    except InputError as exc:  # not regular, too large
        raise SpoolError(path.name, exc.rule, exc.detail) from exc
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise SpoolError(path.name, "request file is not UTF-8", str(exc)) from exc
    try:
        data = load_json(text, path.name)
    except InputError as exc:
        rule = "request file is not valid JSON" if "not valid JSON" in exc.rule else exc.rule
        raise SpoolError(path.name, rule, exc.detail) from exc
    try:
        request = REQUEST_ADAPTER.validate_python(data)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or 'request'}: {err['msg']}"
            for err in exc.errors()
        )
        raise SpoolError(path.name, "request does not match the request schema", problems) from exc
    if f"{request.request_id}{SUFFIX}" != path.name:
        detail = f"file {path.name} holds request_id {request.request_id!r}"
        raise SpoolError(path.name, "file name must be <request_id>.json", detail)
    moment = now or datetime.now(UTC)
    skew = timedelta(seconds=limits.clock_skew_s)
    if request.created_at > moment + skew:
        detail = (
            f"created_at {request.created_at.isoformat()} is after now ({moment.isoformat()})"
            f" plus the clock-skew bound spool.clock_skew_s = {limits.clock_skew_s:g} s"
        )
        raise SpoolError(path.name, "created_at is in the future", detail)
    return request


def finish(paths: StatePaths, path: Path, state: Terminal, reason: dict[str, Any] | None) -> Path:
    """Move a claimed (or malformed) file into a terminal folder, with its reason file first.

    The reason file is written before the move, so a crash between the two leaves the request
    in `cur/` (recovered at start-up), never in a terminal folder without its reason.
    """
    folder = paths.spool_dir(state)
    target = folder / path.name
    if os.path.lexists(target):
        # Never overwrite what is already archived: keep both, the newcomer with a suffix and
        # its own reason file (the first one's reason stays as it was).
        target = folder / f"{path.stem}.dup-{os.urandom(4).hex()}{SUFFIX}"
    if reason is not None:
        stem = target.name.removesuffix(SUFFIX)
        body = json.dumps(reason, indent=2, sort_keys=True, default=str).encode("utf-8")
        write_atomic(folder / f"{stem}{REASON_SUFFIX}", body)
    path.rename(target)
    fsync_dir(folder)
    return target


def stranded(paths: StatePaths) -> list[Path]:
    """Claims left in `cur/` by a crash."""
    folder = paths.spool_dir("cur")
    return sorted(p for p in folder.iterdir() if p.suffix == SUFFIX and not p.name.startswith("."))


def requeue(paths: StatePaths, path: Path) -> Path:
    """Put a stranded claim back into `new/` so it is processed again."""
    target = paths.spool_dir("new") / path.name
    path.rename(target)
    fsync_dir(target.parent)
    return target


def park(paths: StatePaths, path: Path) -> Path:
    """An escalated request waits for a person in `held/` (the watcher takes nothing from it)."""
    target = paths.spool_dir("held") / path.name
    path.rename(target)
    fsync_dir(target.parent)
    return target


def held(paths: StatePaths) -> list[Path]:
    """Requests parked with a person, oldest first."""
    folder = paths.spool_dir("held")
    if not folder.is_dir():
        return []
    found = [p for p in folder.iterdir() if p.suffix == SUFFIX and not p.name.startswith(".")]
    return sorted(found, key=lambda p: (p.stat().st_mtime_ns, p.name))


def unpark(paths: StatePaths, request_id: str) -> Path | None:
    """Put a parked request back into `new/` (a person's `resume`); None when not parked."""
    source = paths.spool_dir("held") / f"{request_id}{SUFFIX}"
    if not source.exists():
        return None
    target = paths.spool_dir("new") / source.name
    source.rename(target)
    fsync_dir(target.parent)
    return target


def artifact_problem(paths: StatePaths, request: Request) -> str | None:
    """Why a request's referenced artifact is unusable (outside the state dir, missing), or None."""
    name = getattr(request, "survivors_artifact", None)
    if not name:
        return None
    root = paths.root.resolve()
    target = (root / name).resolve()
    if not target.is_relative_to(root):
        return f"survivors_artifact {name!r} is outside the state directory"
    if not target.is_file():
        return f"survivors_artifact {name!r} does not exist in the state directory"
    return None
