"""Tier-2 retrieval: the loop's recent history, behind one small interface.

What is in: recent step and request outcomes, trends of the diagnostics the trigger actor
records, and open incidents. What is out, by design: raw decision logs and conversation history
(the LLM must judge the figures, not echo earlier answers), embeddings (no similarity search:
retrieval is by recency, so it is explainable and deterministic), and live ground-truth outcomes
in selfplay bundles (a candidate must not see the real draws it will be shadow-evaluated on).

A new source is added by extending `Retriever`; `build_llm_context` callers never change. The
store's implementation, `actors.bundle.retrieval.SqliteRetriever`, lives beside the BundleActor and
reads through the tables' owners: this package never touches the store.
"""

from __future__ import annotations

import statistics
from typing import TYPE_CHECKING, Protocol, runtime_checkable

from bundle_factory.records import Incident, OutcomeRecord, TrendDirection, TrendSummary

if TYPE_CHECKING:
    from collections.abc import Sequence

# Trend rule thresholds (see `classify_trend`).
MIN_TREND_VALUES = 3
"""Fewer values than this give `insufficient`: two points always lie on a line."""
STABLE_BAND = 0.02
"""A window whose range is within 2 % of its mean magnitude is stable."""
TREND_R2 = 0.5
"""A least-squares line explaining at least half the variance is a trend."""
VOLATILE_BAND = 0.10
"""Without a trend, a range above 10 % of the mean magnitude is volatile, else stable."""

LOWER_IS_BETTER: frozenset[str] = frozenset(
    {
        "overfit_ratio",
        "calibration_error",
        "brier_score",
        "loss",
        "failed_chunks",
        "draws_since_training",
        "runtime_s",
    }
)
"""Metrics where a falling value is an improvement (also any name ending in _error or _loss)."""

MAX_TREND_METRICS = 16
"""With `metrics=None`, the trends of at most this many metrics (alphabetical) are returned."""
MAX_OPEN_INCIDENTS = 100
"""At most this many open incidents are read (the renderer cuts further to its cap)."""


def higher_is_better(metric: str) -> bool:
    """False for the metrics in `LOWER_IS_BETTER` and names ending in `_error` or `_loss`."""
    return not (metric in LOWER_IS_BETTER or metric.endswith(("_error", "_loss")))


def classify_trend(
    values: Sequence[float], higher_better: bool = True
) -> tuple[TrendDirection, float]:
    """Return the direction of `values` (oldest first) and the least-squares slope per value.

    The rule, in order:

    1. fewer than 3 values: insufficient;
    2. range <= 2 % of the mean magnitude: stable;
    3. a least-squares line with R² >= 0.5: improving or declining, by the slope's sign and
       whether higher is better;
    4. otherwise range > 10 % of the mean magnitude: volatile; else stable.
    """
    n = len(values)
    if n < 2:
        return TrendDirection.INSUFFICIENT, 0.0
    xs = range(n)
    mean_x = (n - 1) / 2
    mean_y = statistics.fmean(values)
    sxx = sum((x - mean_x) ** 2 for x in xs)
    sxy = sum((x - mean_x) * (y - mean_y) for x, y in zip(xs, values, strict=True))
    slope = sxy / sxx
    if n < MIN_TREND_VALUES:
        return TrendDirection.INSUFFICIENT, slope
    spread = max(values) - min(values)
    magnitude = statistics.fmean(abs(v) for v in values)
    if spread <= STABLE_BAND * magnitude:
        return TrendDirection.STABLE, slope
    syy = sum((y - mean_y) ** 2 for y in values)
    r2 = (sxy * sxy) / (sxx * syy) if syy > 0 else 0.0
    if r2 >= TREND_R2:
        rising = slope > 0
        better = rising == higher_better
        return (TrendDirection.IMPROVING if better else TrendDirection.DECLINING), slope
    if spread > VOLATILE_BAND * magnitude:
        return TrendDirection.VOLATILE, slope
    return TrendDirection.STABLE, slope


def summarise_trend(metric: str, values: Sequence[float]) -> TrendSummary:
    """Build the `TrendSummary` of one metric's window of values (oldest first)."""
    better = higher_is_better(metric)
    direction, slope = classify_trend(values, better)
    return TrendSummary(
        metric=metric,
        direction=direction,
        values=tuple(values),
        slope=slope,
        higher_is_better=better,
    )


@runtime_checkable
class Retriever(Protocol):
    """Where tier 2 comes from. Every method returns records newest first (trends: by metric)."""

    def recent_outcomes(self, n: int) -> tuple[OutcomeRecord, ...]:
        """The last `n` step and request outcomes together, newest first."""
        ...

    def trends(self, metrics: Sequence[str] | None, window: int) -> tuple[TrendSummary, ...]:
        """The trend of each metric over its last `window` values; None means every metric."""
        ...

    def open_incidents(self) -> tuple[Incident, ...]:
        """Incidents not yet resolved, newest first."""
        ...


class EmptyRetriever:
    """The retriever used when there is no state store: every source is empty."""

    def recent_outcomes(self, n: int) -> tuple[OutcomeRecord, ...]:
        """No outcomes."""
        return ()

    def trends(self, metrics: Sequence[str] | None, window: int) -> tuple[TrendSummary, ...]:
        """No trends."""
        return ()

    def open_incidents(self) -> tuple[Incident, ...]:
        """No incidents."""
        return ()
