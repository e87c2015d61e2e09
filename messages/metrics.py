"""Decision metrics read from a job's result: top-level numbers and one level of nesting.

A step's success thresholds name metrics such as `survivors` or `best.fitness` (a dotted name
reaches into a nested object of the result). The bundle factory checks thresholds with
`metric_value`, and the watcher hands `flat_metrics` to the heuristic advisor — one reading,
so the two can never disagree about what a result says.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

Scalar = str | int | float | bool


def metric_value(results: Mapping[str, Any], name: str) -> float | None:
    """The finite number at `name` (dotted for one nested level), else None (missing)."""
    head, _, rest = name.partition(".")
    raw = results.get(head)
    if rest:
        raw = raw.get(rest) if isinstance(raw, Mapping) else None
    if isinstance(raw, int | float) and not isinstance(raw, bool) and math.isfinite(raw):
        return float(raw)
    return None


def flat_metrics(results: Mapping[str, Any] | None) -> dict[str, Scalar]:
    """Every scalar at the top level and one level down (as `outer.inner`)."""
    out: dict[str, Scalar] = {}
    for key, value in (results or {}).items():
        if isinstance(value, str | int | float | bool):
            out[key] = value
        elif isinstance(value, Mapping):
            for inner, item in value.items():
                if isinstance(item, str | int | float | bool):
                    out[f"{key}.{inner}"] = item
    return out
