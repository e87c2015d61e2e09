"""The token budget: how much of the model's context each tier of a prompt may use.

Guardrail #2: token numbers live here and nowhere else. The defaults leave ample room in a
32,768-token context: 1,200 + 3,000 + 6,000 + 3,000 + 2,000 = 15,200, so a budget only bites when
the context is configured smaller or a payload is pathological.
"""

from __future__ import annotations

from typing import Self

from pydantic import Field, model_validator

from messages.base import Model

MIN_SECTION_TOKENS = 64
"""The fewest tokens a tier-1/2 section may get: its header and a truncation marker take ~45."""


class TokenBudget(Model):
    """Token caps per tier; every value can be overridden from configuration."""

    context: int = Field(default=32_768, gt=0)
    """The model's context window (prompt plus answer)."""
    tier0_reserved: int = Field(default=1_200, ge=0)
    """Tokens set aside for tier 0 (mission, schema, format, guardrails, contracts); never cut."""
    tier1_cap: int = Field(default=3_000, ge=2 * MIN_SECTION_TOKENS)
    """Cap for tier 1: the current evaluation and the step's own metrics (two sections)."""
    history_cap: int = Field(default=6_000, ge=MIN_SECTION_TOKENS)
    """Cap for tier 2 history: recent step and request outcomes."""
    telemetry_cap: int = Field(default=3_000, ge=2 * MIN_SECTION_TOKENS)
    """Cap for tier 2 telemetry: metric trends and open incidents (two sections)."""
    generation_reserve: int = Field(default=2_000, ge=0)
    """Tokens kept free for the model's answer; the prompt never reaches into them."""

    @model_validator(mode="after")
    def _reserve_fits(self) -> Self:
        if self.generation_reserve >= self.context:
            msg = (
                f"generation_reserve {self.generation_reserve} must be smaller than "
                f"context {self.context}"
            )
            raise ValueError(msg)
        return self

    @property
    def prompt_limit(self) -> int:
        """The most tokens a prompt may use: context minus the generation reserve."""
        return self.context - self.generation_reserve
