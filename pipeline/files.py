"""Atomic writes and validated reads of the JSON files jobs exchange.

A reader never sees a half-written file: writers fill `NAME.tmp-PID` in the same folder, fsync it
and rename it over `NAME` (rename is atomic within a filesystem). A temporary file is removed when
the write fails or the job is terminated.
"""

from __future__ import annotations

import hashlib
import json
import os
from typing import TYPE_CHECKING, TypeVar

from pydantic import BaseModel, ValidationError

from pipeline.errors import PipelineInputError

if TYPE_CHECKING:
    from collections.abc import Iterable
    from pathlib import Path

M = TypeVar("M", bound=BaseModel)


def write_bytes_atomic(path: Path, data: bytes) -> None:
    """Write `data` to `path` through a temporary file and a rename."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f"{path.name}.tmp-{os.getpid()}")
    try:
        with tmp.open("wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        tmp.replace(path)
    finally:
        tmp.unlink(missing_ok=True)


def model_json(model: BaseModel) -> bytes:
    """Canonical JSON of a model (sorted keys, trailing newline)."""
    payload = json.loads(model.model_dump_json())
    return (json.dumps(payload, sort_keys=True, indent=1) + "\n").encode()


def write_model(path: Path, model: BaseModel) -> None:
    """Write a model as canonical JSON, atomically."""
    write_bytes_atomic(path, model_json(model))


def write_models_jsonl(path: Path, models: Iterable[BaseModel]) -> None:
    """Write models as JSON Lines, atomically."""
    lines = [m.model_dump_json() + "\n" for m in models]
    write_bytes_atomic(path, "".join(lines).encode())


def sha256_file(path: Path) -> str:
    """SHA-256 of a file's bytes, as `sha256:HEX`."""
    return "sha256:" + hashlib.sha256(path.read_bytes()).hexdigest()


def content_id(prefix: str, model: BaseModel) -> str:
    """A short content hash of a model: equal content, equal id."""
    return f"{prefix}-{hashlib.sha256(model_json(model)).hexdigest()[:16]}"


def _first_error(exc: ValidationError) -> str:
    """The first validation error as `field: message`."""
    err = exc.errors()[0]
    where = ".".join(str(p) for p in err["loc"]) or "(root)"
    more = f" (+{exc.error_count() - 1} more)" if exc.error_count() > 1 else ""
    return f"{where}: {err['msg']}{more}"


def read_model(path: Path, model: type[M], *, hint: str = "") -> M:
    """Read and validate one JSON file; PipelineInputError names the file and the problem."""
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise PipelineInputError(str(path), "file is missing", hint) from None
    except OSError as exc:
        raise PipelineInputError(str(path), "cannot be read", str(exc)) from exc
    try:
        return model.model_validate_json(raw)
    except ValidationError as exc:
        raise PipelineInputError(
            str(path), f"is not a valid {model.__name__}", _first_error(exc)
        ) from exc


def read_models_jsonl(path: Path, model: type[M]) -> list[M]:
    """Read and validate a JSON Lines file (empty lines skipped); errors name the line."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise PipelineInputError(str(path), "file is missing") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise PipelineInputError(str(path), "cannot be read as UTF-8 text", str(exc)) from exc
    out: list[M] = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            out.append(model.model_validate_json(line))
        except ValidationError as exc:
            raise PipelineInputError(
                f"{path}:{number}", f"is not a valid {model.__name__}", _first_error(exc)
            ) from exc
    return out
