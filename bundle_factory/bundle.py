"""The object model of a bundle: what the LLM is told, tier by tier, and where it came from.

Everything here is deeply immutable: models are frozen, sequences are tuples and payloads are
`FrozenDict`s, so a bundle that has been rendered, sent and audited can never drift from the
prompt it produced. `model_dump(mode="json")` gives plain JSON; `model_validate` takes it back.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from pydantic import Field

from bundle_factory.budget import TokenBudget
from bundle_factory.frozen import FrozenDict, FrozenMapping
from bundle_factory.provenance import ProvenanceRecord
from bundle_factory.records import Incident, OutcomeRecord, TrendSummary
from messages.base import Model
from messages.decisions import MetricThreshold

BUNDLE_VERSION = 1
"""Bumped when the rendered layout or the meaning of a field changes."""


class EvaluationSchema(Model):
    """An excerpt of a step's result schema: what it reports and what counts as success."""

    reports: str
    """One line naming the keys the step's results carry."""
    thresholds: tuple[MetricThreshold, ...]
    """Success thresholds, checked against the results' top-level numeric values."""


class CheckStatus(StrEnum):
    """The verdict of one threshold on the current results."""

    PASS = "pass"
    FAIL = "fail"
    MISSING = "missing"
    """The metric is absent from the results or is not a number."""


class MetricCheck(Model):
    """One success threshold applied to the current results."""

    threshold: MetricThreshold
    value: float | None
    status: CheckStatus


class BundleContext(Model):
    """The three tiers of context: fixed instructions, the step's results, the loop's history."""

    # Tier 0: never truncated.
    system_mission: str
    mission: str
    """The step's mission."""
    evaluation_schema: EvaluationSchema
    grammar_name: str
    """The GBNF grammar the answer must follow."""
    guardrails: tuple[str, ...]
    authority_contracts: tuple[str, ...]
    # Tier 1: the step's own results.
    evaluation_summary: tuple[MetricCheck, ...]
    """Each success threshold checked against the results."""
    inputs_summary: FrozenMapping = Field(default_factory=FrozenDict)
    """The step's results, deeply frozen (rendered as compact, key-sorted JSON)."""
    # Tier 2: retrieval from the state store.
    recent_outcomes: tuple[OutcomeRecord, ...] = ()
    """Newest first."""
    trend_summary: tuple[TrendSummary, ...] = ()
    open_incidents: tuple[Incident, ...] = ()
    """Newest first."""


class TokenUsage(Model):
    """How many tokens each tier of the rendered prompt used, and what was cut."""

    tokenizer: str
    """Name of the tokenizer that counted (the model's own, or the estimator)."""
    tier0: int
    tier1: int
    history: int
    telemetry: int
    total: int
    """Tokens of the whole prompt, counted as one text."""
    cuts: tuple[str, ...] = ()
    """One line per section that was summarised or truncated, saying how much."""

    @property
    def tier2(self) -> int:
        """History plus telemetry."""
        return self.history + self.telemetry


class StepAwarenessBundle(Model):
    """Everything the LLM is told about one step, and where each part came from."""

    bundle_version: int = BUNDLE_VERSION
    step_id: int
    step_name: str
    run_id: str
    is_chapter_13: bool
    context: BundleContext
    budgets: TokenBudget
    provenance: tuple[ProvenanceRecord, ...]
    """One record per state file, sorted by path."""
    generated_at: datetime
    """From the injected clock, so a rebuild with the same clock is byte-identical."""
    usage: TokenUsage | None = None
    """Filled in by rendering; None on a bundle that has not been rendered yet."""
