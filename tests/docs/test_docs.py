"""Docs stay true: generated sections match the code, and the README shows the two commands."""

from __future__ import annotations

from pathlib import Path

from actors.config_doc import BEGIN, END, reference

ROOT = Path(__file__).resolve().parents[2]


def test_configuration_reference_is_current() -> None:
    """docs/configuration.md holds exactly what `python -m actors.config_doc` prints."""
    text = (ROOT / "docs" / "configuration.md").read_text()
    committed = text[text.index(BEGIN) : text.index(END) + len(END)]
    assert committed == reference(), "stale: run python -m actors.config_doc and paste it"


def test_readme_first_screen_has_the_two_commands() -> None:
    """`make run` and `make test` appear in the README's first 25 lines."""
    first_screen = "\n".join((ROOT / "README.md").read_text().splitlines()[:25])
    assert "make run" in first_screen
    assert "make test" in first_screen


def test_ci_runs_the_readme_test_command() -> None:
    """.ci/run calls `make test` and nothing the README does not mention."""
    script = (ROOT / ".ci" / "run").read_text()
    commands = [line for line in script.splitlines() if line and not line.startswith("#")]
    assert "make test" in commands
