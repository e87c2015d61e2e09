"""Provenance: which state files a bundle was built from, and their SHA-256.

State paths are resolved inside the state directory only; a path that escapes it (a `..`
component, an absolute path elsewhere, or a symlink pointing out) is refused, because a bundle
must never carry the contents or the fingerprint of a file outside Watcher's own state.
"""

from __future__ import annotations

import hashlib
from pathlib import Path, PurePath
from typing import TYPE_CHECKING

from pydantic import Field

from bundle_factory.errors import StatePathError
from messages.base import Model

if TYPE_CHECKING:
    import os
    from collections.abc import Iterable

SHA256_MISSING = "<missing>"
"""The `sha256` of a state file that does not exist."""
SHA256_UNREADABLE = "<unreadable>"
"""The `sha256` of a state file that exists but could not be read (permissions, a directory...)."""

# 1 MiB chunks: state files can be hundreds of MB (survivor lists); memory stays flat.
_CHUNK_BYTES = 1 << 20


class ProvenanceRecord(Model):
    """One state file used by a bundle: its path inside the state directory, hash and size."""

    path: str
    """POSIX path relative to the state directory."""
    sha256: str
    """64 hex digits, or `SHA256_MISSING` / `SHA256_UNREADABLE`."""
    size: int | None = Field(default=None, ge=0)
    """Bytes hashed; None when the file is missing or unreadable."""
    error: str | None = None
    """Why an unreadable file could not be read (exception type and reason)."""

    @property
    def is_missing(self) -> bool:
        """True when the file did not exist."""
        return self.sha256 == SHA256_MISSING

    @property
    def is_unreadable(self) -> bool:
        """True when the file existed but could not be read."""
        return self.sha256 == SHA256_UNREADABLE


def resolve_state_path(state_dir: Path, path: str | os.PathLike[str]) -> tuple[str, Path]:
    """Resolve `path` inside `state_dir`; return (relative POSIX name, real path).

    Raises:
        StatePathError: the path has a `..` component, is absolute outside the state directory,
            or resolves (through a symlink) outside it.
    """
    given = PurePath(path)
    if ".." in given.parts:
        msg = f"state path {str(path)!r} contains '..'; state paths must stay inside {state_dir}"
        raise StatePathError(msg)
    root = state_dir.resolve()
    candidate = Path(given) if given.is_absolute() else state_dir / given
    real = candidate.resolve()
    if not real.is_relative_to(root):
        how = "is a symlink that resolves" if candidate.is_symlink() else "resolves"
        msg = (
            f"state path {str(path)!r} {how} to {real}, outside the state directory {root}; "
            "refused (state paths must stay inside it, symlinks included)"
        )
        raise StatePathError(msg)
    if given.is_absolute():
        try:
            name = Path(given).relative_to(state_dir).as_posix()
        except ValueError:
            name = real.relative_to(root).as_posix()
    else:
        name = given.as_posix()
    return name, real


def hash_file(name: str, real: Path) -> ProvenanceRecord:
    """Stream `real` through SHA-256 in 1 MiB chunks; sentinels for missing or unreadable files."""
    if not real.exists():
        return ProvenanceRecord(path=name, sha256=SHA256_MISSING)
    digest = hashlib.sha256()
    size = 0
    try:
        with real.open("rb") as handle:
            while chunk := handle.read(_CHUNK_BYTES):
                digest.update(chunk)
                size += len(chunk)
    except OSError as exc:
        reason = exc.strerror or str(exc)
        return ProvenanceRecord(
            path=name, sha256=SHA256_UNREADABLE, error=f"{type(exc).__name__}: {reason}"
        )
    return ProvenanceRecord(path=name, sha256=digest.hexdigest(), size=size)


def collect_provenance(
    state_dir: Path, state_paths: Iterable[str | os.PathLike[str]]
) -> tuple[ProvenanceRecord, ...]:
    """Resolve and hash every state path; one record per distinct path, sorted by path.

    Every path is resolved before any file is read, so an escaping path fails the whole call
    without touching the others.
    """
    resolved = dict(resolve_state_path(state_dir, path) for path in state_paths)
    return tuple(hash_file(name, resolved[name]) for name in sorted(resolved))
