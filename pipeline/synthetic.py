"""Synthetic draw histories from a known seed, with an optional switch: the loop's test bed.

`python -m pipeline.synthetic --family lcg32 --seed 12345 --count 200 --out history.jsonl`;
`--switch-at N` with `--new-seed S` and/or `--new-family F` starts a fresh stream at draw N.
An `--out` ending in `.json` gets a draw file for the inbox (`{"draws": [...]}`) instead.
"""

from __future__ import annotations

import argparse
import json
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

from messages.artifacts import HistoryRecord
from pipeline.history import write_history
from pipeline.prng import FAMILIES, draw_values

if TYPE_CHECKING:
    from collections.abc import Sequence

EPOCH = datetime(2024, 1, 1, tzinfo=UTC)


def synthetic_records(
    family: str,
    seed: int,
    count: int,
    *,
    skip: int = 0,
    mod: int = 1000,
    switch_at: int | None = None,
    new_seed: int | None = None,
    new_family: str | None = None,
    start: datetime = EPOCH,
    every: timedelta = timedelta(hours=1),
    prefix: str = "syn",
) -> list[HistoryRecord]:
    """`count` draws of `family` from `seed`; from index `switch_at` on, a fresh stream (same
    skip and mod) of `new_seed` under `new_family` — either defaults to the one before.

    Raises:
        ValueError: an unknown family, a seed the family refuses, a switch outside
            [0, count], or a switch that changes neither the seed nor the family.
    """
    for name in (family, new_family):
        if name is not None and name not in FAMILIES:
            msg = f"unknown PRNG family {name!r}; known: {', '.join(FAMILIES)}"
            raise ValueError(msg)
    generator = FAMILIES[family]
    if switch_at is None:
        if new_seed is not None or new_family is not None:
            msg = "new_seed/new_family given without switch_at: the switch needs a draw index"
            raise ValueError(msg)
        values = draw_values(generator, seed, count, skip, mod)
    else:
        if not 0 <= switch_at <= count:
            msg = f"switch_at {switch_at} outside [0, count={count}]"
            raise ValueError(msg)
        after_seed = seed if new_seed is None else new_seed
        after = generator if new_family is None else FAMILIES[new_family]
        if after is generator and after_seed == seed:
            msg = "a switch needs a new seed or a new family (both equal the first stream's)"
            raise ValueError(msg)
        head = draw_values(generator, seed, switch_at, skip, mod)
        values = head + draw_values(after, after_seed, count - switch_at, skip, mod)
    return [
        HistoryRecord(draw_id=f"{prefix}-{i:06d}", timestamp=start + i * every, value=v)
        for i, v in enumerate(values)
    ]


def main(argv: Sequence[str] | None = None) -> int:
    """Write a synthetic history file; return the exit code."""
    p = argparse.ArgumentParser(prog="python -m pipeline.synthetic", description=__doc__)
    p.add_argument("--family", choices=list(FAMILIES), default="lcg32")
    p.add_argument("--seed", type=int, required=True)
    p.add_argument("--count", type=int, default=200)
    p.add_argument("--skip", type=int, default=0)
    p.add_argument("--mod", type=int, default=1000)
    p.add_argument("--switch-at", type=int, default=None, help="index where the seed changes")
    p.add_argument("--new-seed", type=int, default=None, help="seed after the switch")
    p.add_argument(
        "--new-family", choices=list(FAMILIES), default=None, help="family after the switch"
    )
    p.add_argument("--out", type=Path, required=True)
    a = p.parse_args(argv)
    try:
        records = synthetic_records(
            a.family,
            a.seed,
            a.count,
            skip=a.skip,
            mod=a.mod,
            switch_at=a.switch_at,
            new_seed=a.new_seed,
            new_family=a.new_family,
        )
    except ValueError as exc:
        sys.stderr.write(f"pipeline.synthetic: error: {exc}\n")
        return 2
    if a.out.suffix == ".json":
        # A draw file the inbox takes as it is ({"draws": [...]}), written whole by a rename.
        draws = [json.loads(r.model_dump_json(exclude={"schema_version"})) for r in records]
        tmp = a.out.with_name(f".{a.out.name}.tmp")
        tmp.write_text(json.dumps({"draws": draws}) + "\n", encoding="utf-8")
        tmp.replace(a.out)
        return 0
    write_history(a.out, records)
    return 0


if __name__ == "__main__":
    sys.exit(main())
