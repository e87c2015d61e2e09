"""The bundle types: one entry per pipeline step, Chapter 13 and selfplay evaluation.

This is the table a reviewer reads to know what the LLM is told for each decision: mission,
evaluation schema excerpt with success thresholds, grammar, guardrails, authority contracts and
which tier-2 sources apply. Thresholds are starting points in the units the reference pipeline
reports; the deterministic watcher rules, not the LLM, have the last word on every one of them.
"""

from __future__ import annotations

from types import MappingProxyType
from typing import TYPE_CHECKING

from bundle_factory.bundle import EvaluationSchema
from bundle_factory.errors import UnknownStepError
from messages.base import Model
from messages.decisions import MetricThreshold as T

if TYPE_CHECKING:
    from collections.abc import Mapping

CHAPTER_13_ID = 13
SELFPLAY_ID = 99

AUTHORITY_LINE = "Selfplay explores. Chapter 13 decides. WATCHER enforces. The LLM advises."

SYSTEM_MISSION = (
    "You are the advisory model of WATCHER, the autonomous control loop of a PRNG-analysis "
    "(functional mimicry) pipeline. You read one step's results and the recent history of the "
    "loop, and you answer with one structured verdict. Deterministic rules act on your answer; "
    "your answer never acts by itself."
)

# Hard constraints every bundle carries; each type adds its own below.
COMMON_GUARDRAILS: tuple[str, ...] = (
    "Answer with exactly one JSON object in the named grammar and nothing else.",
    "Judge only from the figures in this prompt; when a figure is missing, say so and lower "
    "your confidence.",
    "Never recommend proceed when a success threshold fails; recommend retry or escalate.",
    "A confidence of 0.70 or more lets WATCHER auto-proceed; below 0.50 it escalates to a person.",
)


class BundleType(Model):
    """What one kind of decision is told: mission, schema, grammar, guardrails, contracts."""

    step_id: int
    step_name: str
    """Snake-case name, used in logs and the self-test table."""
    mission: str
    evaluation_schema: EvaluationSchema
    grammar_name: str
    guardrails: tuple[str, ...]
    """Type-specific guardrails (the common ones are added by `all_guardrails`)."""
    authority_contracts: tuple[str, ...] = (AUTHORITY_LINE,)
    trend_metrics: tuple[str, ...] | None = None
    """Diagnostics whose trends are retrieved: None = every metric in the store, () = none."""
    include_history: bool = True
    """Whether recent step and request outcomes are retrieved."""

    @property
    def all_guardrails(self) -> tuple[str, ...]:
        """The common guardrails followed by this type's own."""
        return COMMON_GUARDRAILS + self.guardrails


def _schema(reports: str, *thresholds: T) -> EvaluationSchema:
    return EvaluationSchema(reports=reports, thresholds=thresholds)


_TYPES: tuple[BundleType, ...] = (
    BundleType(
        step_id=1,
        step_name="window_optimizer",
        mission=(
            "Step 1, window optimizer and sieve: searched PRNG seeds over candidate draw "
            "windows and kept the seeds whose output reproduces the observed draws. Judge "
            "whether the surviving seed set is large enough to learn from and small enough "
            "to be a real signal rather than noise."
        ),
        evaluation_schema=_schema(
            "survivors, seeds_tested, seeds_per_second, window, threshold, anchors, "
            "expected_false_positives, truncated, per_family, top (best survivors)",
            T(metric="survivors", min=1, max=10_000),
            T(metric="seeds_tested", min=1),
            T(metric="expected_false_positives", max=1.0),
        ),
        grammar_name="sieve_analysis",
        guardrails=(
            "Zero survivors is a failure of this window, not of the method: suggest a "
            "different window rather than a looser match threshold.",
            "More than 10,000 survivors means the sieve did not discriminate; never "
            "treat that as success.",
        ),
    ),
    BundleType(
        step_id=2,
        step_name="scorer_meta_optimizer",
        mission=(
            "Step 2, scorer meta-optimizer: tuned the survivor-scoring parameters by trials "
            "against held-out draws. Judge whether the best trial generalises and whether "
            "enough trials ran to trust it."
        ),
        evaluation_schema=_schema(
            "baseline_fitness, config (fitness, half_life, recent_window, min_match_rate, "
            "holdout, configs_evaluated)",
            T(metric="config.fitness", min=0.1),
            T(metric="config.configs_evaluated", min=1),
        ),
        grammar_name="agent_decision",
        guardrails=(
            "Suggested parameters must be scorer parameters named in the results; at most 8.",
            "A best trial found in the last 10 % of trials means the search has not settled: "
            "prefer retry with more trials over proceed.",
        ),
    ),
    BundleType(
        step_id=3,
        step_name="full_scoring",
        mission=(
            "Step 3, full scoring: scored every surviving seed with the tuned scorer and "
            "built the feature table for training. Judge whether the scoring covered the "
            "survivors and whether the scores separate signal from chance."
        ),
        evaluation_schema=_schema(
            "scored, dropped, best_score, best_match_rate, top (best scored survivors)",
            T(metric="scored", min=1),
            T(metric="best_match_rate", min=0.1),
        ),
        grammar_name="agent_decision",
        guardrails=(
            "Any failed chunk means the feature table is incomplete: never proceed on it.",
        ),
    ),
    BundleType(
        step_id=4,
        step_name="ml_meta_optimizer",
        mission=(
            "Step 4, ML meta-optimizer: searched model architecture and capacity for the "
            "training step. Judge whether the chosen configuration validates well without "
            "overfitting."
        ),
        evaluation_schema=_schema(
            "config (method, pool_size, fitness, holdout, configs_evaluated)",
            T(metric="config.fitness", min=0.1),
            T(metric="config.pool_size", min=1),
        ),
        grammar_name="agent_decision",
        guardrails=(
            "Step 4 runs only when it is listed in the request's explicit step list; never "
            "suggest adding it.",
        ),
    ),
    BundleType(
        step_id=5,
        step_name="anti_overfit_training",
        mission=(
            "Step 5, anti-overfit training: trained the model with k-fold validation and a "
            "held-out tail of draws. Judge whether the model generalises to the holdout."
        ),
        evaluation_schema=_schema(
            "model_id, method, pool_size, train_score, validation_score, "
            "overfit_ratio (train / validation)",
            T(metric="validation_score", min=0.1),
            T(metric="overfit_ratio", max=1.3),
            T(metric="pool_size", min=1),
        ),
        grammar_name="agent_decision",
        guardrails=(
            "An overfit_ratio above 1.3 means retry or escalate, never proceed, whatever "
            "the validation score.",
        ),
    ),
    BundleType(
        step_id=6,
        step_name="prediction_generator",
        mission=(
            "Step 6, prediction generator: produced the prediction pool that the next draws "
            "will be scored against. Judge whether the pool is well formed and its "
            "confidence is earned."
        ),
        evaluation_schema=_schema(
            "pool (k, predictions with confidences, model_id, last_draw_id, history_fingerprint)",
            T(metric="pool.k", min=1),
            T(metric="pool.n_draws", min=1),
        ),
        grammar_name="agent_decision",
        guardrails=(
            "A pool registered after a draw can never be scored against it: do not suggest "
            "back-dating predictions.",
        ),
    ),
    BundleType(
        step_id=CHAPTER_13_ID,
        step_name="chapter_13",
        mission=(
            "Chapter 13, live feedback: the current predictions were scored against new real "
            "draws and compared with the chance baseline. Propose whether to retrain, and "
            "which learning-loop scope (steps_3_5_6, steps_5_6 or step_6_only) would fix "
            "what the diagnostics show."
        ),
        evaluation_schema=_schema(
            "draws_scored, holdout_hits, match_rate, baseline_match_rate, confidence, "
            "calibration_error, draws_since_training",
            T(metric="draws_scored", min=1),
            T(metric="match_rate", min=0.01),
            T(metric="confidence", min=0.7, max=1.0),
        ),
        grammar_name="chapter_13",
        guardrails=(
            "You propose; the acceptance rules decide. Frozen parameters are never changed, "
            "and no parameter moves by more than the configured maximum relative delta.",
            "Do not propose reversing a change that is still inside its cooldown.",
        ),
        authority_contracts=(
            AUTHORITY_LINE,
            "Only Chapter 13 promotes a selfplay candidate, and only after shadow evaluation "
            "on real draws.",
        ),
    ),
    BundleType(
        step_id=SELFPLAY_ID,
        step_name="selfplay_evaluation",
        mission=(
            "Selfplay candidate evaluation: a policy candidate was explored on synthetic and "
            "historical episodes. Judge whether it is worth shadow evaluation by Chapter 13."
        ),
        evaluation_schema=_schema(
            "episodes, archive_size, best (policy_id, fitness, metrics, parameters, "
            "transforms, parent_policy_id), telemetry (best_fitness, mean_fitness, status)",
            T(metric="best.fitness", min=0.1),
            T(metric="episodes", min=1),
        ),
        grammar_name="agent_decision",
        guardrails=(
            "Selfplay results are exploratory: never recommend promotion; proceed only means "
            "'send to shadow evaluation'.",
        ),
        authority_contracts=(
            AUTHORITY_LINE,
            "Only Chapter 13 promotes a selfplay candidate, and only after shadow evaluation "
            "on real draws.",
        ),
        # Live ground-truth outcomes stay out of selfplay bundles: a candidate judged on the
        # real draws it will later be shadow-evaluated on would leak the test set.
        trend_metrics=(),
    ),
)

BUNDLE_TYPES: Mapping[int, BundleType] = MappingProxyType({t.step_id: t for t in _TYPES})
"""Every bundle type by step id (1-6, 13, 99), read-only."""


def bundle_type(step_id: int) -> BundleType:
    """Return the bundle type of `step_id`.

    Raises:
        UnknownStepError: no bundle type has that id; the message lists the known ids.
    """
    # bool is an int subclass: True would silently select step 1.
    if isinstance(step_id, int) and not isinstance(step_id, bool) and step_id in BUNDLE_TYPES:
        return BUNDLE_TYPES[step_id]
    known = ", ".join(str(k) for k in sorted(BUNDLE_TYPES))
    msg = f"unknown step id {step_id!r}; known bundle types: {known}"
    raise UnknownStepError(msg)
