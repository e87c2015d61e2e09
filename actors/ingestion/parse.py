"""Parse and validate draw files (pure): JSON, CSV with a header, TXT one draw per line.

A file is valid as a whole or not at all; the first broken rule is reported with the record
(1-based index for JSON, line number for CSV and TXT) and the rule's name. The synthetic
injector hands its records to `parse_records`, the same path files take after decoding.
"""

from __future__ import annotations

import csv
import hashlib
import io
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from actors.safefile import load_json
from messages.errors import InputError
from messages.ingestion import Draw

if TYPE_CHECKING:
    from collections.abc import Sequence

MAX_FILE_BYTES = 64 * 1024 * 1024
KNOWN_FIELDS = {"draw_id", "timestamp", "value", "digits", "source"}
SUFFIXES = (".json", ".csv", ".txt")
EARLIEST = datetime(1900, 1, 1, tzinfo=UTC)
LATEST = datetime(2200, 1, 1, tzinfo=UTC)
"""Timestamps lie in [EARLIEST, LATEST) once converted to UTC (year 1 or 9999 with an offset
used to overflow the conversion)."""
REAL_STREAM = "real"
SYNTHETIC_STREAM = "synthetic"

Records = list[tuple[str, dict[str, Any]]]
"""(where, record) pairs: `where` names the record for error messages (`record 3`, `line 7`)."""


class DrawFileError(InputError):
    """A draw file broke a rule; `record` says where (e.g. `record 3`, `line 7`)."""

    def __init__(self, source: str, rule: str, detail: str = "", record: str = "") -> None:
        super().__init__(source, rule, f"{record}: {detail}" if record else detail)
        self.record = record


def digit_count(mod: int) -> int:
    """How many digits a value has when written with leading zeros (mod 1000 → 3)."""
    return len(str(mod - 1))


def derive_draw_id(timestamp: datetime, value: int) -> str:
    """A deterministic id from content and timestamp, for records that bring none."""
    text = f"{timestamp.isoformat()}|{value}".encode()
    return "d-" + hashlib.sha256(text).hexdigest()[:20]


def _parse_timestamp(raw: Any, where: str, name: str) -> datetime:
    if not isinstance(raw, str) or not raw.strip():
        raise DrawFileError(name, "timestamp is required (ISO 8601 text)", repr(raw), where)
    text = raw.strip()
    try:
        stamp = datetime.fromisoformat(text.replace("Z", "+00:00") if text.endswith("Z") else text)
    except ValueError as exc:
        raise DrawFileError(name, "timestamp is not ISO 8601", repr(raw), where) from exc
    if stamp.tzinfo is None:
        detail = f"{raw!r} (add Z or +00:00)"
        raise DrawFileError(name, "timestamp must carry a UTC offset", detail, where)
    try:
        utc = stamp.astimezone(UTC)
    except (OverflowError, ValueError) as exc:
        detail = f"{raw!r} cannot be converted to UTC"
        raise DrawFileError(name, "timestamp out of range [1900, 2200)", detail, where) from exc
    if not EARLIEST <= utc < LATEST:
        raise DrawFileError(name, "timestamp out of range [1900, 2200)", repr(raw), where)
    return stamp


def _parse_value(raw: Any, where: str, name: str, mod: int) -> int:
    digits = digit_count(mod)
    if isinstance(raw, list):
        if len(raw) != digits:
            detail = f"{len(raw)} digits given, {digits} expected for mod {mod}"
            raise DrawFileError(name, "wrong count of digits", detail, where)
        if not all(isinstance(d, int) and not isinstance(d, bool) and 0 <= d <= 9 for d in raw):
            raise DrawFileError(name, "digits must be integers 0-9", repr(raw), where)
        value = int("".join(str(d) for d in raw))
    elif isinstance(raw, int) and not isinstance(raw, bool):
        value = raw
    elif isinstance(raw, str) and raw.strip().isascii() and raw.strip().isdigit():
        text = raw.strip()
        if len(text) > digits:
            detail = f"{text!r} has {len(text)} digits, at most {digits} for mod {mod}"
            raise DrawFileError(name, "wrong count of digits", detail, where)
        value = int(text)
    else:
        detail = repr(raw)[:80]
        raise DrawFileError(name, "value must be an integer or a list of digits", detail, where)
    if not 0 <= value < mod:
        raise DrawFileError(name, f"value out of range [0, {mod})", str(value), where)
    return value


def _draw_from_record(record: dict[str, Any], where: str, name: str, mod: int) -> Draw:
    if "value" in record and "digits" in record:
        raise DrawFileError(name, "give either value or digits, not both", "", where)
    raw_value = record.get("value", record.get("digits"))
    if raw_value is None or raw_value == "":
        raise DrawFileError(name, "value is required", "", where)
    timestamp = _parse_timestamp(record.get("timestamp"), where, name)
    value = _parse_value(raw_value, where, name, mod)
    draw_id = record.get("draw_id") or derive_draw_id(timestamp, value)
    metadata = {k: v for k, v in record.items() if k not in KNOWN_FIELDS}
    try:
        return Draw(
            draw_id=str(draw_id),
            timestamp=timestamp,
            value=value,
            source=record.get("source") or "external",
            metadata=metadata,
        )
    except ValidationError as exc:
        err = exc.errors()[0]
        loc = err["loc"][:2] if err["loc"][:1] == ("metadata",) else err["loc"]
        field = ".".join(str(p) for p in loc)  # metadata.KEY, not the union member tried
        raise DrawFileError(name, f"invalid {field}", err["msg"], where) from exc


def _records_json(text: str, name: str) -> Records:
    try:
        data = load_json(text, name)
    except InputError as exc:
        raise DrawFileError(name, exc.rule, exc.detail) from exc
    if isinstance(data, dict) and "draws" in data:
        data = data["draws"]
        if not isinstance(data, list):
            detail = f"'draws' holds {type(data).__name__}"
            raise DrawFileError(name, "'draws' must be a list of draw objects", detail)
    items = data if isinstance(data, list) else [data]
    out = []
    for index, item in enumerate(items, start=1):
        if not isinstance(item, dict):
            raise DrawFileError(
                name, "a draw must be a JSON object", repr(item)[:80], f"record {index}"
            )
        out.append((f"record {index}", item))
    return out


def _records_csv(text: str, name: str) -> Records:
    reader = csv.DictReader(io.StringIO(text))
    try:
        header = reader.fieldnames or []
    except csv.Error as exc:
        raise DrawFileError(name, "file is not valid CSV", str(exc), "line 1") from exc
    if "timestamp" not in header or not ({"value", "digits"} & set(header)):
        detail = f"header is {header[:8]!r}"[:200]
        raise DrawFileError(name, "CSV header must name timestamp and value", detail, "line 1")
    out: Records = []
    try:
        for row in reader:
            where = f"line {reader.line_num}"
            if None in row or any(v is None for v in row.values()):
                raise DrawFileError(
                    name, "CSV row has a different column count than the header", "", where
                )
            record: dict[str, Any] = {k: v for k, v in row.items() if v != "" or k in KNOWN_FIELDS}
            out.append((where, record))
    except csv.Error as exc:
        where = f"line {reader.line_num}"
        raise DrawFileError(name, "file is not valid CSV", str(exc), where) from exc
    return out


def _records_txt(text: str, name: str) -> Records:
    out: Records = []
    for number, line in enumerate(text.splitlines(), start=1):
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        parts = stripped.replace(",", " ").split()
        if len(parts) not in (2, 3):
            detail = f"{stripped[:80]!r}: expected 'TIMESTAMP VALUE [DRAW_ID]'"
            raise DrawFileError(
                name, "TXT line must hold a timestamp and a value", detail, f"line {number}"
            )
        record: dict[str, Any] = {"timestamp": parts[0], "value": parts[1]}
        if len(parts) == 3:
            record["draw_id"] = parts[2]
        out.append((f"line {number}", record))
    return out


def parse_records(name: str, records: Records, *, mod: int) -> tuple[Draw, ...]:
    """Validate decoded records into draws, in order; repeats of a record inside are dropped.

    Raises:
        DrawFileError: the first rule a record breaks, or one draw_id with two contents.
    """
    if not records:
        raise DrawFileError(name, "file holds no draws")
    draws: list[Draw] = []
    seen: dict[str, Draw] = {}
    for where, record in records:
        draw = _draw_from_record(record, where, name, mod)
        earlier = seen.get(draw.draw_id)
        if earlier is not None:
            if earlier.value != draw.value or earlier.timestamp != draw.timestamp:
                detail = f"draw_id {draw.draw_id!r} appears twice with different content"
                raise DrawFileError(name, "conflicting duplicate draw_id", detail, where)
            continue
        seen[draw.draw_id] = draw
        draws.append(draw)
    stream_of(name, draws)
    return tuple(draws)


def stream_of(name: str, draws: Sequence[Draw]) -> str:
    """The history stream a file's draws go to: `synthetic` if tagged so, else `real`.

    Raises:
        DrawFileError: the file mixes synthetic and other draws (they must never share a stream).
    """
    synthetic = [d.source == "synthetic" for d in draws]
    if any(synthetic) and not all(synthetic):
        where = f"draw {draws[synthetic.index(not synthetic[0])].draw_id!r}"
        detail = "synthetic draws are kept apart from real ones: split the file"
        raise DrawFileError(name, "file mixes synthetic and real draws", detail, where)
    return SYNTHETIC_STREAM if synthetic and synthetic[0] else REAL_STREAM


def parse_draw_file(
    name: str, data: bytes, *, mod: int, max_bytes: int = MAX_FILE_BYTES
) -> tuple[Draw, ...]:
    """Parse one file's bytes into validated draws, in file order.

    Raises:
        DrawFileError: the first rule the file breaks, with where and why.
    """
    suffix = name[name.rfind(".") :].lower() if "." in name else ""
    if suffix not in SUFFIXES:
        raise DrawFileError(
            name, f"unknown file type {suffix or '(none)'!r}; known: {', '.join(SUFFIXES)}"
        )
    if len(data) > max_bytes:
        raise DrawFileError(name, f"file is larger than {max_bytes} bytes", f"{len(data)} bytes")
    if not data.strip():
        raise DrawFileError(name, "file is empty", f"{len(data)} bytes, none but whitespace")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        detail = f"byte {exc.start}: {data[exc.start : exc.start + 4]!r}"
        raise DrawFileError(name, "file is not UTF-8", detail) from exc
    if not text.strip():
        raise DrawFileError(name, "file is empty", "nothing but a byte-order mark and whitespace")
    if "\x00" in text:
        raise DrawFileError(name, "file contains NUL characters", f"at {text.index(chr(0))}")
    reader = {".json": _records_json, ".csv": _records_csv, ".txt": _records_txt}[suffix]
    return parse_records(name, reader(text, name), mod=mod)
