"""The bundle conversation: ask for the context of one decision, get the prompt back."""

from __future__ import annotations

from typing import Any, Literal

from messages.base import Message
from messages.decisions import MetricThreshold


class BuildBundle(Message):
    """Assemble the LLM context for one step's results (BundleActor only)."""

    kind: Literal["build_bundle"] = "build_bundle"
    step_id: int
    """Pipeline step 1..6, 13 for Chapter 13, 99 for a selfplay candidate."""
    results: dict[str, Any]
    run_id: str
    state_paths: tuple[str, ...] = ()
    """State files to hash into the provenance, relative to the state directory."""
    is_chapter_13: bool = False


class BundleBuilt(Message):
    """The rendered prompt, the grammar it must be answered in, and the bundle it came from."""

    kind: Literal["bundle_built"] = "bundle_built"
    prompt: str
    grammar_name: str
    bundle: dict[str, Any]
    """The StepAwarenessBundle as JSON (budgets, provenance, the rendered tiers)."""
    thresholds: tuple[MetricThreshold, ...] = ()
    """The step's success thresholds, for the heuristic advisor."""
