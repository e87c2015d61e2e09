"""`/metrics`: the daemon in Prometheus' text format, computed at scrape time.

Nothing is counted twice: totals come from the store (draws, requests, leases) and from the
audit trail the feed has folded (alarms, escalations, job and LLM timings), live figures from
the kernel (mailbox depths, dead letters) and the heartbeat (GPU memory, where NVML exists).
So a restarted daemon reports the same totals it reported before it stopped. Each system has
its own `CollectorRegistry` (two systems in one test process never share a counter).
"""

from __future__ import annotations

import json
import sqlite3
from typing import TYPE_CHECKING, Any, TypeVar

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)

from actors.gpu import lease as lease_store
from actors.ingestion import filelog
from actors.ingestion.history import stream_counts
from actors.trigger import decision_store, ledger
from actors.watcher import outcomes as outcome_store
from actors.web.readmodel import connect_readonly

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Iterator

    from actors.paths import StatePaths
    from actors.web.feed import AuditFeed

T = TypeVar("T")

# Buckets in seconds: jobs run from a second (step 6) to hours (a full sieve on a big range).
JOB_BUCKETS = (0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600, 4 * 3600)
# LLM answers: the heuristic takes microseconds, the 270M model ~1-20 s on 2 cores.
LLM_BUCKETS = (0.001, 0.01, 0.1, 0.5, 1, 2.5, 5, 10, 30, 60, 120)


def _buckets(values: Iterable[float], bounds: tuple[float, ...]) -> tuple[list[Any], float]:
    """Cumulative (le, count) pairs and the sum, as HistogramMetricFamily wants them."""
    data = sorted(values)
    counts: list[Any] = []
    at = 0
    for bound in bounds:
        while at < len(data) and data[at] <= bound:
            at += 1
        counts.append((str(float(bound)), float(at)))
    counts.append(("+Inf", float(len(data))))
    return counts, float(sum(data))


def _histogram(
    name: str, doc: str, values: Iterable[float], bounds: tuple[float, ...]
) -> HistogramMetricFamily:
    family = HistogramMetricFamily(name, doc)
    counts, total = _buckets(values, bounds)
    family.add_metric([], counts, total)
    return family


class ConsoleCollector:
    """Reads the store, the feed and the kernel at each scrape."""

    def __init__(
        self,
        paths: StatePaths,
        feed: AuditFeed,
        snapshot: Callable[[], list[dict[str, object]]],
        dead_letters: Callable[[], int],
    ) -> None:
        self.paths = paths
        self.feed = feed
        self.snapshot = snapshot
        self.dead_letters = dead_letters

    def collect(self) -> Iterator[Metric]:
        """Every metric (prometheus_client calls this per scrape, in the scraping thread)."""
        yield from self._store()
        yield from self._audit()
        yield from self._kernel()
        yield from self._gpu()

    def _store(self) -> Iterator[Metric]:
        draws = CounterMetricFamily(
            "watcher_draws_ingested", "Draws appended to the history", labels=["stream"]
        )
        files = CounterMetricFamily(
            "watcher_inbox_files", "Inbox files handled, by outcome", labels=["outcome"]
        )
        scored = CounterMetricFamily(
            "watcher_draws_scored", "Draws Chapter 13 scored against a pool", labels=["result"]
        )
        requests = CounterMetricFamily(
            "watcher_requests",
            "Requests that reached a terminal state",
            labels=["request_type", "outcome"],
        )
        decisions = CounterMetricFamily(
            "watcher_decisions", "Chapter 13 decisions", labels=["rule", "outcome"]
        )
        gauges = {
            name: GaugeMetricFamily(f"watcher_{name}", doc)
            for name, doc in (
                ("hit_rate", "Rolling hit rate of the current predictions (Chapter 13 window)"),
                ("chance_rate", "Hit rate a random pool of the same size would have"),
                ("hit_rate_ci_low", "Lower end of the hit rate's interval"),
                ("hit_rate_ci_high", "Upper end of the hit rate's interval"),
                ("brier_score", "Rolling Brier score of the stated confidences"),
                ("calibration_error", "Rolling expected calibration error (ECE)"),
            )
        }
        pending = GaugeMetricFamily("watcher_pending_decisions", "Decisions awaiting a person")
        leases_out = GaugeMetricFamily("watcher_leases_out", "VRAM leases taken, not returned")
        lease_seconds: list[float] = []
        if self.paths.db.exists():
            conn = connect_readonly(self.paths.db)
            try:
                for stream, count in stream_counts(conn).items():  # the draws table's owner
                    draws.add_metric([stream], float(count))
                for outcome, count in (_q(filelog.outcome_counts, conn) or {}).items():
                    files.add_metric([str(outcome)], float(count))
                for hit, count in _q(ledger.score_counts, conn) or []:
                    scored.add_metric(["hit" if hit else "miss"], float(count))
                for rtype, status, count in _q(outcome_store.counts_by_type, conn) or []:
                    requests.add_metric([str(rtype), str(status)], float(count))
                for rule, outcome, count in _q(decision_store.decision_counts, conn) or []:
                    decisions.add_metric([str(rule), str(outcome).lower()], float(count))
                last = _q(ledger.latest_diagnostics_body, conn)
                if last is not None:
                    body = _loads(last)
                    for name, key in (
                        ("hit_rate", "hit_rate"),
                        ("chance_rate", "chance_rate"),
                        ("hit_rate_ci_low", "ci_low"),
                        ("hit_rate_ci_high", "ci_high"),
                        ("brier_score", "brier"),
                        ("calibration_error", "ece"),
                    ):
                        value = body.get(key)
                        if isinstance(value, int | float):
                            gauges[name].add_metric([], float(value))
                pending.add_metric([], float(_q(decision_store.pending_count, conn) or 0))
                leases_out.add_metric([], float(_q(lease_store.open_count, conn) or 0))
                lease_seconds = [
                    v for v in (_q(lease_store.returned_durations, conn) or []) if v is not None
                ]
            finally:
                conn.close()
        yield from (draws, files, scored, requests, decisions, pending, leases_out)
        yield from gauges.values()
        yield _histogram(
            "watcher_lease_duration_seconds",
            "How long VRAM leases were held",
            lease_seconds,
            JOB_BUCKETS,
        )

    def _audit(self) -> Iterator[Metric]:
        feed = self.feed
        events = CounterMetricFamily(
            "watcher_audit_events", "Audit records, by entity and event", labels=["entity", "event"]
        )
        for (entity, event), count in sorted(feed.counts.items()):
            events.add_metric([entity, event], float(count))
        yield events
        for name, doc, key in (
            (
                "watcher_change_alarms",
                "Chapter 13 change-detector alarms",
                ("decision", "change_alarm"),
            ),
            (
                "watcher_escalations",
                "Watcher escalations (parked or halted)",
                ("request", "escalation"),
            ),
            ("watcher_no_signal", "Retrains that did not beat chance", ("decision", "no_signal")),
            ("watcher_promotions", "Candidate policies promoted", ("promotion", "promoted")),
            ("watcher_rollbacks", "Policy rollbacks", ("promotion", "rolled_back")),
        ):
            family = CounterMetricFamily(name, doc)
            family.add_metric([], float(feed.counts.get(key, 0)))
            yield family
        quarantined = CounterMetricFamily(
            "watcher_draws_quarantined", "Inbox files quarantined (each with a reason file)"
        )
        quarantined.add_metric([], float(feed.counts.get(("draw", "quarantined"), 0)))
        yield quarantined
        by_job: dict[str, list[float]] = {}
        for job, seconds in feed.job_seconds:
            by_job.setdefault(job, []).append(seconds)
        jobs = HistogramMetricFamily(
            "watcher_job_duration_seconds", "Job run times, by job", labels=["job"]
        )
        for job, values in sorted(by_job.items()):
            counts, total = _buckets(values, JOB_BUCKETS)
            jobs.add_metric([job], counts, total)
        yield jobs
        yield _histogram(
            "watcher_llm_decision_seconds",
            "Time the advisor took per step decision",
            feed.llm_seconds,
            LLM_BUCKETS,
        )
        sources = CounterMetricFamily(
            "watcher_llm_decisions", "Step decisions, by who answered", labels=["source"]
        )
        fallbacks = CounterMetricFamily(
            "watcher_llm_fallbacks", "Step decisions not answered by the model (heuristic, none)"
        )
        for source, count in sorted(feed.llm_sources.items()):
            sources.add_metric([source], float(count))
        fallbacks.add_metric([], float(sum(c for s, c in feed.llm_sources.items() if s != "llm")))
        yield sources
        yield fallbacks
        bad = CounterMetricFamily("watcher_audit_bad_lines", "Audit lines that were not JSON")
        bad.add_metric([], float(feed.bad_lines))
        yield bad

    def _kernel(self) -> Iterator[Metric]:
        depth = GaugeMetricFamily(
            "watcher_mailbox_depth", "Messages queued per actor", labels=["actor"]
        )
        restarts = CounterMetricFamily(
            "watcher_actor_restarts", "Supervisor restarts per actor", labels=["actor"]
        )
        up = GaugeMetricFamily("watcher_actor_up", "1 while the actor runs", labels=["actor"])
        for cell in self.snapshot():
            name = str(cell.get("name"))
            depth.add_metric([name], float(_num(cell.get("queued"))))
            restarts.add_metric([name], float(_num(cell.get("restarts"))))
            up.add_metric([name], 1.0 if cell.get("alive") else 0.0)
        dead = CounterMetricFamily("watcher_dead_letters", "Messages no actor could take")
        dead.add_metric([], float(self.dead_letters()))
        yield from (depth, restarts, up, dead)

    def _gpu(self) -> Iterator[Metric]:
        free = GaugeMetricFamily(
            "watcher_gpu_memory_free_bytes", "Free GPU memory (NVML)", labels=["gpu"]
        )
        total = GaugeMetricFamily(
            "watcher_gpu_memory_total_bytes", "GPU memory (NVML)", labels=["gpu"]
        )
        try:
            beat = json.loads((self.paths.root / "status.json").read_text(encoding="utf-8"))
        except (OSError, ValueError):
            beat = {}
        gpu = beat.get("gpu") if isinstance(beat, dict) else None
        for entry in (gpu or {}).get("gpus", []) if isinstance(gpu, dict) else []:
            index = str(entry.get("index"))
            free.add_metric([index], float(_num(entry.get("free_mb"))) * 2**20)
            total.add_metric([index], float(_num(entry.get("total_mb"))) * 2**20)
        yield from (free, total)


def _q(read: Callable[[sqlite3.Connection], T], conn: sqlite3.Connection) -> T | None:
    """`read(conn)` (a table owner's function), or None when its table is missing."""
    try:
        return read(conn)
    except sqlite3.OperationalError:
        return None


def _loads(text: Any) -> dict[str, Any]:
    try:
        data = json.loads(text)
    except (TypeError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _num(value: object) -> float:
    return float(value) if isinstance(value, int | float) else 0.0


def new_registry(collector: ConsoleCollector) -> CollectorRegistry:
    """A registry of its own holding the console's collector."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(collector)
    return registry


def render(registry: CollectorRegistry) -> bytes:
    """The text exposition (blocking: it reads the store; run it in a worker thread)."""
    return generate_latest(registry)
