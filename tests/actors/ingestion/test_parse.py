"""Draw file parsing: each format good and bad; every rejection names its rule and where."""

from __future__ import annotations

import json
import random
from datetime import UTC, datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from actors.ingestion.parse import (
    DrawFileError,
    derive_draw_id,
    parse_draw_file,
    parse_records,
    stream_of,
)
from tests.actors.ingestion.conftest import json_bytes, record, stamp

MOD = 1000


def parse(name: str, data: bytes | str, *, max_bytes: int = 64 * 1024 * 1024) -> tuple:  # type: ignore[type-arg]
    raw = data.encode() if isinstance(data, str) else data
    return parse_draw_file(name, raw, mod=MOD, max_bytes=max_bytes)


def rule_of(name: str, data: bytes | str) -> DrawFileError:
    with pytest.raises(DrawFileError) as info:
        parse(name, data)
    return info.value


# -- good files ------------------------------------------------------------------------------


def test_json_single_object_list_and_draws_key_agree() -> None:
    """One object, a list and {"draws": [...]} all give the same draws."""
    one = parse("a.json", json.dumps(record(1)))
    listed = parse("a.json", json.dumps([record(1)]))
    wrapped = parse("a.json", json.dumps({"draws": [record(1)]}))
    assert one == listed == wrapped
    assert one[0].draw_id == "t-00001"
    assert one[0].value == 7
    assert one[0].timestamp == datetime(2026, 1, 1, 0, 1, tzinfo=UTC)


def test_json_digits_extra_fields_and_source() -> None:
    """A digits list becomes the value; unknown fields are kept as metadata; source is read."""
    (draw,) = parse(
        "a.json",
        json.dumps({"timestamp": stamp(0), "digits": [0, 4, 2], "source": "manual", "site": "x"}),
    )
    assert draw.value == 42
    assert draw.source == "manual"
    assert draw.metadata == {"site": "x"}
    assert draw.draw_id == derive_draw_id(draw.timestamp, 42)


def test_csv_with_header_and_txt_lines() -> None:
    """CSV with a header and TXT lines (comments and blanks skipped) parse in file order."""
    csv_draws = parse(
        "a.csv", f"draw_id,timestamp,value,note\nx1,{stamp(1)},5,hi\nx2,{stamp(2)},017,\n"
    )
    assert [(d.draw_id, d.value) for d in csv_draws] == [("x1", 5), ("x2", 17)]
    assert csv_draws[0].metadata == {"note": "hi"}
    assert csv_draws[1].metadata == {}
    txt = parse("a.TXT", f"# header comment\n\n{stamp(1)} 5 x1\n{stamp(2)},17\n")
    assert [d.value for d in txt] == [5, 17]
    assert txt[0].draw_id == "x1"
    assert txt[1].draw_id == derive_draw_id(txt[1].timestamp, 17)


def test_derived_ids_are_deterministic_and_repeats_inside_a_file_collapse() -> None:
    """The same record twice in one file is one draw; ids derive from content and time."""
    draws = parse("a.txt", f"{stamp(1)} 5\n{stamp(1)} 5\n")
    assert len(draws) == 1
    assert draws[0].draw_id == parse("b.txt", f"{stamp(1)} 5\n")[0].draw_id


draw_rows = st.lists(
    st.tuples(st.integers(0, 10**6), st.integers(0, MOD - 1)), min_size=1, max_size=20
).map(lambda rows: list({minute: (minute, value) for minute, value in rows}.values()))


@settings(max_examples=40, deadline=None)
@given(rows=draw_rows)
def test_the_three_formats_agree(rows: list[tuple[int, int]]) -> None:
    """The same draws written as JSON, CSV and TXT parse to the same values and times."""
    as_json = json.dumps([{"timestamp": stamp(m), "value": v} for m, v in rows])
    as_csv = "timestamp,value\n" + "".join(f"{stamp(m)},{v}\n" for m, v in rows)
    as_txt = "".join(f"{stamp(m)} {v}\n" for m, v in rows)
    parsed = [parse(n, t) for n, t in (("a.json", as_json), ("a.csv", as_csv), ("a.txt", as_txt))]
    assert parsed[0] == parsed[1] == parsed[2]
    assert [d.value for d in parsed[0]] == [v for _m, v in rows]


# -- bad files -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "body", "rule", "where"),
    [
        (
            "a.json",
            json.dumps([record(1), {"timestamp": stamp(2), "digits": [1, 2]}]),
            "wrong count of digits",
            "record 2",
        ),
        (
            "a.json",
            json.dumps({"timestamp": stamp(1), "value": 1000}),
            "value out of range [0, 1000)",
            "record 1",
        ),
        (
            "a.json",
            json.dumps({"timestamp": stamp(1), "value": -1}),
            "value out of range [0, 1000)",
            "record 1",
        ),
        ("a.json", json.dumps({"value": 5}), "timestamp is required (ISO 8601 text)", "record 1"),
        (
            "a.json",
            json.dumps({"timestamp": "yesterday", "value": 5}),
            "timestamp is not ISO 8601",
            "record 1",
        ),
        (
            "a.json",
            json.dumps({"timestamp": "2026-01-01T00:00:00", "value": 5}),
            "timestamp must carry a UTC offset",
            "record 1",
        ),
        ("a.json", json.dumps({"timestamp": stamp(1)}), "value is required", "record 1"),
        (
            "a.json",
            json.dumps({"timestamp": stamp(1), "value": 1, "digits": [0, 0, 1]}),
            "give either value or digits, not both",
            "record 1",
        ),
        (
            "a.json",
            json.dumps({"timestamp": stamp(1), "value": True}),
            "value must be an integer or a list of digits",
            "record 1",
        ),
        (
            "a.json",
            json.dumps({"timestamp": stamp(1), "digits": [1, 2, 10]}),
            "digits must be integers 0-9",
            "record 1",
        ),
        ("a.json", json.dumps([record(1), 7]), "a draw must be a JSON object", "record 2"),
        ("a.json", json.dumps({**record(1), "source": "oracle"}), "invalid source", "record 1"),
        (
            "a.json",
            json.dumps([record(1), record(1, value=8)]),
            "conflicting duplicate draw_id",
            "record 2",
        ),
        ("a.json", json.dumps({"draws": 5}), "'draws' must be a list of draw objects", ""),
        ("a.json", "[]", "file holds no draws", ""),
        ("a.json", "{not json", "file is not valid JSON", ""),
        ("a.csv", f"timestamp,value\n{stamp(1)},1234\n", "wrong count of digits", "line 2"),
        (
            "a.csv",
            f"timestamp,value\n{stamp(1)},abc\n",
            "value must be an integer or a list of digits",
            "line 2",
        ),
        (
            "a.csv",
            f"timestamp,value\n{stamp(1)},5,extra\n",
            "CSV row has a different column count than the header",
            "line 2",
        ),
        (
            "a.csv",
            f"time,value\n{stamp(1)},5\n",
            "CSV header must name timestamp and value",
            "line 1",
        ),
        ("a.csv", "timestamp,value\n,5\n", "timestamp is required (ISO 8601 text)", "line 2"),
        (
            "a.txt",
            f"{stamp(1)} 5\n{stamp(2)}\n",
            "TXT line must hold a timestamp and a value",
            "line 2",
        ),
        ("a.txt", f"{stamp(1)} 99999\n", "wrong count of digits", "line 1"),
        ("a.txt", "5 2026-01-01T00:00:00Z\n", "timestamp is not ISO 8601", "line 1"),
    ],
)
def test_bad_records_name_the_rule_and_where(name: str, body: str, rule: str, where: str) -> None:
    """Each broken rule is reported by name, with the record or line that broke it."""
    error = rule_of(name, body)
    assert error.rule == rule
    assert error.record == where
    assert rule in str(error)


@pytest.mark.parametrize("name", ["a.json", "a.csv", "a.txt"])
def test_empty_and_whitespace_files_are_refused(name: str) -> None:
    """Empty, whitespace-only and BOM-only files are `file is empty`."""
    for body in (b"", b"  \n\t\n", b"\xef\xbb\xbf\n"):
        assert rule_of(name, body).rule == "file is empty"


@pytest.mark.parametrize("name", ["a.json", "a.csv", "a.txt"])
def test_non_utf8_bytes_are_refused_with_the_offset(name: str) -> None:
    """Bytes that are not UTF-8 are refused, naming where the first bad byte is."""
    body = f"timestamp,value\n{stamp(1)},5\n".encode() + b"\xff\xfe\x00"
    error = rule_of(name, body)
    assert error.rule == "file is not UTF-8"
    offset = body.index(b"\xff")
    assert f"byte {offset}" in error.detail


@pytest.mark.parametrize("name", ["a.json", "a.csv", "a.txt"])
def test_ten_megabytes_of_garbage_is_refused(name: str) -> None:
    """10 MB of random bytes, or of printable junk, is refused with a rule, not a crash."""
    rng = random.Random(7)
    binary = rng.randbytes(10 * 1024 * 1024)
    assert rule_of(name, binary).rule in {"file is not UTF-8", "file contains NUL characters"}
    junk = "".join(rng.choice("abc{}[],;:\"' 0123\n") for _ in range(1024)) * 10 * 1024
    assert rule_of(name, junk).rule


def test_nul_unknown_suffix_and_size_limit() -> None:
    """NUL characters, an unknown suffix and a file over the size limit are refused."""
    assert rule_of("a.txt", f"{stamp(1)} 5\x00\n").rule == "file contains NUL characters"
    assert rule_of("a.xml", "<draw/>").rule.startswith("unknown file type '.xml'")
    with pytest.raises(DrawFileError, match="larger than 10 bytes"):
        parse("a.txt", f"{stamp(1)} 5\n", max_bytes=10)


def test_synthetic_and_real_draws_never_share_a_file() -> None:
    """A file tagged synthetic goes to the synthetic stream; a mixed file is refused."""
    synthetic = parse("a.json", json.dumps([record(1, source="synthetic")]))
    assert stream_of("a.json", synthetic) == "synthetic"
    assert stream_of("a.json", parse("b.json", json.dumps([record(1)]))) == "real"
    error = rule_of("c.json", json.dumps([record(1, source="synthetic"), record(2)]))
    assert error.rule == "file mixes synthetic and real draws"
    assert "t-00002" in error.record


def test_parse_records_is_the_path_files_take() -> None:
    """Records handed in directly are validated exactly like file records."""
    draws = parse_records("x", [("position 0", record(0))], mod=MOD)
    assert draws == parse("a.json", json_bytes([record(0)]))
    with pytest.raises(DrawFileError, match="value out of range"):
        parse_records("x", [("position 0", record(0, value=5000))], mod=MOD)
