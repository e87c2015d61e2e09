"""Summarising and truncation: caps are never exceeded and nothing disappears unmarked."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bundle_factory import BudgetError, EstimatorTokenizer
from bundle_factory.frozen import freeze
from bundle_factory.truncation import (
    DICT_MARKER_KEY,
    ELLIPSIS,
    LADDER,
    SummaryLimits,
    depth_marker,
    fit_lines,
    fit_payload,
    keys_marker,
    list_marker,
    payload_lines,
    summarise,
)
from tests.bundle_factory.strategies import payloads

TOKENIZER = EstimatorTokenizer()
_CUT_STRING = re.compile(rf"^(.*){ELLIPSIS}\[\+(\d+) chars\]$", re.DOTALL)


def assert_accounted(orig: Any, out: Any, rung: SummaryLimits) -> None:
    """Every key and item of `orig` is in `out`, or counted by a marker standing in its place."""
    if isinstance(orig, Mapping):
        if isinstance(out, str):
            assert out == depth_marker(orig)
            return
        assert isinstance(out, dict)
        present = [k for k in orig if k in out]
        extra = set(out) - set(orig)
        if len(present) < len(orig):
            (marker_key,) = extra
            assert marker_key.startswith(DICT_MARKER_KEY)
            assert out[marker_key] == keys_marker(len(orig) - len(present), len(orig))
        else:
            assert not extra
        for key in present:
            assert_accounted(orig[key], out[key], rung)
    elif isinstance(orig, tuple):
        if isinstance(out, str):
            assert out == depth_marker(orig)
            return
        assert isinstance(out, list)
        if len(orig) <= rung.max_items:
            for a, b in zip(orig, out, strict=True):
                assert_accounted(a, b, rung)
            return
        head = (rung.max_items + 1) // 2
        tail = rung.max_items - head
        assert len(out) == rung.max_items + 1
        omitted = len(orig) - head - tail
        assert out[head] == list_marker(omitted, len(orig))
        for a, b in zip(orig[:head], out[:head], strict=True):
            assert_accounted(a, b, rung)
        for a, b in zip(orig[len(orig) - tail :], out[head + 1 :], strict=True):
            assert_accounted(a, b, rung)
    elif isinstance(orig, str) and out != orig:
        match = _CUT_STRING.match(out)
        assert match is not None
        assert orig.startswith(match.group(1))
        assert len(match.group(1)) + int(match.group(2)) == len(orig)
    else:
        assert out == orig


@settings(max_examples=40, deadline=None)
@given(payload=payloads, rung=st.sampled_from(LADDER))
def test_summarising_never_drops_anything_silently(
    payload: dict[str, Any], rung: SummaryLimits
) -> None:
    """At every rung, each key, item and character is kept or counted by a marker."""
    frozen = freeze(payload)
    assert_accounted(frozen, summarise(frozen, rung), rung)


@settings(max_examples=40, deadline=None)
@given(payload=payloads, cap=st.integers(min_value=64, max_value=3000))
def test_fit_payload_respects_the_cap_and_names_cut_keys(payload: dict[str, Any], cap: int) -> None:
    """The section never exceeds its cap; cut lines are counted and their keys named."""
    frozen = freeze(payload)
    fitted = fit_payload("## 8. STEP METRICS", frozen, cap, TOKENIZER, "STEP METRICS")
    assert fitted.tokens == TOKENIZER.count(fitted.text)
    assert fitted.tokens <= cap
    lines = fitted.text.split("\n")
    assert lines[0] == "## 8. STEP METRICS"
    full = payload_lines(frozen)
    if fitted.note is None:
        assert lines[1:] == (full or ["(no results reported)"])
        return
    marker = re.fullmatch(
        rf"\[{ELLIPSIS} cut (\d+) of (\d+) lines \(~\d+ tokens\)(: keys .+)?\]", lines[-1]
    )
    if marker is None:
        # Summarised only: every top-level key is present or counted by the marker key.
        shown = {line.split('": ', 1)[0] for line in lines[1:]}
        assert len(shown) == len(lines) - 1
        return
    cut, total = int(marker.group(1)), int(marker.group(2))
    assert len(lines) - 2 + cut == total
    if marker.group(3) is None:  # the short marker: only when the named one cannot fit
        assert cap < 2 * 64


def test_a_long_list_keeps_first_and_last_items_with_a_count() -> None:
    """A 100-item list at the last rung keeps item 0 and item 99 and says 98 were omitted."""
    out = summarise(freeze({"xs": list(range(100))}), LADDER[-1])
    assert out == {"xs": [0, list_marker(98, 100), 99]}


def test_fit_lines_refuses_a_cap_below_header_and_marker() -> None:
    """A cap that cannot hold even the header and the marker is an error, not a silent drop."""
    with pytest.raises(BudgetError, match="fewer than its header"):
        fit_lines("## 9. RECENT OUTCOMES", ["x" * 300] * 3, 10, TOKENIZER, lambda k: "", "RECENT")


def test_fit_lines_keeps_a_prefix_of_whole_lines() -> None:
    """Truncation keeps whole lines from the top and says how many went."""
    lines = [f"- record {n} " + "y" * 50 for n in range(40)]
    fitted = fit_lines("## H", lines, 200, TOKENIZER, lambda k: f"{40 - k} older", "H")
    kept = fitted.text.split("\n")
    assert fitted.tokens <= 200
    assert kept[1:-1] == lines[: len(kept) - 2]
    assert kept[-1].startswith(f"[{ELLIPSIS} cut {40 - (len(kept) - 2)} of 40 lines")
    assert fitted.note is not None
