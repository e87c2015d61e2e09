"""The self-test: build and render every bundle type from realistic sample results.

Used by `python -m bundle_factory --self-test` and `--show STEP`, and by the benchmark. The
state directory, the state files and a seeded store are made in a temporary directory; the
clock is fixed, so the prompt hashes are the same on every machine and every run.
"""

from __future__ import annotations

import hashlib
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from tempfile import TemporaryDirectory
from typing import TYPE_CHECKING, Any

from bundle_factory.catalog import BUNDLE_TYPES
from bundle_factory.errors import BundleError
from bundle_factory.factory import build_llm_context
from bundle_factory.render import SECTION_TITLES, header
from bundle_factory.tokenizer import EstimatorTokenizer, Tokenizer

if TYPE_CHECKING:
    import sqlite3
    from collections.abc import Iterator

    from bundle_factory.bundle import StepAwarenessBundle
    from bundle_factory.retrieval import Retriever

FIXED_NOW = datetime(2025, 1, 15, 12, 0, tzinfo=UTC)
"""The self-test's clock."""
SAMPLE_RUN_ID = "selftest-run-0001"

_SURVIVORS = [
    {"seed": 1_000_003 + 7919 * n, "score": round(0.91 - n * 0.013, 3)} for n in range(40)
]

SAMPLE_RESULTS: dict[int, dict[str, Any]] = {
    13: {
        "draws_scored": 25,
        "holdout_hits": 1,
        "match_rate": 0.008,
        "baseline_match_rate": 0.01,
        "confidence": 0.55,
        "calibration_error": 0.21,
        "draws_since_training": 180,
        "diagnostics": {"hit_rate_window_10": 0.0, "hit_rate_window_50": 0.02},
    },
    1: {
        "anchors": 64,
        "artifacts": ["artifacts/survivors.json"],
        "candidates": 4,
        "elapsed_s": 0.080563,
        "expected_false_positives": 2.6843532800000004e-16,
        "job": "sieve",
        "last_draw_id": "syn-000079",
        "n_draws": 80,
        "per_family": {
            "java_lcg": {"schema_version": 1, "seeds_tested": 1048576, "survivors": 0},
            "lcg32": {"schema_version": 1, "seeds_tested": 1048576, "survivors": 2},
            "minstd": {"schema_version": 1, "seeds_tested": 1048575, "survivors": 0},
            "xorshift32": {"schema_version": 1, "seeds_tested": 1048575, "survivors": 0},
        },
        "schema_version": 1,
        "seed": 0,
        "seeds_per_second": 53723240.5,
        "seeds_tested": 4194302,
        "step": 1,
        "survivors": 2,
        "threshold": 8,
        "top": [
            {
                "anchor": 0,
                "family": "lcg32",
                "matches": 8,
                "schema_version": 1,
                "seed": 4242,
                "skip": 0,
            },
            {
                "anchor": 42,
                "family": "lcg32",
                "matches": 8,
                "schema_version": 1,
                "seed": 166872,
                "skip": 0,
            },
        ],
        "truncated": False,
        "window": 8,
    },
    2: {
        "artifacts": ["artifacts/scorer_config.json"],
        "baseline_fitness": 1.0,
        "config": {
            "configs_evaluated": 33,
            "fitness": 1.0,
            "half_life": 32.0,
            "holdout": 20,
            "min_match_rate": 0.0,
            "recent_window": 20,
            "schema_version": 1,
        },
        "elapsed_s": 0.004532,
        "job": "scorer_meta",
        "last_draw_id": "syn-000079",
        "n_draws": 80,
        "schema_version": 1,
        "seed": 0,
        "step": 2,
    },
    3: {
        "artifacts": ["artifacts/survivors_with_scores.json"],
        "best_match_rate": 1.0,
        "best_score": 1.0,
        "dropped": 0,
        "elapsed_s": 0.002882,
        "job": "full_scoring",
        "last_draw_id": "syn-000079",
        "n_draws": 80,
        "schema_version": 1,
        "scored": 2,
        "seed": 0,
        "step": 3,
        "top": [
            {
                "hits": 80,
                "holdout_hits": 20,
                "holdout_positions": 20,
                "longest_run": 80,
                "match_rate": 1.0,
                "positions": 80,
                "recent_rate": 1.0,
                "schema_version": 1,
                "score": 1.0,
                "survivor": {
                    "anchor": 0,
                    "family": "lcg32",
                    "matches": 8,
                    "schema_version": 1,
                    "seed": 4242,
                    "skip": 0,
                },
                "weighted_rate": 1.0,
            },
            {
                "hits": 38,
                "holdout_hits": 20,
                "holdout_positions": 20,
                "longest_run": 38,
                "match_rate": 1.0,
                "positions": 38,
                "recent_rate": 1.0,
                "schema_version": 1,
                "score": 1.0,
                "survivor": {
                    "anchor": 42,
                    "family": "lcg32",
                    "matches": 8,
                    "schema_version": 1,
                    "seed": 166872,
                    "skip": 0,
                },
                "weighted_rate": 1.0,
            },
        ],
    },
    4: {
        "artifacts": ["artifacts/ml_config.json"],
        "config": {
            "configs_evaluated": 20,
            "fitness": 0.999,
            "holdout": 20,
            "method": "match_rate",
            "pool_size": 1,
            "schema_version": 1,
        },
        "elapsed_s": 0.002787,
        "job": "ml_meta",
        "last_draw_id": "syn-000079",
        "n_draws": 80,
        "schema_version": 1,
        "seed": 0,
        "step": 4,
    },
    5: {
        "artifacts": ["artifacts/model.json", "artifacts/model.meta.json"],
        "elapsed_s": 0.00453,
        "job": "train",
        "last_draw_id": "syn-000079",
        "method": "match_rate",
        "model_id": "model-cbab990c8c88eab6",
        "n_draws": 80,
        "overfit_ratio": 1.0,
        "pool_size": 1,
        "schema_version": 1,
        "seed": 0,
        "step": 5,
        "train_score": 1.0,
        "validation_score": 1.0,
    },
    6: {
        "artifacts": ["artifacts/prediction_pool.json"],
        "elapsed_s": 0.002536,
        "job": "predict",
        "last_draw_id": "syn-000079",
        "n_draws": 80,
        "pool": {
            "history_fingerprint": None,
            "k": 10,
            "last_draw_id": "syn-000079",
            "last_draw_timestamp": "2024-01-04T07:00:00Z",
            "mod": 1000,
            "model_id": "model-cbab990c8c88eab6",
            "n_draws": 80,
            "pool_id": "pool-dfd73ce826043864",
            "predictions": [{"confidence": 1.0, "schema_version": 1, "support": 1, "value": 19}],
            "schema_version": 1,
        },
        "schema_version": 1,
        "seed": 0,
        "step": 6,
    },
    99: {
        "archive_size": 50,
        "artifacts": [
            "artifacts/policy_candidate.json",
            "artifacts/policy_history.jsonl",
            "artifacts/selfplay_telemetry.json",
        ],
        "best": {
            "episode": 8,
            "fingerprint": "sha256:845148cfce127035d731c6fcdecff24f"
            "d8dcd096f1ef592d084f0a7738952f48",
            "fitness": 0.999,
            "history_fingerprint": None,
            "metrics": {
                "chance_rate": 0.001,
                "eligible": 2.0,
                "holdout_hit_rate": 1.0,
                "pool_members": 1.0,
                "train_hit_rate": 1.0,
            },
            "parameters": {
                "half_life": 32.0,
                "history_window": 0,
                "min_match_rate": 0.0,
                "pool_size": 1,
                "recent_window": 20,
                "schema_version": 1,
            },
            "parent_policy_id": "pol-8e0cb6c7f8b3dfa6",
            "policy_id": "pol-845148cfce127035",
            "schema_version": 1,
            "seed": 0,
            "transforms": ["half_life: 16.0 -> 32.0", "pool_size: 2 -> 1"],
        },
        "elapsed_s": 0.017667,
        "episodes": 50,
        "job": "selfplay",
        "last_draw_id": "syn-000079",
        "n_draws": 80,
        "schema_version": 1,
        "seed": 0,
        "step": None,
        "telemetry": {
            "best_fitness": 0.999,
            "best_policy_id": "pol-845148cfce127035",
            "elapsed_s": 0.015439,
            "episodes": 50,
            "mean_fitness": 0.9978,
            "schema_version": 1,
            "status": "healthy",
            "survivors_considered": 2,
            "warnings": [],
        },
    },
}
"""Results per bundle type: steps 1-6 and 99 as the reference pipeline reports them."""

SAMPLE_STATE_FILES: dict[str, bytes] = {
    "survivors.json": b'{"survivors": 1284}\n',
    "models/current.json": b'{"model_version": "m-2025-01-14-01"}\n',
}
_MISSING_STATE_FILE = "predictions/pending.json"


def seed_store(conn: sqlite3.Connection) -> None:
    """Write sample outcomes, diagnostics and incidents into a migrated store.

    Written through the tables' owners, on the self-test's fixed dates, so the rows are the
    daemon's own shape.
    """
    # Imported here: the owners belong to the actors package, which the factory itself never
    # needs (and which imports the factory); only the self-test and the benchmark seed a store.
    from actors.trigger import ledger
    from actors.watcher import outcomes, steps

    with conn:
        conn.execute("BEGIN")
        for n in range(12):
            steps.record(
                conn,
                run_id=f"run-{n // 3:03d}",
                request_id=f"req-{n // 3:03d}",
                step_id=(3, 5, 6)[n % 3],
                attempt=1 + (n % 2),
                status="succeeded" if n % 4 else "failed",
                action="proceed" if n % 4 else "retry",
                confidence=0.6 + 0.02 * n,
                summary=f"sample step outcome {n}",
                correlation_id=f"corr-{n // 3:03d}",
                recorded_at=f"2025-01-{1 + n:02d}T08:00:00+00:00",
            )
        for n in range(4):
            outcomes.record(
                conn,
                request_id=f"req-{n:03d}",
                request_type="learning_loop",
                status="done" if n != 2 else "failed",
                correlation_id=f"corr-{n:03d}",
                reason="" if n != 2 else "step 5 escalated: overfit_ratio 1.42",
                detail={},
                finished_at=f"2025-01-{3 + 3 * n:02d}T09:00:00+00:00",
            )
        for metric, values in (
            ("match_rate", [0.02, 0.021, 0.023, 0.024, 0.026, 0.027, 0.029, 0.03]),
            ("overfit_ratio", [1.1, 1.3, 1.05, 1.4, 1.0, 1.35, 1.1, 1.45]),
            ("confidence", [0.7, 0.7, 0.701, 0.7, 0.699, 0.7, 0.7, 0.7]),
        ):
            for n, value in enumerate(values):
                ledger.insert_figure(
                    conn,
                    draw_id=f"d{n:04d}",
                    metric=metric,
                    value=value,
                    recorded_at=f"2025-01-{1 + n:02d}T10:00:00+00:00",
                )
        outcomes.open_incident(
            conn,
            incident_id="inc-1",
            opened_at="2025-01-09T09:00:00+00:00",
            severity="high",
            source="watcher",
            summary="request req-002 escalated at step 5 (overfit_ratio 1.42 > 1.3)",
            correlation_id="corr-002",
        )
        outcomes.open_incident(
            conn,
            incident_id="inc-0",
            opened_at="2025-01-02T09:00:00+00:00",
            severity="low",
            source="gpu",
            summary="lease returned late",
            correlation_id="corr-000",
        )
        outcomes.resolve_incidents(conn, "gpu", at="2025-01-03T09:00:00+00:00")


@dataclass(frozen=True)
class SampleEnv:
    """A temporary state directory with sample state files and a seeded store."""

    state_dir: Path
    retriever: Retriever
    state_paths: tuple[str, ...]


@contextmanager
def sample_env() -> Iterator[SampleEnv]:
    """Yield a `SampleEnv`; everything is removed on exit."""
    # Imported here: the store and its retriever belong to the actors package, which the
    # factory itself never needs; only the self-test and the benchmark seed a store.
    from actors.bundle.retrieval import SqliteRetriever
    from actors.store.schema import connect

    with TemporaryDirectory(prefix="bundle-selftest-") as tmp:
        state_dir = Path(tmp) / "state"
        for name, content in SAMPLE_STATE_FILES.items():
            path = state_dir / name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(content)
        conn = connect(Path(tmp) / "store.sqlite")
        try:
            seed_store(conn)
            paths = (*SAMPLE_STATE_FILES, _MISSING_STATE_FILE)
            yield SampleEnv(state_dir, SqliteRetriever(conn), paths)
        finally:
            conn.close()


@dataclass(frozen=True)
class SelfTestRow:
    """One bundle type's self-test result."""

    step_id: int
    step_name: str
    grammar: str
    tier0: int
    tier1: int
    tier2: int
    total: int
    sha256: str
    problems: tuple[str, ...]

    @property
    def passed(self) -> bool:
        """True when no check failed."""
        return not self.problems


def render_sample(
    env: SampleEnv, step_id: int, tokenizer: Tokenizer
) -> tuple[str, StepAwarenessBundle]:
    """Build and render the sample bundle of `step_id` in `env`: (prompt, bundle)."""
    prompt, _grammar, bundle = build_llm_context(
        step_id,
        SAMPLE_RESULTS[step_id],
        run_id=SAMPLE_RUN_ID,
        state_paths=env.state_paths,
        state_dir=env.state_dir,
        retriever=env.retriever,
        tokenizer=tokenizer,
        clock=lambda: FIXED_NOW,
    )
    return prompt, bundle


def check_type(env: SampleEnv, step_id: int, tokenizer: Tokenizer) -> SelfTestRow:
    """Build the sample of one type twice and check it; never raises for a bundle problem."""
    btype = BUNDLE_TYPES[step_id]
    problems: list[str] = []
    try:
        prompt, bundle = render_sample(env, step_id, tokenizer)
        again, _ = render_sample(env, step_id, tokenizer)
    except BundleError as exc:
        return SelfTestRow(
            step_id,
            btype.step_name,
            btype.grammar_name,
            0,
            0,
            0,
            0,
            "-",
            (f"{type(exc).__name__}: {exc}",),
        )
    usage = bundle.usage
    assert usage is not None  # build_llm_context always records the usage
    budgets = bundle.budgets
    if prompt != again:
        problems.append("two builds differ")
    if f"grammar: {btype.grammar_name}" not in prompt:
        problems.append("grammar name missing from the prompt")
    positions = [prompt.find(header(n)) for n in range(1, len(SECTION_TITLES) + 1)]
    if -1 in positions or positions != sorted(positions):
        problems.append("sections missing or out of order")
    if usage.total > budgets.prompt_limit:
        problems.append(f"total {usage.total} > limit {budgets.prompt_limit}")
    if usage.tier0 > budgets.tier0_reserved:
        problems.append(f"tier 0 {usage.tier0} > reserved {budgets.tier0_reserved}")
    if usage.tier1 > budgets.tier1_cap:
        problems.append(f"tier 1 {usage.tier1} > cap {budgets.tier1_cap}")
    if usage.history > budgets.history_cap or usage.telemetry > budgets.telemetry_cap:
        problems.append("tier 2 over its caps")
    if tokenizer.count(prompt) != usage.total:
        problems.append("recorded total differs from a recount")
    return SelfTestRow(
        step_id=step_id,
        step_name=btype.step_name,
        grammar=btype.grammar_name,
        tier0=usage.tier0,
        tier1=usage.tier1,
        tier2=usage.tier2,
        total=usage.total,
        sha256=hashlib.sha256(prompt.encode("utf-8")).hexdigest(),
        problems=tuple(problems),
    )


def run_self_test(tokenizer: Tokenizer | None = None) -> list[SelfTestRow]:
    """Check every bundle type, in step-id order."""
    counter = tokenizer if tokenizer is not None else EstimatorTokenizer()
    with sample_env() as env:
        return [check_type(env, step_id, counter) for step_id in sorted(BUNDLE_TYPES)]
