"""The scenario harness measures what it says: its figures from a recorded store and audit trail.

`measure` is fed a hand-written audit trail and `trigger_scores` table (the system's own
schemas) so each definition in bench/scenario.py is checked against a known answer; the real
system runs in tests/e2e/test_recovery.py.
"""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
from contextlib import closing
from pathlib import Path
from typing import Any

import pytest

from actors.audit import AuditRecord
from actors.config import Settings
from bench.scenario import ScenarioSpec, Switch, measure, result_from_summary, scenario_draws

MOD = Settings().ingestion.mod


def write_state(
    state: Path, spec: ScenarioSpec, outcomes: str, segments: list[list[dict[str, Any]]]
) -> list[int]:
    """A state dir: scores of the live draws (H hit, . miss, _ no pool), and an audit trail
    whose segments[k] are the records of file k (0: bootstrap); returns the marks."""
    state.mkdir()
    ids = [d["draw_id"] for d in scenario_draws(spec, MOD)][spec.history_len :]
    with closing(sqlite3.connect(state / "state.db")) as conn:
        conn.execute(
            "CREATE TABLE trigger_scores (stream TEXT, draw_id TEXT, status TEXT, pool_id TEXT,"
            " hit INTEGER, body TEXT, scored_at TEXT)"
        )
        for draw_id, glyph in zip(ids, outcomes, strict=True):
            status = "no_pool" if glyph == "_" else "scored"
            hit = None if glyph == "_" else int(glyph == "H")
            conn.execute(
                "INSERT INTO trigger_scores VALUES ('real', ?, ?, NULL, ?, '{}', '')",
                (draw_id, status, hit),
            )
        conn.commit()
    marks: list[int] = []
    lines: list[str] = []
    for records in segments:
        lines.extend(AuditRecord(correlation_id="c", **r).model_dump_json() for r in records)
        marks.append(len(lines))
    (state / "audit.jsonl").write_text("".join(line + "\n" for line in lines))
    return marks


def rec(entity: str, event: str, actor: str = "trigger", **detail: Any) -> dict[str, Any]:
    """One audit record's fields."""
    return {"entity": entity, "entity_id": "e", "event": event, "actor": actor, "detail": detail}


def job(seconds: float, event: str = "job_completed") -> dict[str, Any]:
    """A GPU dispatcher's job record."""
    return rec("step", event, actor="gpu", duration_s=seconds, job="predict")


SPEC = ScenarioSpec(
    history_len=40, stable_live=4, switch=Switch(new_seed=777), post_live=6, family="lcg32"
)


def test_switch_figures_come_from_the_records(tmp_path: Path) -> None:
    """Detection counts the draws up to the alarm's, recovery the non-hits before the first
    hit, sustained recovery the start of the final run of hits; GPU seconds sum the jobs
    from the switch to the draw before the recovery; false alarms are stable-draw alarms."""
    segments = [
        [rec("decision", "accept", rule="n_draws"), job(3.0)],  # bootstrap
        [job(0.5)],
        [rec("decision", "change_alarm", rule="cusum")],  # stable draw 1: a false alarm
        [],
        [job(0.25)],
        [job(1.0)],  # switch draw (post 0): missed
        [rec("decision", "change_alarm", rule="cusum"), job(2.0), job(9.0, "job_started")],
        [job(0.5)],  # post 2: hit (by chance), post 3 missed, then hits to the end
        [job(4.0)],
        [job(0.1)],
        [job(0.1)],
    ]
    marks = write_state(tmp_path / "s", SPEC, "HHHH" + ".." + "H" + "." + "HH", segments)
    result = measure(SPEC, tmp_path / "s", marks, 1.0)
    assert result.outcomes == ("hit",) * 4 + ("miss", "miss", "hit", "miss", "hit", "hit")
    assert result.detection_event == "change_alarm"
    assert result.detection_delay == 2
    assert result.recovery_delay == 2
    assert result.sustained_recovery_delay is None  # only 2 hits at the end (< SUSTAINED)
    assert result.false_alarms == 1
    assert result.false_alarms_per_1000 == 250.0
    assert result.gpu_seconds_to_recovery == 3.0  # post 0 and post 1, started records aside
    assert result.gpu_seconds_after_switch == pytest.approx(7.7)
    assert result.gpu_seconds_total == pytest.approx(11.45)
    assert result.human_actions == 0
    assert result.stable_hit_rate == 1.0
    assert result.decisions[:2] == ("-1:accept:n_draws", "1:change_alarm:cusum")


def test_only_change_alarms_count_as_detection(tmp_path: Path) -> None:
    """Other trigger decisions (a refresh, a retrain, a skipped rule) are never a detection:
    without a change_alarm record there is none. Dead letters and a settle that left a request
    claimed are reported."""
    segments = [[], [], [rec("decision", "accept", rule="refresh")], [], [], [],
                [rec("decision", "skipped", rule="n_draws")], [], [], [],
                [rec("system", "stopped", actor="system", dead_letters=2)]]  # fmt: skip
    marks = write_state(tmp_path / "s", SPEC, "HHHH......", segments)
    result = measure(SPEC, tmp_path / "s", marks, 1.0, ["d-000041.json"])
    assert result.detection_event == "change_alarm"
    assert result.detection_delay is None
    assert result.false_alarms == 0
    assert result.recovery_delay is None
    assert result.dead_letters == 2
    assert any("d-000041.json" in n for n in result.notes)


def test_people_and_unpredictable_figures(tmp_path: Path) -> None:
    """Escalations of both kinds count as human actions; on unpredictable draws, the pipeline
    runs claimed before the first one and the jobs started after it are counted."""
    spec = ScenarioSpec(seed=3, history_len=40, stable_live=3, unpredictable=True)
    claimed = rec("request", "claimed", actor="watcher", request_type="pipeline_rerun")
    segments = [
        [claimed, job(1.0, "job_started"), job(1.0), rec("request", "escalation", "watcher")],
        [rec("decision", "escalate", rule="no_signal")],
        [job(0.0, "job_started"), job(2.5)],
        [],
    ]
    (tmp_path / "s").mkdir()
    marks = write_state(tmp_path / "s" / "x", spec, "___", segments)
    (tmp_path / "s" / "x" / Settings().watcher.halt_file).write_text(json.dumps({}))
    result = measure(spec, tmp_path / "s" / "x", marks, 1.0)
    assert result.human_actions == 2
    assert result.escalations == ("request/escalation", "decision/escalate")
    assert result.halted
    assert result.pipeline_runs == 1
    assert result.pipeline_runs_before_escalation == 1
    assert result.jobs_after_escalation == 1
    assert result.jobs_after_escalation_at == (1,)
    assert result.gpu_seconds_after_escalation == 2.5
    assert result.outcomes == ("no_pool",) * 3


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"history_len": 39}, r"history_len 39 outside \[40, 2000\]"),
        ({"switch": Switch(new_seed=4242)}, "changes neither"),
        ({"switch": Switch(new_family="pcg")}, "not a known family"),
        ({"post_live": 3}, "need a switch"),
        ({"switch": Switch(new_seed=1), "post_live": 0}, "post_live >= 1"),
        ({"unpredictable": True, "switch": Switch(new_seed=1), "post_live": 2}, "no generator"),
    ],
)
def test_bad_scenario_is_refused(kwargs: dict[str, Any], match: str) -> None:
    """A scenario the harness cannot run raises ValueError naming the field and the rule."""
    with pytest.raises(ValueError, match=match):
        ScenarioSpec(**kwargs)


def test_unpredictable_draws_are_reproducible_and_below_mod() -> None:
    """Unpredictable draws come from numpy's Generator(seed): same seed, same draws, < mod."""
    spec = ScenarioSpec(seed=11, history_len=40, stable_live=5, unpredictable=True)
    first, again = scenario_draws(spec, MOD), scenario_draws(spec, MOD)
    assert first == again
    assert len(first) == 45
    assert all(0 <= d["value"] < MOD for d in first)
    other = scenario_draws(ScenarioSpec(seed=12, history_len=40, stable_live=5,
                                        unpredictable=True), MOD)  # fmt: skip
    assert [d["value"] for d in other] != [d["value"] for d in first]


def test_command_runs_one_scenario_and_refuses_a_bad_one(tmp_path: Path) -> None:
    """`python -m bench.scenario` runs one scenario on the defaults and prints its figures as
    JSON (the state dir kept where asked); a switch that changes nothing exits 2, naming it."""
    root = Path(__file__).resolve().parents[2]
    state = tmp_path / "state"
    argv = [sys.executable, "-m", "bench.scenario", "--stable", "3"]
    ran = subprocess.run([*argv, "--json", "--state-dir", str(state)], cwd=root,
                         capture_output=True, text=True, timeout=300, check=False)  # fmt: skip
    assert ran.returncode == 0, ran.stderr[-2000:]
    summary = json.loads(ran.stdout)
    assert summary["label"] == "lcg32/4242 skip=0 H=40 stable 3"
    assert len(summary["outcomes"]) == 3
    assert (state / "audit.jsonl").exists()
    bad = subprocess.run([*argv, "--new-seed", "4242", "--post", "2"], cwd=root,
                         capture_output=True, text=True, timeout=60, check=False)  # fmt: skip
    assert bad.returncode == 2
    assert "changes neither the seed nor the family" in bad.stderr


def test_a_saved_summary_reads_back_as_the_same_result(tmp_path: Path) -> None:
    """`result_from_summary(result.summary())` (a runs file of bench.recovery --part) gives
    back the result it was written from, spec and switch included."""
    segments = [[], [], [], [], [], [job(1.5)], [rec("decision", "change_alarm")], [], [], [],
                [rec("system", "stopped", actor="system", dead_letters=1)]]  # fmt: skip
    marks = write_state(tmp_path / "s", SPEC, "HHHH..HHHH", segments)
    result = measure(SPEC, tmp_path / "s", marks, 2.5)
    again = result_from_summary(json.loads(json.dumps(result.summary(), default=str)))
    assert again == result
    assert again.spec.switch == Switch(new_seed=777)
