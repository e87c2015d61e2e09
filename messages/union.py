"""One discriminated union of every message kind: what logs, spool and worker protocol parse."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field, TypeAdapter

from messages.bundle import BuildBundle, BundleBuilt
from messages.chapter13 import CandidateEmitted, PoolRegistered, RegisterPool
from messages.dispatch import CancelJobs, JobFinished, JobProgress, RunJob
from messages.ingestion import DrawIngested, InboxFileSeen, IngestInbox, InjectDraws
from messages.lifecycle import Describe, Described, Shutdown, SystemStarted
from messages.llm import Decide, Decision, ReleaseVRAM, VRAMReleased, VRAMReturned
from messages.requests import ProcessSpool, RequestFiled, RequestFinished, SupersedeRequest

AnyMessage = Annotated[
    DrawIngested
    | InboxFileSeen
    | IngestInbox
    | InjectDraws
    | RequestFiled
    | ProcessSpool
    | RequestFinished
    | SupersedeRequest
    | BuildBundle
    | BundleBuilt
    | Decide
    | Decision
    | ReleaseVRAM
    | VRAMReleased
    | VRAMReturned
    | RunJob
    | JobProgress
    | JobFinished
    | CancelJobs
    | Shutdown
    | Describe
    | Described
    | SystemStarted
    | RegisterPool
    | PoolRegistered
    | CandidateEmitted,
    Field(discriminator="kind"),
]

MESSAGE_ADAPTER: TypeAdapter[AnyMessage] = TypeAdapter(AnyMessage)


def parse_message(data: str | bytes) -> AnyMessage:
    """Parse one JSON message of any kind.

    Raises:
        pydantic.ValidationError: unknown `kind`, a missing or extra field, a bad value.
    """
    return MESSAGE_ADAPTER.validate_json(data)
