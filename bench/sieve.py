"""Sieve throughput: seeds/s per PRNG family, numpy against a pure-Python loop over the same seeds.

Also the peak traced memory of a 2^24 seed range at the default chunk size, which stays flat
whatever the range (issue 6: memory bounded by chunk size). Run: `python -m bench.sieve [--quick]`.
"""

from __future__ import annotations

import time
import tracemalloc

import numpy as np

from bench.common import parser, print_table, write_results
from pipeline.array_module import NUMPY
from pipeline.params import SieveParams
from pipeline.prng import FAMILIES, draw_values
from pipeline.seed_search import ChunkSieve, choose_anchors, make_window, sieve_scalar

_WINDOW = 8
_MOD = 1000
_CHUNK = SieveParams().chunk_size


def _window(family: str, history_len: int, max_anchors: int):  # type: ignore[no-untyped-def]
    """A window over draws of a planted seed (seed 12345, skip 0)."""
    values = np.asarray(draw_values(FAMILIES[family], 12345, history_len, 0, _MOD), dtype=np.int64)
    anchors = choose_anchors(history_len, _WINDOW, max_anchors)
    return make_window(values, anchors, _WINDOW, _MOD, _WINDOW)


def _numpy_rate(  # type: ignore[no-untyped-def]
    family: str, window, start: int, stop: int, repeats: int = 1, chunk: int = _CHUNK
) -> tuple[float, list[tuple[int, int, int]]]:
    """Best seeds/s of ChunkSieve over [start, stop) in chunks, and what it found."""
    sieve = ChunkSieve(FAMILIES[family], 0, window, NUMPY)
    best = float("inf")
    for _ in range(repeats):
        found: list[tuple[int, int, int]] = []
        t0 = time.perf_counter()
        for lo in range(start, stop, chunk):
            got = sieve.run(lo, min(stop, lo + chunk))
            found += zip(
                got.seeds.tolist(), got.anchors.tolist(), got.matches.tolist(), strict=True
            )
        best = min(best, time.perf_counter() - t0)
    return (stop - start) / best, sorted(found)


def _python_rate(  # type: ignore[no-untyped-def]
    family: str, window, start: int, stop: int, repeats: int
) -> tuple[float, list[tuple[int, int, int]]]:
    """Best seeds/s of the pure-Python reference loop over the same seeds."""
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        found = sieve_scalar(FAMILIES[family], 0, window, start, stop)
        best = min(best, time.perf_counter() - t0)
    return (stop - start) / best, sorted(found)


def _peak_bytes(family: str, window, seeds: int, chunk: int) -> int:  # type: ignore[no-untyped-def]
    """Peak traced memory (numpy buffers included) of sieving `seeds` seeds in `chunk` chunks."""
    start = FAMILIES[family].seed_min
    tracemalloc.start()
    try:
        _numpy_rate(family, window, start, start + seeds, chunk=chunk)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return peak


def main() -> None:
    """Measure, print the table, write bench/results/sieve.json."""
    args = parser("sieve", __doc__ or "").parse_args()
    seeds = 1 << (15 if args.quick else 20)
    big = 1 << 24
    rows: list[list[object]] = []
    figures: dict[str, object] = {
        "window": _WINDOW,
        "mod": _MOD,
        "chunk_size": _CHUNK,
        "seeds_compared": seeds,
    }
    for anchors in (1, 64):
        history_len = _WINDOW + anchors - 1
        for family in FAMILIES:
            window = _window(family, history_len, anchors)
            start = FAMILIES[family].seed_min
            np_rate, np_found = _numpy_rate(family, window, start, start + seeds, repeats=5)
            py_rate, py_found = _python_rate(family, window, start, start + seeds, repeats=3)
            if np_found != py_found:
                msg = f"{family}: numpy and Python found different survivors"
                raise SystemExit(msg)
            ratio = np_rate / py_rate
            figures[f"{family}/anchors={anchors}"] = {
                "numpy_seeds_per_s": round(np_rate),
                "python_seeds_per_s": round(py_rate),
                "ratio": round(ratio, 1),
            }
            rows.append([family, anchors, f"{np_rate:,.0f}", f"{py_rate:,.0f}", f"{ratio:,.0f}x"])
    print_table(["family", "anchors", "numpy seeds/s", "python seeds/s", "ratio"], rows)
    print()
    mem_rows: list[list[object]] = []
    for family in ["java_lcg"] if args.quick else list(FAMILIES):
        for chunk in (_CHUNK, 1 << 18):
            peak = _peak_bytes(family, _window(family, _WINDOW + 63, 64), big, chunk)
            figures[f"{family}/peak_bytes_2^24/chunk={chunk}"] = peak
            mem_rows.append([family, "2^24", chunk, f"{peak / 2**20:.2f} MiB"])
    print_table(["family", "range", "chunk", "peak traced memory"], mem_rows)
    path = write_results("sieve", figures, args.out)
    print(f"\nwritten to {path}")


if __name__ == "__main__":
    main()
