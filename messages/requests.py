"""The spool's request file format (ARCHITECTURE §6) and the messages about requests."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import AwareDatetime, Field, TypeAdapter, field_validator, model_validator

from messages.base import Message, Model, new_id, utcnow
from messages.enums import LearningLoopScope

RequestSource = Literal["trigger", "cli", "external"]

RequestType = Literal["selfplay_retrain", "learning_loop", "pipeline_rerun"]
"""The one name of each kind of request: on the wire, in the store, in Chapter 13's records."""

RequestStatus = Literal["completed", "failed", "rejected", "halted", "escalated", "superseded"]
"""How a request ended (or paused): `halted` and `escalated` wait for a person; `superseded`
means a newer request of the same or a stronger kind took its place before it ran."""

Unit = str
"""A unit of work of a request: a pipeline step as text ("1".."6") or "selfplay"."""

UNITS: tuple[Unit, ...] = ("1", "2", "3", "4", "5", "6", "selfplay")
"""Every unit, in pipeline order."""

DRAW_ID_PATTERN = r"^[A-Za-z0-9_.:@/+-]{1,128}$"


class RequestBase(Model):
    """Fields every request carries."""

    request_id: str = Field(default_factory=new_id, pattern=r"^[A-Za-z0-9_-]{1,64}$")
    """Unique; also the spool file's name."""
    created_at: AwareDatetime = Field(default_factory=utcnow)
    correlation_id: str = Field(default_factory=new_id)
    source: RequestSource = "external"
    reason: str = Field(default="", max_length=2000)
    evidence: dict[str, Any] = Field(default_factory=dict)
    """What made Chapter 13 file it (trigger name, figures), for the audit trail."""
    history_from: str | None = Field(default=None, max_length=128)
    """The draw id the jobs' history starts at (the regime Chapter 13 trains on); None: the
    regime of the model in force (the whole history until a change was detected)."""
    params: dict[Unit, dict[str, str | int | float | bool]] = Field(default_factory=dict)
    """Job parameters per unit (`{"1": {"seed_end": 4294967296}}`), over `[watcher.params]`;
    checked against the unit's job before anything runs (`submit --param 1.seed_end=...`)."""

    @field_validator("params")
    @classmethod
    def _params_shape(
        cls, value: dict[str, dict[str, str | int | float | bool]]
    ) -> dict[str, dict[str, str | int | float | bool]]:
        for unit, params in value.items():
            if unit not in UNITS:
                msg = f"params: unknown unit {unit!r}; units: {', '.join(UNITS)}"
                raise ValueError(msg)
            for name in params:
                if not name.isidentifier() or len(name) > 64:
                    msg = f"params.{unit}: {name!r} is not a parameter name (an identifier)"
                    raise ValueError(msg)
        return value

    @model_validator(mode="after")
    def _params_for_own_units(self) -> RequestBase:
        if self.params and isinstance(self, SelfplayRetrain | LearningLoop | PipelineRerun):
            units = request_steps(self)
            extra = sorted(set(self.params) - set(units))
            if extra:
                msg = (
                    f"params for unit(s) {', '.join(extra)}, which this request does not run "
                    f"(it runs {', '.join(units)})"
                )
                raise ValueError(msg)
        return self


class SelfplayRetrain(RequestBase):
    """Run selfplay to explore new policy candidates."""

    request_type: Literal["selfplay_retrain"] = "selfplay_retrain"
    episodes: int = Field(5, ge=1, le=50)
    survivors_artifact: str | None = None
    min_fitness: float | None = None


class LearningLoop(RequestBase):
    """Run the learning loop: the scope's explicit step list, in order."""

    request_type: Literal["learning_loop"] = "learning_loop"
    scope: LearningLoopScope = LearningLoopScope.STEPS_3_5_6


class PipelineRerun(RequestBase):
    """Rerun the pipeline: every step (1..6) or an explicit list."""

    request_type: Literal["pipeline_rerun"] = "pipeline_rerun"
    steps: tuple[int, ...] = (1, 2, 3, 4, 5, 6)

    @field_validator("steps")
    @classmethod
    def _steps_known_and_ordered(cls, steps: tuple[int, ...]) -> tuple[int, ...]:
        if not steps:
            msg = "steps must name at least one step"
            raise ValueError(msg)
        if any(step not in range(1, 7) for step in steps):
            msg = f"steps must be within 1..6, got {list(steps)}"
            raise ValueError(msg)
        if list(steps) != sorted(set(steps)):
            msg = f"steps must be increasing without repeats, got {list(steps)}"
            raise ValueError(msg)
        return steps


WatcherRequest = Annotated[
    SelfplayRetrain | LearningLoop | PipelineRerun, Field(discriminator="request_type")
]
REQUEST_ADAPTER: TypeAdapter[SelfplayRetrain | LearningLoop | PipelineRerun] = TypeAdapter(
    WatcherRequest
)


def request_steps(request: SelfplayRetrain | LearningLoop | PipelineRerun) -> tuple[str, ...]:
    """The ordered units of work of a request: step numbers as text, or `selfplay`."""
    if isinstance(request, SelfplayRetrain):
        return ("selfplay",)
    if isinstance(request, LearningLoop):
        return tuple(str(step) for step in request.scope.steps)
    return tuple(str(step) for step in request.steps)


class RequestFiled(Message):
    """A request was written into the spool's `new/` (a nudge: the spool is the truth)."""

    kind: Literal["request_filed"] = "request_filed"
    request_id: str


class ProcessSpool(Message):
    """Scan the spool's `new/` now and process every request found."""

    kind: Literal["process_spool"] = "process_spool"


class RequestFinished(Message):
    """A request reached a terminal state (told to the TriggerActor: cooldowns, pools)."""

    kind: Literal["request_finished"] = "request_finished"
    request_id: str
    request_type: RequestType | Literal["unknown"]
    status: RequestStatus
    units: tuple[Unit, ...] = ()
    """The units that ran to a verdict (completed: all of them), in order."""
    gpu_seconds: float = Field(0.0, ge=0)
    """Wall seconds of the request's GPU jobs (Chapter 13's daily GPU budget reads it)."""
    history_from: str | None = None
    """The draw id the request's jobs read the history from (None: the whole history)."""
    reason: str = ""
