"""Synthetic histories: a planted stream, and a switch to a new seed and/or a new family."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pipeline.history import load_history
from pipeline.prng import FAMILIES, draw_values
from pipeline.synthetic import main, synthetic_records

if TYPE_CHECKING:
    from pathlib import Path

NAMES = sorted(FAMILIES)


@settings(max_examples=30, deadline=None)
@given(
    family=st.sampled_from(NAMES),
    new_family=st.sampled_from(NAMES),
    seed=st.integers(1, 1 << 20),
    new_seed=st.integers(1, 1 << 20),
    skip=st.integers(0, 3),
    count=st.integers(1, 60),
    data=st.data(),
)
def test_switch_is_two_fresh_streams(
    family: str,
    new_family: str,
    seed: int,
    new_seed: int,
    skip: int,
    count: int,
    data: st.DataObject,
) -> None:
    """Before the switch the draws are the first stream's; from it on, the new family's stream
    from the new seed, started fresh, with the same skip and mod."""
    at = data.draw(st.integers(0, count))
    if family == new_family and seed == new_seed:
        new_seed += 1
    records = synthetic_records(
        family, seed, count, skip=skip, switch_at=at, new_seed=new_seed, new_family=new_family
    )
    values = [r.value for r in records]
    assert values[:at] == draw_values(FAMILIES[family], seed, at, skip)
    assert values[at:] == draw_values(FAMILIES[new_family], new_seed, count - at, skip)
    assert [r.draw_id for r in records] == [f"syn-{i:06d}" for i in range(count)]


def test_family_switch_keeps_the_seed_when_none_is_given() -> None:
    """`new_family` alone: the same seed, under the new family, from the switch on."""
    records = synthetic_records("lcg32", 4242, 10, switch_at=4, new_family="xorshift32")
    assert [r.value for r in records][4:] == draw_values(FAMILIES["xorshift32"], 4242, 6)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"switch_at": 3}, "new seed or a new family"),
        ({"switch_at": 3, "new_seed": 7}, "new seed or a new family"),
        ({"switch_at": 11, "new_seed": 8}, r"switch_at 11 outside \[0, count=10\]"),
        ({"new_seed": 8}, "without switch_at"),
        ({"switch_at": 3, "new_family": "mt19937"}, "unknown PRNG family 'mt19937'"),
    ],
)
def test_bad_switch_is_refused(kwargs: dict[str, object], match: str) -> None:
    """A switch that changes nothing, lies outside the history, has no index or names an
    unknown family raises ValueError naming the rule."""
    with pytest.raises(ValueError, match=match):
        synthetic_records("lcg32", 7, 10, **kwargs)  # type: ignore[arg-type]


def test_cli_writes_a_family_switch(tmp_path: Path) -> None:
    """`--switch-at --new-family` writes the switched history; a no-op switch exits 2."""
    out = tmp_path / "h.jsonl"
    argv = ["--family", "minstd", "--seed", "5", "--count", "8", "--switch-at", "5"]
    assert main([*argv, "--new-family", "java_lcg", "--out", str(out)]) == 0
    values = [r.value for r in load_history(out).records]
    assert values == [r.value for r in synthetic_records(
        "minstd", 5, 8, switch_at=5, new_family="java_lcg"
    )]  # fmt: skip
    assert values[5:] == draw_values(FAMILIES["java_lcg"], 5, 3)
    assert main([*argv, "--out", str(tmp_path / "no.jsonl")]) == 2
