"""Synthetic draw histories from a known seed, with an optional seed switch: the loop's test bed.

`python -m pipeline.synthetic --family lcg32 --seed 12345 --count 200 --out history.jsonl`
"""

from __future__ import annotations

import argparse
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
    start: datetime = EPOCH,
    every: timedelta = timedelta(hours=1),
    prefix: str = "syn",
) -> list[HistoryRecord]:
    """`count` draws of `seed`; from index `switch_at` on, a fresh stream of `new_seed`."""
    generator = FAMILIES[family]
    if switch_at is None or new_seed is None:
        values = draw_values(generator, seed, count, skip, mod)
    else:
        head = draw_values(generator, seed, switch_at, skip, mod)
        values = head + draw_values(generator, new_seed, count - switch_at, skip, mod)
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
    p.add_argument("--new-seed", type=int, default=None)
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
        )
    except ValueError as exc:
        sys.stderr.write(f"pipeline.synthetic: error: {exc}\n")
        return 2
    write_history(a.out, records)
    return 0


if __name__ == "__main__":
    sys.exit(main())
