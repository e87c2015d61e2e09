"""The WatcherActor with scripted LLM and GPU: rules obeyed, halts, resumes, rejections."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import anyio
import pytest

from actors.gpu.actor import GPUDispatchActor
from actors.gpu.registry import NOOP_JOB, JobRegistry
from actors.gpu.spec import JobSpec
from actors.services import GPU, LLM, TRIGGER, WATCHER
from actors.testing import (
    PROCEED,
    Harness,
    ScriptedJob,
    harness_settings,
    open_test_system,
    probe,
    scripted_gpu,
    scripted_llm,
)
from actors.watcher.halt import HaltState, clear_halt, read_halt, write_halt
from actors.watcher.spool import Request, submit
from messages.decisions import (
    Chapter13Action,
    Chapter13Proposal,
    FailureMode,
    RiskLevel,
    StepAction,
    StepDecision,
)
from messages.dispatch import RunJob
from messages.enums import LearningLoopScope
from messages.requests import (
    LearningLoop,
    PipelineRerun,
    ProcessSpool,
    RequestFinished,
    SelfplayRetrain,
)

pytestmark = pytest.mark.anyio

ESCALATE = StepDecision(
    success_condition_met=False,
    confidence=0.9,
    reasoning="look at this",
    recommended_action=StepAction.ESCALATE,
)
RETRY = StepDecision(
    success_condition_met=False,
    confidence=0.8,
    reasoning="again",
    recommended_action=StepAction.RETRY,
    suggested_params={"holdout": 10},
)
OK = ScriptedJob(result={"ok": True})


async def file_and_process(h: Harness, request: Request) -> None:
    await anyio.to_thread.run_sync(submit, h.services.paths, request)
    await h.system.ref(WATCHER).tell(ProcessSpool())
    await h.system.wait_idle()


def steps_run(h: Harness) -> list[str | None]:
    return [m.step for m in h.probe(GPU).of(RunJob)]


def halt_path(h: Harness) -> Path:
    return h.services.paths.root / "halt"


async def test_escalation_halts_and_resume_continues_where_it_stopped(tmp_path: Path) -> None:
    """Step 5 escalates: the watcher halts with the evidence; resume re-runs 5, then 6."""
    fakes = {
        LLM: scripted_llm([PROCEED, ESCALATE, PROCEED, PROCEED]),
        GPU: scripted_gpu(default=OK),
        TRIGGER: probe(),
    }
    async with open_test_system(tmp_path, fakes=fakes) as h:
        await file_and_process(h, LearningLoop(request_id="r-1"))
        assert steps_run(h) == ["3", "5"]
        halt = read_halt(halt_path(h))
        assert halt is not None
        assert halt.by == "escalation"
        assert halt.request_id == "r-1"
        assert "step 5" in halt.reason
        assert h.probe(TRIGGER).of(RequestFinished) == []
        assert (tmp_path / "watcher_requests" / "new" / "r-1.json").exists()
        await h.system.ref(WATCHER).tell(ProcessSpool())
        await h.system.wait_idle()
        assert steps_run(h) == ["3", "5"]  # halted: nothing new starts

        clear_halt(halt_path(h))  # what `resume` does
        await h.system.ref(WATCHER).tell(ProcessSpool())
        finished = await h.probe(TRIGGER).expect(RequestFinished, within=10)
        assert finished.status == "completed"
        assert steps_run(h) == ["3", "5", "5", "6"]
    audit = [json.loads(line) for line in (tmp_path / "audit.jsonl").read_text().splitlines()]
    escalation = next(r for r in audit if r["event"] == "escalation")
    assert escalation["detail"]["resume"].endswith("resume")
    assert escalation["detail"]["evidence"]["answer"]["recommended_action"] == "escalate"
    assert any(r["event"] == "resumed" for r in audit)


async def test_halt_between_steps_pauses_and_resume_goes_on(tmp_path: Path) -> None:
    """A halt file written while step 3 runs stops the request before step 5."""

    def halt_now(_msg: RunJob) -> None:
        write_halt(tmp_path / "halt", HaltState(reason="operator", halted_at=datetime.now(UTC)))

    fakes = {
        LLM: scripted_llm(default=PROCEED),
        GPU: scripted_gpu([ScriptedJob(result={"ok": True}, side_effect=halt_now)], default=OK),
        TRIGGER: probe(),
    }
    async with open_test_system(tmp_path, fakes=fakes) as h:
        await file_and_process(h, LearningLoop(request_id="r-2"))
        assert steps_run(h) == ["3"]
        assert h.probe(TRIGGER).of(RequestFinished) == []
        clear_halt(halt_path(h))
        await h.system.ref(WATCHER).tell(ProcessSpool())
        finished = await h.probe(TRIGGER).expect(RequestFinished, within=10)
        assert finished.status == "completed"
        assert steps_run(h) == ["3", "5", "6"]


async def test_retries_are_bounded_then_escalate(tmp_path: Path) -> None:
    """Retry verdicts re-run the step with the suggested parameters, 3 times, then escalate."""
    fakes = {LLM: scripted_llm(default=RETRY), GPU: scripted_gpu(default=OK), TRIGGER: probe()}
    async with open_test_system(tmp_path, fakes=fakes) as h:
        await file_and_process(
            h, LearningLoop(request_id="r-3", scope=LearningLoopScope.STEP_6_ONLY)
        )
        runs = h.probe(GPU).of(RunJob)
        assert [m.step for m in runs] == ["6"] * 4
        assert runs[0].params == {}
        assert runs[1].params == {"holdout": 10}
        halt = read_halt(halt_path(h))
        assert halt is not None
        assert "step retries exhausted (3)" in halt.reason


async def test_expired_duplicate_and_missing_artifact_are_rejected(tmp_path: Path) -> None:
    """Stale requests, reused ids and missing artifacts go to rejected/ naming the rule."""
    fakes = {LLM: scripted_llm(default=PROCEED), GPU: scripted_gpu(default=OK), TRIGGER: probe()}
    async with open_test_system(tmp_path, fakes=fakes) as h:
        old = LearningLoop(request_id="r-old", created_at=datetime.now(UTC) - timedelta(hours=25))
        await file_and_process(h, old)
        await file_and_process(
            h, LearningLoop(request_id="r-4", scope=LearningLoopScope.STEP_6_ONLY)
        )
        again = tmp_path / "watcher_requests" / "new" / "r-4.json"
        again.write_text(LearningLoop(request_id="r-4").model_dump_json())
        await h.system.ref(WATCHER).tell(ProcessSpool())
        await h.system.wait_idle()
        await file_and_process(
            h, SelfplayRetrain(request_id="r-sp", survivors_artifact="artifacts/nope.json")
        )
        assert steps_run(h) == ["6"]
    rejected = tmp_path / "watcher_requests" / "rejected"
    rules = {p.name: json.loads(p.read_text())["rule"] for p in rejected.glob("*.reason.json")}
    assert rules == {
        "r-old.reason.json": "request expired",
        "r-4.reason.json": "duplicate request id",
        "r-sp.reason.json": "referenced artifact missing",
    }
    assert (tmp_path / "watcher_requests" / "done" / "r-4.json").exists()


async def test_prevalidation_escalate_rejects_chapter_13_requests(tmp_path: Path) -> None:
    """The advisor's escalate on a Chapter 13 request is obeyed: rejected, nothing runs."""
    no = Chapter13Proposal(
        analysis_summary="unclear",
        failure_mode=FailureMode.DATA_QUALITY,
        confidence=0.6,
        recommended_action=Chapter13Action.ESCALATE,
        risk_level=RiskLevel.HIGH,
        requires_human_review=True,
    )
    fakes = {LLM: scripted_llm([no]), GPU: scripted_gpu(default=OK), TRIGGER: probe()}
    async with open_test_system(tmp_path, fakes=fakes) as h:
        await file_and_process(
            h, PipelineRerun(request_id="r-5", source="trigger", evidence={"rule": "regime_shift"})
        )
        finished = await h.probe(TRIGGER).expect(RequestFinished, within=10)
        assert finished.status == "rejected"
        assert steps_run(h) == []
    reason = json.loads(
        (tmp_path / "watcher_requests" / "rejected" / "r-5.reason.json").read_text()
    )
    assert "pre-validation" in reason["reason"]


SLEEP_JOB = JobSpec(
    name="sleeper",
    argv=("{python}", "-c", "import time; time.sleep(120)", "{result_json}"),
    result_model=NOOP_JOB.result_model,
    timeout_s=300,
)


async def test_halt_now_cancels_the_running_job(tmp_path: Path) -> None:
    """`halt --now` (now=true in the halt file) kills the running job; the request pauses."""
    registry = JobRegistry([NOOP_JOB, SLEEP_JOB])
    settings = harness_settings(tmp_path, watcher={"step_jobs": {"6": "sleeper"}})
    fakes = {
        LLM: scripted_llm(default=PROCEED),
        TRIGGER: probe(),
        GPU: (probe()[0], lambda s: GPUDispatchActor(s, registry=registry)),
    }
    async with open_test_system(tmp_path, fakes=fakes, settings=settings, once=False) as h:
        await anyio.to_thread.run_sync(
            submit,
            h.services.paths,
            LearningLoop(request_id="r-6", scope=LearningLoopScope.STEP_6_ONLY),
        )
        await h.system.ref(WATCHER).tell(ProcessSpool())
        with anyio.fail_after(30):
            # Polling: the job is a real process, nothing in-process signals its start.
            while not list((tmp_path / "runs").glob("*/6-*")):  # noqa: ASYNC110
                await anyio.sleep(0.05)
        await anyio.sleep(0.5)
        write_halt(
            tmp_path / "halt", HaltState(reason="stop now", halted_at=datetime.now(UTC), now=True)
        )
        with anyio.fail_after(30):
            while not (tmp_path / "watcher_requests" / "new" / "r-6.json").exists():  # noqa: ASYNC110
                await anyio.sleep(0.05)
    audit = [json.loads(line) for line in (tmp_path / "audit.jsonl").read_text().splitlines()]
    assert any(r["event"] == "job_cancelled" for r in audit)
    assert any(r["event"] == "halted" and r["entity_id"] == "r-6" for r in audit)
