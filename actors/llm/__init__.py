"""LLMActor: the local model's worker process, grammar-constrained decisions, the VRAM lease."""

from actors.llm.actor import LLMActor as LLMActor

__all__ = ["LLMActor"]
