"""The synthetic draw injector: test mode only, never replays, kept apart from real history.

Draw `n` of the sequence (0-based position) comes from the regime in force at `n`: the
configured family, seed and skip, changed by `synthetic.regime_changes`. A change with a seed
restarts the generator from it (as `pipeline.synthetic --switch-at N --new-seed S`, so the two
agree value for value); a change of skip alone keeps the state and changes the stride.

Where the generator stands (position and state) is stored with the draws, in the same
transaction, so an injection either happened with its position saved or not at all. Injected
records go through `parse_records`, the validation every file goes through, tagged
`source=synthetic`, into the configured stream (never `real`).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from actors.ingestion.filelog import close_file_row, open_file_row
from actors.ingestion.history import AppendReport, append_draws, stream_head, utc_text
from actors.ingestion.parse import Records, parse_records
from messages.errors import WatcherError
from pipeline.prng import get_family

if TYPE_CHECKING:
    import sqlite3

    from actors.config import Settings, SyntheticConfig

# One millisecond between injected draws of one batch: distinct, ordered timestamps, so a
# batch never looks like backfill nor like a repeat of itself.
_TICK = timedelta(milliseconds=1)


class InjectorRefusedError(WatcherError):
    """Raised when the injector is asked to run without both `test_mode` and `synthetic.enabled`."""


@dataclass(frozen=True)
class Regime:
    """The generator from draw `start` on."""

    start: int
    seed: int
    skip: int
    reseed: bool
    """True: the state restarts from `seed` at `start`; False: it carries on."""


@dataclass(frozen=True)
class Cursor:
    """Where the generator stands: the next draw's position and the state before it."""

    position: int
    state: int


@dataclass(frozen=True)
class Injection:
    """What one injection did."""

    file_id: int
    stream: str
    first_position: int
    next_position: int
    report: AppendReport


def refusal(settings: Settings) -> str | None:
    """Why the injector must not run under `settings` (None: it may)."""
    off = [
        key
        for key, on in (
            ("test_mode", settings.test_mode),
            ("synthetic.enabled", settings.synthetic.enabled),
        )
        if not on
    ]
    if not off:
        return None
    return (
        f"synthetic injector refused: {' and '.join(off)} "
        f"{'is' if len(off) == 1 else 'are'} false; both test_mode and synthetic.enabled "
        "must be true"
    )


def effective_mod(settings: Settings) -> int:
    """The injector's mod: `synthetic.mod`, else `ingestion.mod`.

    Raises:
        InjectorRefusedError: `synthetic.mod` exceeds `ingestion.mod` (its values would not
            pass validation).
    """
    mod = settings.synthetic.mod or settings.ingestion.mod
    if mod > settings.ingestion.mod:
        msg = (
            f"synthetic.mod {mod} exceeds ingestion.mod {settings.ingestion.mod}: injected values "
            "would be out of range"
        )
        raise InjectorRefusedError(msg)
    return mod


def regimes(config: SyntheticConfig) -> tuple[Regime, ...]:
    """The regimes in order of their start, the first starting at draw 0."""
    out = [Regime(0, config.seed, config.skip, reseed=True)]
    for change in config.regime_changes:
        last = out[-1]
        out.append(
            Regime(
                start=change.at_draw,
                seed=last.seed if change.seed is None else change.seed,
                skip=last.skip if change.skip is None else change.skip,
                reseed=change.seed is not None,
            )
        )
    return tuple(out)


def generator_key(config: SyntheticConfig, mod: int) -> str:
    """A fingerprint of everything that determines the sequence (a stored state is only
    reused under the same key)."""
    text = json.dumps(
        {
            "family": config.family,
            "mod": mod,
            "regimes": [[r.start, r.seed, r.skip, r.reseed] for r in regimes(config)],
        },
        sort_keys=True,
    )
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def origin(config: SyntheticConfig) -> Cursor:
    """The cursor before draw 0."""
    return Cursor(0, get_family(config.family).init(config.seed))


def generate(
    config: SyntheticConfig, mod: int, cursor: Cursor, count: int
) -> tuple[list[tuple[int, int, int]], Cursor]:
    """The next `count` draws as (position, value, regime index), and the cursor after them."""
    family = get_family(config.family)
    plan = regimes(config)
    index = max(i for i, r in enumerate(plan) if r.start <= cursor.position)
    state = cursor.state
    out: list[tuple[int, int, int]] = []
    for position in range(cursor.position, cursor.position + count):
        if index + 1 < len(plan) and plan[index + 1].start == position:
            index += 1
        regime = plan[index]
        if regime.reseed and regime.start == position:
            state = family.init(regime.seed)
        for _ in range(regime.skip + 1):
            state = family.step(state)
        out.append((position, family.output(state) % mod, index))
    return out, Cursor(cursor.position + count, state)


def cursor_at(config: SyntheticConfig, mod: int, position: int) -> Cursor:
    """The cursor before draw `position`, by running the generator from draw 0."""
    return generate(config, mod, origin(config), position)[1]


def _load_cursor(conn: sqlite3.Connection, config: SyntheticConfig, mod: int) -> Cursor:
    row = conn.execute(
        "SELECT position, state, generator_key FROM synthetic_injector WHERE stream = ?",
        (config.stream,),
    ).fetchone()
    if row is None:
        return origin(config)
    if row[2] == generator_key(config, mod):
        return Cursor(int(row[0]), int(row[1]))
    # The configuration changed: carry on from the saved position under the new generator.
    return cursor_at(config, mod, int(row[0]))


def _records(
    produced: list[tuple[int, int, int]], start: datetime
) -> tuple[Records, list[dict[str, Any]]]:
    records: Records = []
    for i, (position, value, regime) in enumerate(produced):
        record = {
            "draw_id": f"syn-{position:010d}",
            "timestamp": (start + i * _TICK).isoformat(),
            "value": value,
            "source": "synthetic",
            "position": position,
            "regime": regime,
        }
        records.append((f"position {position}", record))
    return records, [r for _w, r in records]


def inject(
    conn: sqlite3.Connection,
    settings: Settings,
    *,
    count: int,
    correlation_id: str,
    now: datetime | None = None,
) -> Injection:
    """Generate `count` draws, validate and append them, save the position; the caller holds
    the transaction.

    Raises:
        InjectorRefusedError: the flags are not both set, or the mod does not fit.
        DrawFileError: a generated draw broke a rule (a configuration that cannot validate).
    """
    reason = refusal(settings)
    if reason is not None:
        raise InjectorRefusedError(reason)
    config = settings.synthetic
    mod = effective_mod(settings)
    cursor = _load_cursor(conn, config, mod)
    produced, after = generate(config, mod, cursor, count)
    _fingerprint, _length, latest = stream_head(conn, config.stream)
    start = now or datetime.now(UTC)
    if latest is not None and datetime.fromisoformat(latest) >= start:
        start = datetime.fromisoformat(latest) + _TICK
    records, raw = _records(produced, start)
    name = f"inject-{cursor.position:010d}-{after.position - 1:010d}"
    draws = parse_records(name, records, mod=mod)
    body = json.dumps(raw, sort_keys=True).encode()
    file_id = open_file_row(
        conn,
        name=name,
        sha256=hashlib.sha256(body).hexdigest(),
        origin="injector",
        stream=config.stream,
        records=len(draws),
        correlation_id=correlation_id,
    )
    report = append_draws(conn, name, draws, stream=config.stream, ingest_file=file_id)
    close_file_row(conn, file_id, report)
    conn.execute(
        "INSERT INTO synthetic_injector (stream, position, state, generator_key, updated_at)"
        " VALUES (?, ?, ?, ?, ?) ON CONFLICT (stream) DO UPDATE SET position = excluded.position,"
        " state = excluded.state, generator_key = excluded.generator_key,"
        " updated_at = excluded.updated_at",
        (
            config.stream,
            after.position,
            after.state,
            generator_key(config, mod),
            utc_text(datetime.now(UTC)),
        ),
    )
    return Injection(file_id, config.stream, cursor.position, after.position, report)


def injector_positions(conn: sqlite3.Connection) -> dict[str, dict[str, Any]]:
    """Each synthetic stream's position and when it last moved, by stream name."""
    return {
        r[0]: {"position": r[1], "updated_at": r[2]}
        for r in conn.execute(
            "SELECT stream, position, updated_at FROM synthetic_injector ORDER BY stream"
        )
    }
