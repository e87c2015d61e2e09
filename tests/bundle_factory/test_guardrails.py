"""Guardrails #1 and #2, enforced: only the bundle factory and the BundleActor may import the
renderer or the budget model (and so format prompts or hold token numbers)."""

from __future__ import annotations

import ast
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

import bundle_factory

if TYPE_CHECKING:
    from collections.abc import Iterator

ROOT = Path(__file__).resolve().parents[2]
SCANNED = ("actors", "messages", "pipeline", "grammars")
ALLOWED = (ROOT / "bundle_factory", ROOT / "actors" / "bundle")

FORBIDDEN_MODULES = frozenset(
    {"bundle_factory.render", "bundle_factory.budget", "bundle_factory.truncation"}
)
"""The renderer, its truncation helpers and the budget model."""
FORBIDDEN_NAMES = frozenset(
    {"render_prompt", "RenderedPrompt", "TokenBudget", "build_llm_context", "render", "budget"}
)
"""Names that, imported from the `bundle_factory` package, give access to the same."""


def forbidden_imports(source: str) -> Iterator[tuple[int, str]]:
    """Yield (line, what) for every import of the renderer or the budget model in `source`."""
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name in FORBIDDEN_MODULES:
                    yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            if node.module in FORBIDDEN_MODULES:
                yield node.lineno, node.module
            elif node.module == "bundle_factory":
                for alias in node.names:
                    if alias.name in FORBIDDEN_NAMES or alias.name == "*":
                        yield node.lineno, f"bundle_factory.{alias.name}"
        elif (
            isinstance(node, ast.Constant)
            and isinstance(node.value, str)
            and node.value in FORBIDDEN_MODULES
        ):
            yield node.lineno, f"{node.value!r} (dynamic import)"


def _sources() -> Iterator[Path]:
    for top in SCANNED:
        for path in sorted((ROOT / top).rglob("*.py")):
            if not any(path.is_relative_to(allowed) for allowed in ALLOWED):
                yield path


def test_no_module_outside_the_factory_imports_the_renderer_or_budget() -> None:
    """Walk actors/, messages/, pipeline/ and grammars/; only actors/bundle/ may import them."""
    offenders = [
        f"{path.relative_to(ROOT)}:{line}: imports {what}"
        for path in _sources()
        for line, what in forbidden_imports(path.read_text(encoding="utf-8"))
    ]
    assert not offenders, "Guardrail #1/#2 broken:\n" + "\n".join(offenders)


@pytest.mark.parametrize(
    "source",
    [
        "import bundle_factory.render",
        "from bundle_factory.render import render_prompt",
        "from bundle_factory.budget import TokenBudget",
        "from bundle_factory import TokenBudget",
        "from bundle_factory import build_llm_context as b",
        "from bundle_factory import *",
        "import importlib\nimportlib.import_module('bundle_factory.render')",
    ],
)
def test_the_detector_catches_each_form(source: str) -> None:
    """Each way of reaching the renderer or the budget model is detected."""
    assert list(forbidden_imports(source))


def test_the_detector_allows_the_object_model() -> None:
    """Messages may carry the bundle: importing the object model is allowed."""
    source = (
        "from bundle_factory import StepAwarenessBundle\n"
        "from bundle_factory.bundle import TokenUsage"
    )
    assert not list(forbidden_imports(source))


def test_init_reexports_a_sorted_all() -> None:
    """bundle_factory.__all__ is sorted (ruff's isort style: CONSTANTS, Classes, functions)
    and every name in it exists."""

    def key(name: str) -> tuple[int, str]:
        return (0 if name.isupper() else 1 if name[0].isupper() else 2, name)

    assert bundle_factory.__all__ == sorted(bundle_factory.__all__, key=key)
    for name in bundle_factory.__all__:
        assert hasattr(bundle_factory, name), name
