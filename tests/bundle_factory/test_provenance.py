"""Provenance: streamed hashes, sentinels, and state paths that may not escape."""

from __future__ import annotations

import hashlib
import os
from typing import TYPE_CHECKING

import pytest

from bundle_factory import SHA256_MISSING, SHA256_UNREADABLE, StatePathError
from bundle_factory.provenance import collect_provenance, hash_file, resolve_state_path

if TYPE_CHECKING:
    from pathlib import Path


def test_hash_matches_hashlib_for_a_multi_chunk_file(tmp_path: Path) -> None:
    """A file larger than one 1 MiB chunk hashes to hashlib's digest, with its size."""
    data = os.urandom((1 << 20) + 12345)
    (tmp_path / "big.bin").write_bytes(data)
    (record,) = collect_provenance(tmp_path, ["big.bin"])
    assert record.sha256 == hashlib.sha256(data).hexdigest()
    assert record.size == len(data)
    assert record.path == "big.bin"


def test_missing_and_unreadable_have_distinct_sentinels(tmp_path: Path) -> None:
    """A missing file and an unreadable one (a directory) get different sentinels."""
    (tmp_path / "adir").mkdir()
    missing, unreadable = collect_provenance(tmp_path, ["nope.json", "adir"])[::-1]
    assert missing.path == "nope.json"
    assert missing.sha256 == SHA256_MISSING
    assert missing.is_missing
    assert not missing.is_unreadable
    assert unreadable.sha256 == SHA256_UNREADABLE
    assert unreadable.is_unreadable
    assert unreadable.error is not None
    assert unreadable.size is None
    assert missing.size is None
    assert SHA256_MISSING != SHA256_UNREADABLE


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads files whatever their mode")
def test_permission_denied_is_unreadable(tmp_path: Path) -> None:
    """A file without read permission is recorded as unreadable, with the reason."""
    path = tmp_path / "secret.json"
    path.write_text("{}")
    path.chmod(0)
    record = hash_file("secret.json", path)
    assert record.is_unreadable
    assert record.error is not None
    assert "PermissionError" in record.error


def test_records_are_sorted_and_deduplicated(tmp_path: Path) -> None:
    """Order of the state paths does not matter; duplicates collapse."""
    for name in ("b.json", "a.json"):
        (tmp_path / name).write_text(name)
    records = collect_provenance(tmp_path, ["b.json", "a.json", "b.json"])
    assert [r.path for r in records] == ["a.json", "b.json"]


def test_dotdot_is_refused(tmp_path: Path) -> None:
    """A path with a `..` component is refused even if it would land inside."""
    (tmp_path / "state").mkdir()
    with pytest.raises(StatePathError, match=r"'\.\.'"):
        resolve_state_path(tmp_path / "state", "sub/../x.json")
    with pytest.raises(StatePathError):
        collect_provenance(tmp_path / "state", ["ok.json", "../outside.json"])


def test_absolute_path_outside_is_refused_inside_is_accepted(tmp_path: Path) -> None:
    """An absolute path is accepted only inside the state directory."""
    state = tmp_path / "state"
    state.mkdir()
    (state / "x.json").write_text("{}")
    name, real = resolve_state_path(state, state / "x.json")
    assert name == "x.json"
    assert real == (state / "x.json").resolve()
    with pytest.raises(StatePathError, match="outside the state directory"):
        resolve_state_path(state, tmp_path / "elsewhere.json")


def test_symlink_escape_is_refused(tmp_path: Path) -> None:
    """A symlink inside the state directory that points outside it is refused."""
    state = tmp_path / "state"
    state.mkdir()
    outside = tmp_path / "secret.txt"
    outside.write_text("do not read")
    (state / "link.json").symlink_to(outside)
    (state / "linkdir").symlink_to(tmp_path)
    with pytest.raises(StatePathError, match="symlink"):
        collect_provenance(state, ["link.json"])
    with pytest.raises(StatePathError, match="outside the state directory"):
        collect_provenance(state, ["linkdir/secret.txt"])


def test_symlink_inside_is_followed(tmp_path: Path) -> None:
    """A symlink that stays inside the state directory is hashed under its own name."""
    state = tmp_path / "state"
    state.mkdir()
    (state / "real.json").write_text("{}")
    (state / "alias.json").symlink_to(state / "real.json")
    (record,) = collect_provenance(state, ["alias.json"])
    assert record.path == "alias.json"
    assert record.sha256 == hashlib.sha256(b"{}").hexdigest()
