"""The bundle-type table: every type complete, unknown ids refused by name."""

from __future__ import annotations

import pytest

from bundle_factory import AUTHORITY_LINE, BUNDLE_TYPES, UnknownStepError, bundle_type

EXPECTED_GRAMMARS = {
    1: "sieve_analysis",
    2: "agent_decision",
    3: "agent_decision",
    4: "agent_decision",
    5: "agent_decision",
    6: "agent_decision",
    13: "chapter_13",
    99: "agent_decision",
}


def test_the_table_covers_steps_1_to_6_chapter_13_and_selfplay() -> None:
    """Exactly the ids 1-6, 13 and 99 have bundle types, with their grammar names."""
    assert {k: t.grammar_name for k, t in BUNDLE_TYPES.items()} == EXPECTED_GRAMMARS


@pytest.mark.parametrize("step_id", sorted(EXPECTED_GRAMMARS))
def test_every_type_is_complete(step_id: int) -> None:
    """Each type has a mission, thresholds, guardrails and the authority line."""
    t = bundle_type(step_id)
    assert t.step_id == step_id
    assert t.mission
    assert t.evaluation_schema.thresholds
    assert all(th.min is not None or th.max is not None for th in t.evaluation_schema.thresholds)
    assert t.guardrails
    assert AUTHORITY_LINE in t.authority_contracts
    assert len(t.all_guardrails) > len(t.guardrails)


def test_selfplay_excludes_live_ground_truth() -> None:
    """The selfplay type retrieves no diagnostic trends (live ground truth stays out)."""
    assert bundle_type(99).trend_metrics == ()


@pytest.mark.parametrize("bad", [0, 7, 12, 100, -1, True])
def test_unknown_step_id_names_the_known_ids(bad: int) -> None:
    """An unknown id (a bool included) raises an error listing every known id."""
    with pytest.raises(UnknownStepError, match=r"known bundle types: 1, 2, 3, 4, 5, 6, 13, 99"):
        bundle_type(bad)


def test_the_table_is_read_only() -> None:
    """BUNDLE_TYPES cannot be extended at run time."""
    with pytest.raises(TypeError):
        BUNDLE_TYPES[7] = BUNDLE_TYPES[1]  # type: ignore[index]
