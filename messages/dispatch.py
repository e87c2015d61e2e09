"""The dispatch conversation: run a registered job, hear its progress, get its result."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from messages.base import Message

JobStatus = Literal[
    "completed", "failed", "timed_out", "cancelled", "invalid_result", "rejected", "planned"
]
"""`planned`: a dry run resolved the job and started nothing."""


class RunJob(Message):
    """Run the registry job `job` with typed parameters — never a command line."""

    kind: Literal["run_job"] = "run_job"
    job: str
    params: dict[str, str | int | float | bool] = Field(default_factory=dict)
    run_id: str
    step: str | None = None
    """The unit of work this job is for (`"3"`, `"selfplay"`), for logs and audit."""
    history_from: str | None = None
    """The draw id the job's history file starts at (None: the whole real history)."""
    seed: int = Field(default=0, ge=0, le=2**63 - 1)
    """Passed as `--seed N` to jobs that take one (every reference job): same seed, same run."""
    dry_run: bool = False
    """Resolve argv, lease plan and GPU assignment; start nothing."""


class JobProgress(Message):
    """A progress line printed by a running job."""

    kind: Literal["job_progress"] = "job_progress"
    job: str
    run_id: str
    done: int
    total: int
    message: str = ""


class JobFinished(Message):
    """How a job ended, with its validated result when it completed."""

    kind: Literal["job_finished"] = "job_finished"
    job: str
    run_id: str
    status: JobStatus
    exit_code: int | None = None
    duration_s: float = 0.0
    result: dict[str, Any] | None = None
    stderr_tail: str = ""
    error: str | None = None
    lease_id: str | None = None
    argv: tuple[str, ...] = ()
    placements: tuple[dict[str, Any], ...] = ()
    """Where each process ran: shard, node, gpu, attempt, status (one entry per attempt)."""


class CancelJobs(Message):
    """Stop every running job now (`halt --now`): their process groups are killed."""

    kind: Literal["cancel_jobs"] = "cancel_jobs"
    reason: str = ""
