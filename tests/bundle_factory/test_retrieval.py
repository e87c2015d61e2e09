"""Tier-2 retrieval's pure rules: the trend classification and which way is better."""

from __future__ import annotations

import pytest

from bundle_factory import EmptyRetriever, Retriever, TrendDirection
from bundle_factory.retrieval import classify_trend, higher_is_better


def test_the_empty_retriever_satisfies_the_protocol() -> None:
    """EmptyRetriever is a Retriever, and every source of it is empty."""
    retriever = EmptyRetriever()
    assert isinstance(retriever, Retriever)
    assert retriever.recent_outcomes(5) == ()
    assert retriever.trends(None, 5) == ()
    assert retriever.open_incidents() == ()


@pytest.mark.parametrize(
    ("values", "higher", "expected"),
    [
        ([0.5], True, TrendDirection.INSUFFICIENT),
        ([0.5, 0.9], True, TrendDirection.INSUFFICIENT),
        ([1.0, 1.0, 1.0, 1.0], True, TrendDirection.STABLE),
        ([1.0, 1.01, 0.995, 1.005], True, TrendDirection.STABLE),
        ([1.0, 1.1, 1.2, 1.3], True, TrendDirection.IMPROVING),
        ([1.0, 1.1, 1.2, 1.3], False, TrendDirection.DECLINING),
        ([1.3, 1.2, 1.1, 1.0], True, TrendDirection.DECLINING),
        ([1.3, 1.2, 1.1, 1.0], False, TrendDirection.IMPROVING),
        ([1.0, 1.5, 0.9, 1.6, 1.0, 1.4], True, TrendDirection.VOLATILE),
        ([1.0, 1.05, 0.98, 1.04, 1.0, 1.03], True, TrendDirection.STABLE),
        ([0.0, 0.0, 0.0], True, TrendDirection.STABLE),
    ],
)
def test_trend_rule(values: list[float], higher: bool, expected: TrendDirection) -> None:
    """The documented rule classifies each shape as expected."""
    assert classify_trend(values, higher)[0] is expected


def test_lower_is_better_names() -> None:
    """Error, loss and overfit metrics improve by falling."""
    assert not higher_is_better("overfit_ratio")
    assert not higher_is_better("validation_loss")
    assert not higher_is_better("calibration_error")
    assert higher_is_better("match_rate")
