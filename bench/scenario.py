"""Scenario harness: the real system on the embedded defaults, fed draws as a user feeds them.

`run_scenario(spec, state_dir)` opens the in-process system (`open_system(Settings(state_dir=
...))`: no configuration file, no override, no model, so the heuristic advisor answers) with the
real reference pipeline jobs. It drops a bootstrap history of `history_len` draws into the
inbox, then one live draw per file, each after the previous one settled. Settling is
event-based: the file is renamed into the inbox, the ingestion actor is asked to `IngestInbox`,
then `system.wait_idle()` returns once no message is queued or handled anywhere (a running job
holds the watcher's `ask`, so jobs are included). No sleeps.

Everything in the `ScenarioResult` is read back from what the system recorded — the store
(`trigger_scores`) and the audit trail (`audit.jsonl`) — never from the harness's own view. The
only thing the harness contributes is the split of the audit trail into *segments*: the
records written while draw i was being settled belong to draw i.

Definitions (draw counts, the switch is live draw `stable_live`, the first of the new regime):

- detection delay: post-switch draws ingested up to and including the one whose segment holds
  the first `decision / change_alarm` record (1 = caught on the first new draw); a
  `change_alarm` before the switch is a false alarm.
- recovery delay: post-switch draws that were not hits before the first hit (0 = the first new
  draw was already hit); None when no post-switch draw hit. A pool can hit by chance
  (len(pool)/mod a draw), so `sustained_recovery_delay` is also given: the post-switch offset
  from which every later draw hit, when at least `SUSTAINED` draws did (else None).
- false alarms: detection events in the segments of the stable live draws (the bootstrap
  segment, before any model, is not counted), per 1,000 stable live draws.
- human actions: `decision / escalate` and `request / escalation` records (each waits for a
  person); `halted` is the kill-switch file being there at the end.
- GPU-job seconds: the sum of `duration_s` of the GPU dispatcher's `step / job_*` audit records
  (every registry job it ran, each timed by the dispatcher), in the segments from the switch
  draw up to the draw before the first post-switch hit (or to the end, with no recovery).
- pipeline runs: distinct `pipeline_rerun` requests claimed by the watcher (`request /
  claimed`); for unpredictable draws, those claimed before the first human action, and the jobs
  started after it.
"""

from __future__ import annotations

import argparse
import json
import os
import sqlite3
import tempfile
import time
from bisect import bisect_right
from contextlib import closing
from dataclasses import asdict, dataclass, field, fields
from datetime import timedelta
from pathlib import Path
from typing import Any, Literal

import anyio
import numpy as np

from actors.assembly import open_system
from actors.config import Settings
from actors.logconfig import configure_logging
from actors.services import INGESTION
from messages.ingestion import IngestInbox
from pipeline.prng import FAMILIES
from pipeline.synthetic import EPOCH, synthetic_records

MIN_HISTORY = 40
"""Shortest bootstrap history: what the reference pipeline's windows and holdout need."""
MAX_HISTORY = 2000
INGEST_TIMEOUT_S = 60.0
"""Bound on the ingestion actor's answer to IngestInbox (a file is parsed in milliseconds)."""

SUSTAINED = 3
"""Hits in a row, to the end of the run, that make a recovery sustained."""
SETTLE_TIMEOUT_S = 600.0
"""Bound on one file's settle: only a stuck loop reaches it (a full pipeline takes seconds)."""

Outcome = Literal["hit", "miss", "no_pool", "backfill", "synthetic", "missing"]
DetectionEvent = Literal["change_alarm", "decision"]


@dataclass(frozen=True)
class Switch:
    """What changes at the switch: a new seed and/or a new family (None: keep the old one)."""

    new_seed: int | None = None
    new_family: str | None = None


@dataclass(frozen=True)
class ScenarioSpec:
    """One scenario: a planted generator, a bootstrap, stable live draws, a switch, more draws.

    With `unpredictable`, draws are numpy `Generator(seed).integers(0, mod)` (no generator the
    sieve could find); family and skip are then unused and there is no switch.
    """

    family: str = "lcg32"
    seed: int = 4242
    skip: int = 0
    history_len: int = MIN_HISTORY
    stable_live: int = 30
    switch: Switch | None = None
    post_live: int = 0
    unpredictable: bool = False

    def __post_init__(self) -> None:
        problems = []
        if self.family not in FAMILIES:
            problems.append(f"family {self.family!r} is not one of {', '.join(FAMILIES)}")
        if not MIN_HISTORY <= self.history_len <= MAX_HISTORY:
            problems.append(
                f"history_len {self.history_len} outside [{MIN_HISTORY}, {MAX_HISTORY}]"
            )
        if self.stable_live < 0 or self.post_live < 0:
            problems.append("stable_live and post_live must be >= 0")
        if self.switch is None and self.post_live:
            problems.append("post_live draws need a switch (else count them in stable_live)")
        if self.switch is not None:
            if self.unpredictable:
                problems.append("unpredictable draws have no generator to switch")
            new_family = self.switch.new_family
            if new_family is not None and new_family not in FAMILIES:
                problems.append(f"switch.new_family {new_family!r} is not a known family")
            if (new_family or self.family) == self.family and self.switch.new_seed in {
                None,
                self.seed,
            }:
                problems.append("the switch changes neither the seed nor the family")
            if self.post_live < 1:
                problems.append("a switch needs post_live >= 1 draws after it")
        if problems:
            msg = f"bad scenario {self}: " + "; ".join(problems)
            raise ValueError(msg)

    @property
    def total(self) -> int:
        """Draws in all: bootstrap, stable live, post-switch live."""
        return self.history_len + self.stable_live + self.post_live

    @property
    def switch_index(self) -> int | None:
        """Draw index (0-based, over all draws) of the first draw of the new regime."""
        return None if self.switch is None else self.history_len + self.stable_live

    def label(self) -> str:
        """A short name for tables and failure messages."""
        if self.unpredictable:
            return f"unpredictable seed={self.seed} H={self.history_len} live={self.stable_live}"
        head = f"{self.family}/{self.seed} skip={self.skip} H={self.history_len}"
        if self.switch is None:
            return f"{head} stable {self.stable_live}"
        to = f"{self.switch.new_family or self.family}/{self.switch.new_seed or self.seed}"
        return f"{head} +{self.stable_live} -> {to} +{self.post_live}"


@dataclass(frozen=True)
class ScenarioResult:
    """What the system recorded for one scenario, measured as the module doc defines."""

    spec: ScenarioSpec
    outcomes: tuple[str, ...]
    """Per live draw: hit, miss, no_pool (or another unscored status, or `missing`)."""
    detection_event: DetectionEvent
    """Which audit record was taken as the change alarm (see the module doc)."""
    detection_delay: int | None
    recovery_delay: int | None
    sustained_recovery_delay: int | None
    false_alarms: int
    false_alarms_per_1000: float
    human_actions: int
    escalations: tuple[str, ...]
    """`entity/event` of each record that waited for a person, in order."""
    halted: bool
    gpu_seconds_to_recovery: float
    gpu_seconds_after_switch: float
    gpu_seconds_total: float
    pipeline_runs: int
    pipeline_runs_before_escalation: int | None
    """Unpredictable draws: pipeline runs claimed before the first human action (None: none)."""
    jobs_after_escalation: int | None
    """Unpredictable draws: GPU jobs started after the first human action."""
    jobs_after_escalation_at: tuple[int, ...] | None
    """...and the live offset of the draw each was started on."""
    gpu_seconds_after_escalation: float | None
    decisions: tuple[str, ...]
    """`live offset:event:rule` of every trigger decision record (offset < 0: bootstrap)."""
    wall_s: float
    dead_letters: int = 0
    """Messages no handler took, as the system's `stopped` record counts them."""
    notes: tuple[str, ...] = field(default=())

    @property
    def stable_outcomes(self) -> tuple[str, ...]:
        """Outcomes of the live draws before the switch."""
        return self.outcomes[: self.spec.stable_live]

    @property
    def post_outcomes(self) -> tuple[str, ...]:
        """Outcomes of the live draws from the switch on."""
        return self.outcomes[self.spec.stable_live :]

    @property
    def stable_hit_rate(self) -> float | None:
        """Hits among the stable live draws (None when there are none)."""
        stable = self.stable_outcomes
        return stable.count("hit") / len(stable) if stable else None

    def summary(self) -> dict[str, Any]:
        """A JSON-able summary (spec included) for results files and failure messages."""
        out = asdict(self)
        out["label"] = self.spec.label()
        out["stable_hit_rate"] = self.stable_hit_rate
        out["outcome_counts"] = {k: self.outcomes.count(k) for k in sorted(set(self.outcomes))}
        return out

    def explain(self) -> str:
        """A readable account for an assertion message."""
        s = self.summary()
        keep = (
            "label", "detection_event", "detection_delay", "recovery_delay",
            "sustained_recovery_delay", "false_alarms",
            "human_actions", "escalations", "halted", "pipeline_runs",
            "pipeline_runs_before_escalation", "jobs_after_escalation",
            "jobs_after_escalation_at", "gpu_seconds_after_switch", "dead_letters",
            "notes", "outcome_counts",
        )  # fmt: skip
        lines = [f"{k}={s[k]}" for k in keep]
        lines.append("outcomes=" + "".join(_GLYPH.get(o, "?") for o in self.outcomes))
        lines.append("decisions=" + ", ".join(self.decisions))
        return "\n".join(lines)


def result_from_summary(summary: dict[str, Any]) -> ScenarioResult:
    """A ScenarioResult back from its `summary()` (as saved in a runs file)."""
    names = {f.name for f in fields(ScenarioResult)}
    data = {k: v for k, v in summary.items() if k in names}
    spec = dict(data.pop("spec"))
    if spec.get("switch") is not None:
        spec["switch"] = Switch(**spec["switch"])
    data = {k: tuple(v) if isinstance(v, list) else v for k, v in data.items()}
    return ScenarioResult(spec=ScenarioSpec(**spec), **data)


_GLYPH = {"hit": "H", "miss": ".", "no_pool": "_"}


# -- draws ------------------------------------------------------------------------------------


def scenario_draws(spec: ScenarioSpec, mod: int) -> list[dict[str, Any]]:
    """Every draw of the scenario as the JSON objects a user's files hold."""
    if spec.unpredictable:
        values = np.random.default_rng(spec.seed).integers(0, mod, size=spec.total)
        return [
            {
                "draw_id": f"rnd-{i:06d}",
                "timestamp": (EPOCH + i * timedelta(hours=1)).isoformat(),
                "value": int(v),
            }
            for i, v in enumerate(values)
        ]
    switch = spec.switch
    records = synthetic_records(
        spec.family,
        spec.seed,
        spec.total,
        skip=spec.skip,
        mod=mod,
        switch_at=spec.switch_index,
        new_seed=None if switch is None else switch.new_seed,
        new_family=None if switch is None else switch.new_family,
    )
    return [json.loads(r.model_dump_json(exclude={"schema_version"})) for r in records]


def _drop(inbox: Path, name: str, draws: list[dict[str, Any]]) -> None:
    """Write beside the inbox, then rename in (the atomic drop users are told to do)."""
    tmp = inbox.parent / f".{name}.tmp"
    tmp.write_text(json.dumps({"draws": draws}), encoding="utf-8")
    os.replace(tmp, inbox / name)


# -- the run ----------------------------------------------------------------------------------


async def feed(
    spec: ScenarioSpec, state_dir: Path, settle_timeout_s: float = SETTLE_TIMEOUT_S
) -> tuple[list[int], list[str]]:
    """Run the system on the defaults and feed the scenario; return the audit-trail line count
    after each settle (index 0: the bootstrap file, i + 1: live draw i), and the files after
    whose settle a request was still claimed in the spool's `cur/` (a settle that missed work:
    none is expected).

    Raises:
        TimeoutError: a file did not settle within `settle_timeout_s` (names the file).
    """
    settings = Settings(state_dir=state_dir)
    draws = scenario_draws(spec, settings.ingestion.mod)
    marks: list[int] = []
    unsettled: list[str] = []
    async with open_system(settings) as system:
        cur = system.paths.spool_dir("cur")
        inbox = system.paths.inbox
        audit = system.paths.audit
        await system.wait_idle()
        files: list[tuple[str, list[dict[str, Any]]]] = [
            ("h-000000.json", draws[: spec.history_len])
        ]
        files += [(f"d-{i:06d}.json", [d]) for i, d in enumerate(draws) if i >= spec.history_len]
        for name, batch in files:
            await anyio.to_thread.run_sync(_drop, inbox, name, batch)
            with anyio.move_on_after(settle_timeout_s) as scope:
                await system.ref(INGESTION).ask(IngestInbox(), timeout=INGEST_TIMEOUT_S)
                await system.wait_idle()
            if scope.cancelled_caught:
                msg = f"{name} did not settle within {settle_timeout_s:g} s ({spec.label()})"
                raise TimeoutError(msg)
            marks.append(await anyio.to_thread.run_sync(_line_count, audit))
            if await anyio.to_thread.run_sync(lambda: any(cur.iterdir())):
                unsettled.append(name)
    return marks, unsettled


def _line_count(path: Path) -> int:
    with path.open("rb") as handle:
        return sum(1 for line in handle if line.strip())


def run_scenario(
    spec: ScenarioSpec,
    state_dir: Path,
    *,
    backend: Literal["asyncio", "trio"] = "asyncio",
    settle_timeout_s: float = SETTLE_TIMEOUT_S,
) -> ScenarioResult:
    """Run one scenario in `state_dir` (fresh, or absent) and measure what the system recorded.

    Runs its own event loop on `backend`; call it from synchronous code.

    Raises:
        ValueError: `state_dir` holds something already.
        TimeoutError: a file did not settle within `settle_timeout_s`.
    """
    _check_fresh(state_dir)
    started = time.perf_counter()
    marks, unsettled = anyio.run(feed, spec, state_dir, settle_timeout_s, backend=backend)
    return measure(spec, state_dir, marks, time.perf_counter() - started, unsettled)


async def run_scenario_async(
    spec: ScenarioSpec, state_dir: Path, *, settle_timeout_s: float = SETTLE_TIMEOUT_S
) -> ScenarioResult:
    """`run_scenario` inside a running event loop (asyncio or trio)."""
    _check_fresh(state_dir)
    started = time.perf_counter()
    marks, unsettled = await feed(spec, state_dir, settle_timeout_s)
    return measure(spec, state_dir, marks, time.perf_counter() - started, unsettled)


def _check_fresh(state_dir: Path) -> None:
    if state_dir.exists() and any(state_dir.iterdir()):
        msg = f"state_dir {state_dir} is not empty: a scenario starts from a fresh state"
        raise ValueError(msg)


# -- measuring --------------------------------------------------------------------------------


def _records(state_dir: Path) -> list[dict[str, Any]]:
    lines = (state_dir / "audit.jsonl").read_text(encoding="utf-8").splitlines()
    return [json.loads(line) for line in lines if line.strip()]


def _scores(state_dir: Path) -> dict[str, tuple[str, int | None]]:
    db = state_dir / "state.db"
    with closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True)) as conn:
        rows = conn.execute(
            "SELECT draw_id, status, hit FROM trigger_scores WHERE stream = 'real'"
        ).fetchall()
    return {str(d): (str(s), h) for d, s, h in rows}


def _outcome(score: tuple[str, int | None] | None) -> str:
    if score is None:
        return "missing"
    status, hit = score
    if status == "scored":
        return "hit" if hit else "miss"
    return status


def measure(
    spec: ScenarioSpec,
    state_dir: Path,
    marks: list[int],
    wall_s: float,
    unsettled: list[str] | None = None,
) -> ScenarioResult:
    """Read the store and the audit trail of a finished scenario (see the module doc)."""
    records = _records(state_dir)
    scores = _scores(state_dir)
    draws = scenario_draws(spec, Settings().ingestion.mod)
    live_ids = [d["draw_id"] for d in draws[spec.history_len :]]
    outcomes = tuple(_outcome(scores.get(i)) for i in live_ids)

    # segment[n]: live offset of the draw being settled when record n was written (-1: the
    # bootstrap file, system start included); records after the last mark (the shutdown)
    # belong to the last draw.
    last = len(marks) - 2
    segment = [min(bisect_right(marks, n) - 1, last) for n in range(len(records))]

    def where(kind: str) -> list[tuple[int, dict[str, Any]]]:
        entity, event = kind.split("/")
        return [
            (segment[n], r)
            for n, r in enumerate(records)
            if r["entity"] == entity and r["event"] == event
        ]

    alarms = where("decision/change_alarm")
    detection_event: DetectionEvent = "change_alarm"
    notes: list[str] = []
    if unsettled:
        notes.append(f"a request was still claimed after settling {', '.join(unsettled)}")
    stopped = [r for r in records if r["entity"] == "system" and r["event"] == "stopped"]
    dead_letters = int(stopped[-1]["detail"].get("dead_letters", 0)) if stopped else 0
    stable = spec.stable_live
    false_alarms = sum(1 for seg, _ in alarms if 0 <= seg < stable)
    detection_delay = recovery_delay = sustained = None
    if spec.switch is not None:
        after = [seg for seg, _ in alarms if seg >= stable]
        if after:
            detection_delay = after[0] - stable + 1
        post = outcomes[stable:]
        if "hit" in post:
            recovery_delay = post.index("hit")
        tail = len(post)
        while tail > 0 and post[tail - 1] == "hit":
            tail -= 1
        if len(post) - tail >= SUSTAINED:
            sustained = tail

    human = [
        (n, f"{r['entity']}/{r['event']}")
        for n, r in enumerate(records)
        if (r["entity"], r["event"]) in {("decision", "escalate"), ("request", "escalation")}
    ]
    halted = (state_dir / Settings().watcher.halt_file).exists()

    jobs = [
        (n, segment[n], float(r["detail"].get("duration_s") or 0.0))
        for n, r in enumerate(records)
        if r["actor"] == "gpu" and r["entity"] == "step" and r["event"].startswith("job_")
        and r["event"] != "job_started"
    ]  # fmt: skip
    gpu_total = sum(s for _, _, s in jobs)
    gpu_after = gpu_to_recovery = 0.0
    if spec.switch is not None:
        end = stable + (recovery_delay if recovery_delay is not None else spec.post_live) - 1
        gpu_after = sum(s for _, seg, s in jobs if seg >= stable)
        gpu_to_recovery = sum(s for _, seg, s in jobs if stable <= seg <= end)

    claimed: dict[str, int] = {}
    for n, r in enumerate(records):
        if (
            r["entity"] == "request"
            and r["event"] == "claimed"
            and r["detail"].get("request_type") == "pipeline_rerun"
        ):
            claimed.setdefault(r["entity_id"], n)
    before_escalation = jobs_after = None
    jobs_after_at: tuple[int, ...] | None = None
    gpu_after_escalation = None
    if spec.unpredictable and human:
        first = human[0][0]
        before_escalation = sum(1 for n in claimed.values() if n < first)
        started = [
            n
            for n, r in enumerate(records)
            if r["actor"] == "gpu" and r["event"] == "job_started" and n > first
        ]
        jobs_after = len(started)
        jobs_after_at = tuple(segment[n] for n in started)
        gpu_after_escalation = sum(s for n, _, s in jobs if n > first)

    decisions = tuple(
        f"{seg}:{r['event']}:{r['detail'].get('rule', '-')}"
        for seg, r in enumerate_records(records, segment, "decision")
        if r["actor"] == "trigger" and r["detail"].get("rule") != "refresh"
    )
    return ScenarioResult(
        spec=spec,
        outcomes=outcomes,
        detection_event=detection_event,
        detection_delay=detection_delay,
        recovery_delay=recovery_delay,
        sustained_recovery_delay=sustained,
        false_alarms=false_alarms,
        false_alarms_per_1000=1000.0 * false_alarms / stable if stable else 0.0,
        human_actions=len(human),
        escalations=tuple(kind for _, kind in human),
        halted=halted,
        gpu_seconds_to_recovery=round(gpu_to_recovery, 3),
        gpu_seconds_after_switch=round(gpu_after, 3),
        gpu_seconds_total=round(gpu_total, 3),
        pipeline_runs=len(claimed),
        pipeline_runs_before_escalation=before_escalation,
        jobs_after_escalation=jobs_after,
        jobs_after_escalation_at=jobs_after_at,
        gpu_seconds_after_escalation=gpu_after_escalation,
        decisions=decisions,
        wall_s=round(wall_s, 2),
        dead_letters=dead_letters,
        notes=tuple(notes),
    )


def enumerate_records(
    records: list[dict[str, Any]], segment: list[int], entity: str
) -> list[tuple[int, dict[str, Any]]]:
    """(segment, record) of every audit record of `entity`, in order."""
    return [(segment[n], r) for n, r in enumerate(records) if r["entity"] == entity]


# -- one scenario from the command line -------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    """`python -m bench.scenario ...`: run one scenario, print what the system recorded."""
    p = argparse.ArgumentParser(
        prog="python -m bench.scenario",
        description="Run one scenario on the embedded defaults and print its figures.",
    )
    p.add_argument("--family", choices=sorted(FAMILIES), default="lcg32")
    p.add_argument("--seed", type=int, default=4242)
    p.add_argument("--skip", type=int, default=0)
    p.add_argument("--history", type=int, default=MIN_HISTORY, help="bootstrap draws")
    p.add_argument("--stable", type=int, default=30, help="live draws before the switch")
    p.add_argument("--new-seed", type=int, default=None, help="switch to this seed")
    p.add_argument("--new-family", choices=sorted(FAMILIES), default=None)
    p.add_argument("--post", type=int, default=0, help="live draws after the switch")
    p.add_argument("--unpredictable", action="store_true", help="numpy draws, no generator")
    p.add_argument("--backend", choices=["asyncio", "trio"], default="asyncio")
    p.add_argument(
        "--state-dir",
        type=Path,
        default=None,
        help="keep the run here (fresh; default: a temp dir)",
    )
    p.add_argument("--json", action="store_true", help="print the full summary as JSON")
    a = p.parse_args(argv)
    switch = None
    if a.new_seed is not None or a.new_family is not None:
        switch = Switch(new_seed=a.new_seed, new_family=a.new_family)
    try:
        spec = ScenarioSpec(
            family=a.family,
            seed=a.seed,
            skip=a.skip,
            history_len=a.history,
            stable_live=a.stable,
            switch=switch,
            post_live=a.post,
            unpredictable=a.unpredictable,
        )
    except ValueError as exc:
        p.error(str(exc))
    configure_logging(None, "warning", console=False)
    with tempfile.TemporaryDirectory() as tmp:
        state = a.state_dir or Path(tmp) / "state"
        result = run_scenario(spec, state, backend=a.backend)
    print(json.dumps(result.summary(), indent=2, default=str) if a.json else result.explain())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
