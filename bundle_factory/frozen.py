"""Deep freezing of JSON-like payloads: read-only mappings and tuples all the way down.

A bundle travels between actors and is written to the audit trail, so nothing may change it
after it is built. Pydantic's `frozen=True` only stops attribute assignment on the model itself;
the payloads inside are frozen here: every mapping becomes a `FrozenDict` (read-only, hashable,
keys sorted so that dict insertion order never reaches a prompt), every list a tuple.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping
from datetime import date, datetime
from enum import Enum
from pathlib import PurePath
from typing import Annotated, Any, NoReturn

from pydantic import BaseModel, PlainSerializer, PlainValidator

from bundle_factory.errors import ResultsError


class FrozenDict(Mapping[str, Any]):
    """A read-only, hashable mapping with string keys held in sorted order."""

    __slots__ = ("_data", "_hash")

    _data: dict[str, Any]
    _hash: int | None

    def __init__(self, items: Mapping[str, Any] | None = None) -> None:
        data = dict(sorted((items or {}).items()))
        object.__setattr__(self, "_data", data)
        object.__setattr__(self, "_hash", None)

    def __getitem__(self, key: str) -> Any:
        return self._data[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._data)

    def __len__(self) -> int:
        return len(self._data)

    def __hash__(self) -> int:
        if self._hash is None:
            object.__setattr__(self, "_hash", hash(tuple(self._data.items())))
        return self._hash  # type: ignore[return-value]

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Mapping):
            return self._data == dict(other.items())
        return NotImplemented

    def __repr__(self) -> str:
        return f"FrozenDict({self._data!r})"

    def __setattr__(self, name: str, value: Any) -> NoReturn:
        msg = f"FrozenDict is read-only; cannot set attribute {name!r}"
        raise AttributeError(msg)

    def __delattr__(self, name: str) -> NoReturn:
        msg = f"FrozenDict is read-only; cannot delete attribute {name!r}"
        raise AttributeError(msg)

    def __reduce__(self) -> tuple[type[FrozenDict], tuple[dict[str, Any]]]:
        return (FrozenDict, (self._data,))

    def __copy__(self) -> FrozenDict:
        return self

    def __deepcopy__(self, memo: dict[int, Any]) -> FrozenDict:
        return self


def freeze(value: Any, path: str = "$") -> Any:
    """Return `value` as frozen JSON: FrozenDict, tuple, str, int, float, bool or None.

    Non-finite floats become the strings "NaN", "Infinity", "-Infinity" (JSON has no such
    numbers, and a failed step legitimately reports NaN); dates become ISO 8601 strings, enums
    their value, paths POSIX strings, pydantic models their JSON dump.

    Raises:
        ResultsError: a mapping key is not a string, or a value has no JSON form; the message
            names the value's path (``$.a.b[3]``).
    """
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        if math.isfinite(value):
            return value
        if math.isnan(value):
            return "NaN"
        return "Infinity" if value > 0 else "-Infinity"
    if isinstance(value, FrozenDict):
        return value
    if isinstance(value, Mapping):
        items: dict[str, Any] = {}
        for key, item in value.items():
            if not isinstance(key, str):
                msg = (
                    f"results key {key!r} at {path} is a {type(key).__name__}; "
                    "keys must be strings (JSON objects have string keys only)"
                )
                raise ResultsError(msg)
            items[key] = freeze(item, f"{path}.{key}")
        return FrozenDict(items)
    if isinstance(value, list | tuple):
        return tuple(freeze(item, f"{path}[{n}]") for n, item in enumerate(value))
    if isinstance(value, Enum):
        return freeze(value.value, path)
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, PurePath):
        return value.as_posix()
    if isinstance(value, BaseModel):
        return freeze(value.model_dump(mode="json"), path)
    msg = (
        f"results value at {path} is a {type(value).__name__}, which has no JSON form; "
        "use str, int, float, bool, None, lists or string-keyed mappings"
    )
    raise ResultsError(msg)


def thaw(value: Any) -> Any:
    """Return frozen JSON as plain dicts and lists (the inverse of `freeze` for JSON values)."""
    if isinstance(value, Mapping):
        return {key: thaw(item) for key, item in value.items()}
    if isinstance(value, tuple | list):
        return [thaw(item) for item in value]
    return value


def _freeze_mapping(value: Any) -> FrozenDict:
    if not isinstance(value, Mapping):
        msg = f"expected a mapping, got {type(value).__name__}"
        raise ValueError(msg)  # noqa: TRY004 - pydantic turns ValueError into a ValidationError
    frozen = freeze(value)
    assert isinstance(frozen, FrozenDict)
    return frozen


FrozenJson = Annotated[
    Any,
    PlainValidator(freeze, json_schema_input_type=Any),
    PlainSerializer(thaw),
]
"""A pydantic field type: any JSON value, stored deeply frozen, dumped as plain JSON."""

FrozenMapping = Annotated[
    Mapping[str, Any],
    PlainValidator(_freeze_mapping, json_schema_input_type=dict[str, Any]),
    PlainSerializer(thaw),
]
"""A pydantic field type: a JSON object, stored as a `FrozenDict`, dumped as a plain dict."""
