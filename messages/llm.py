"""The LLM conversation: decisions, and the VRAM lease (ARCHITECTURE §5)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from messages.base import Message
from messages.decisions import DecisionModel, MetricThreshold

Scalar = str | int | float | bool | None


class Decide(Message):
    """Ask for a grammar-constrained decision on a rendered prompt."""

    kind: Literal["decide"] = "decide"
    prompt: str
    grammar_name: str
    metrics: dict[str, Scalar] = Field(default_factory=dict)
    """The figures the heuristic advisor reads when no model answers."""
    thresholds: tuple[MetricThreshold, ...] = ()


class Decision(Message):
    """The answer: the parsed model plus where it came from."""

    kind: Literal["decision"] = "decision"
    grammar_name: str
    answer: DecisionModel
    source: Literal["llm", "heuristic", "fail_closed"]
    attempts: int = Field(ge=0)
    tokens_in: int = 0
    tokens_out: int = 0
    latency_s: float = 0.0
    raw_text: str = ""


class ReleaseVRAM(Message):
    """GPUDispatch → LLM: stop the model so a job can have the GPU memory."""

    kind: Literal["release_vram"] = "release_vram"
    lease_id: str
    reason: str
    deadline_s: float = Field(gt=0)


class VRAMReleased(Message):
    """LLM → GPUDispatch: the worker is gone; this much memory was freed."""

    kind: Literal["vram_released"] = "vram_released"
    lease_id: str
    freed_bytes: int = Field(ge=0)


class VRAMReturned(Message):
    """GPUDispatch → LLM: the job is over (whatever happened); the model may load again."""

    kind: Literal["vram_returned"] = "vram_returned"
    lease_id: str
