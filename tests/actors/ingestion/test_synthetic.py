"""The synthetic injector: two flags, no replay across restarts, regime changes, its own stream."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from actors.config import Settings, load_settings
from actors.ingestion.history import verify_chain
from actors.ingestion.synthetic import (
    Injection,
    InjectorRefusedError,
    cursor_at,
    generate,
    inject,
    origin,
    refusal,
)
from actors.store import connect, in_transaction
from messages.errors import ConfigError
from pipeline.synthetic import synthetic_records

if TYPE_CHECKING:
    import sqlite3
    from pathlib import Path

NOW = datetime(2026, 3, 1, tzinfo=UTC)


def make(**synthetic: Any) -> Settings:
    """Test-mode settings with the injector on, and the given [synthetic] keys."""
    return Settings.model_validate({"test_mode": True, "synthetic": {"enabled": True, **synthetic}})


def run(conn: sqlite3.Connection, settings: Settings, count: int) -> Injection:
    return in_transaction(
        conn, lambda c: inject(c, settings, count=count, correlation_id="c", now=NOW)
    )


def stream_values(conn: sqlite3.Connection, stream: str = "synthetic") -> list[int]:
    rows = conn.execute("SELECT value FROM draws WHERE stream = ? ORDER BY seq", (stream,))
    return [r[0] for r in rows]


@pytest.mark.parametrize(
    ("test_mode", "enabled", "named"),
    [
        (False, False, "test_mode and synthetic.enabled"),
        (True, False, "synthetic.enabled"),
        (False, True, "test_mode"),
    ],
)
def test_the_injector_refuses_unless_both_flags_are_set(
    conn: sqlite3.Connection, test_mode: bool, enabled: bool, named: str
) -> None:
    """Either flag off: refused, naming the flag(s), and nothing written."""
    settings = Settings.model_validate({"test_mode": test_mode, "synthetic": {"enabled": enabled}})
    reason = refusal(settings)
    assert reason is not None
    assert f"refused: {named} " in reason
    with pytest.raises(InjectorRefusedError, match=r"both test_mode and synthetic\.enabled"):
        run(conn, settings, 3)
    assert conn.execute("SELECT COUNT(*) FROM draws").fetchone()[0] == 0
    assert conn.execute("SELECT COUNT(*) FROM synthetic_injector").fetchone()[0] == 0
    assert refusal(make()) is None


def test_the_sequence_continues_across_restarts(tmp_path: Path) -> None:
    """Three runs on three connections give the first 9 draws of the seed, none replayed."""
    settings = make(family="minstd", seed=99, skip=2)
    for _ in range(3):
        conn = connect(tmp_path / "state.db")
        run(conn, settings, 3)
        conn.close()
    conn = connect(tmp_path / "state.db")
    expected = [r.value for r in synthetic_records("minstd", 99, 9, skip=2)]
    assert stream_values(conn) == expected
    ids = [r[0] for r in conn.execute("SELECT draw_id FROM draws ORDER BY seq")]
    assert ids == [f"syn-{n:010d}" for n in range(9)]
    assert verify_chain(conn, "synthetic").ok
    conn.close()


def test_a_regime_change_applies_at_the_configured_draw(conn: sqlite3.Connection) -> None:
    """A new seed at draw 5 matches `pipeline.synthetic --switch-at 5 --new-seed`."""
    settings = make(seed=12345, regime_changes=[{"at_draw": 5, "seed": 777}])
    run(conn, settings, 4)
    run(conn, settings, 4)
    expected = [r.value for r in synthetic_records("lcg32", 12345, 8, switch_at=5, new_seed=777)]
    assert stream_values(conn) == expected
    regimes = [r[0] for r in conn.execute("SELECT metadata FROM draws ORDER BY seq")]
    assert ['"regime": 0' in m for m in regimes] == [True] * 5 + [False] * 3


def test_a_skip_change_keeps_the_state_and_changes_the_stride() -> None:
    """skip 0 → 1 at draw 3: the generator carries on, stepping twice per draw."""
    settings = make(seed=5, regime_changes=[{"at_draw": 3, "skip": 1}])
    produced, _ = generate(settings.synthetic, 1000, origin(settings.synthetic), 5)
    plain = [r.value for r in synthetic_records("lcg32", 5, 7)]
    assert [v for _p, v, _r in produced] == [*plain[:3], plain[4], plain[6]]


@settings(max_examples=25, deadline=None)
@given(split=st.integers(0, 30), total=st.integers(0, 30), at=st.integers(1, 25))
def test_resuming_from_a_cursor_equals_one_run(split: int, total: int, at: int) -> None:
    """Generating in two parts from a saved cursor equals generating in one go."""
    config = make(seed=42, skip=1, regime_changes=[{"at_draw": at, "seed": 4242}]).synthetic
    split = min(split, total)
    whole, end = generate(config, 1000, origin(config), total)
    head, middle = generate(config, 1000, origin(config), split)
    tail, end2 = generate(config, 1000, middle, total - split)
    assert head + tail == whole
    assert end == end2
    assert cursor_at(config, 1000, split) == middle


def test_a_changed_configuration_continues_from_the_saved_position(
    conn: sqlite3.Connection,
) -> None:
    """After a seed change in the config the position carries on (no id reuse, no replay)."""
    run(conn, make(seed=1), 3)
    injection = run(conn, make(seed=2), 2)
    assert injection.first_position == 3
    assert injection.next_position == 5
    expected_tail = [r.value for r in synthetic_records("lcg32", 2, 5)][3:]
    assert stream_values(conn)[3:] == expected_tail


def test_synthetic_draws_never_enter_the_real_stream(conn: sqlite3.Connection) -> None:
    """Injected draws are source=synthetic in their own stream; `real` stays empty."""
    run(conn, make(), 5)
    run(conn, make(stream="scenario-b"), 2)
    assert stream_values(conn, "real") == []
    assert len(stream_values(conn, "synthetic")) == 5
    assert len(stream_values(conn, "scenario-b")) == 2
    sources = {r[0] for r in conn.execute("SELECT DISTINCT source FROM draws")}
    assert sources == {"synthetic"}
    with pytest.raises(ValueError, match="stream 'real' is refused"):
        make(stream="real")


def test_timestamps_only_move_forward(conn: sqlite3.Connection) -> None:
    """Injections at a clock that stands still still get increasing times: never backfill."""
    run(conn, make(), 3)
    run(conn, make(), 3)
    rows = conn.execute("SELECT timestamp, is_backfill FROM draws ORDER BY seq").fetchall()
    stamps = [r[0] for r in rows]
    assert stamps == sorted(set(stamps))
    assert not any(r[1] for r in rows)


def test_a_mod_beyond_the_ingestion_mod_is_refused(conn: sqlite3.Connection) -> None:
    """synthetic.mod > ingestion.mod would not validate: refused, naming both keys."""
    settings = Settings.model_validate(
        {"test_mode": True, "synthetic": {"enabled": True, "mod": 5000}}
    )
    with pytest.raises(InjectorRefusedError, match=r"synthetic.mod 5000 exceeds ingestion.mod"):
        run(conn, settings, 1)
    small = Settings.model_validate({"test_mode": True, "synthetic": {"enabled": True, "mod": 10}})
    run(conn, small, 4)
    assert all(v < 10 for v in stream_values(conn))


@pytest.mark.parametrize(
    ("synthetic", "needle"),
    [
        ({"seed": 0, "family": "minstd"}, "seed 0 outside"),
        ({"regime_changes": [{"at_draw": 5, "seed": 1}, {"at_draw": 3, "seed": 2}]}, "strictly"),
        ({"regime_changes": [{"at_draw": 5}]}, "must set seed or skip"),
        ({"family": "mt19937"}, "family"),
        ({"interval_s": 0}, "interval_s"),
    ],
)
def test_bad_synthetic_config_is_refused_at_load(
    tmp_path: Path, synthetic: dict[str, Any], needle: str
) -> None:
    """A bad [synthetic] table stops start-up with a ConfigError naming the problem."""
    lines = ["[synthetic]"]
    changes = synthetic.pop("regime_changes", [])
    lines += [f"{k} = {v!r}" for k, v in synthetic.items()]
    for change in changes:
        lines.append("[[synthetic.regime_changes]]")
        lines += [f"{k} = {v!r}" for k, v in change.items()]
    path = tmp_path / "w.toml"
    path.write_text("\n".join(lines).replace("'", '"') + "\n")
    with pytest.raises(ConfigError, match=needle):
        load_settings(path)
