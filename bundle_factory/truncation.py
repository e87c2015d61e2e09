"""Summarising and truncating payloads to a token cap, always leaving a visible trace.

Two stages. First, *summarise*: walk the payload with a ladder of ever tighter limits (items
per list, keys per mapping, characters per string, nesting depth) until it fits; whatever a
limit removes is replaced by a marker that says how much went (first and last items are kept,
with a count of the rest). Second, if even the tightest rung does not fit, *truncate lines*:
keep the longest prefix of whole lines that fits with a final marker naming what was cut. No
key disappears without a marker that counts it.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from bundle_factory.errors import BudgetError
from bundle_factory.frozen import thaw

if TYPE_CHECKING:
    from bundle_factory.tokenizer import Tokenizer

ELLIPSIS = "…"
DICT_MARKER_KEY = "…"
"""The key under which a summarised mapping records how many keys it left out."""


@dataclass(frozen=True)
class SummaryLimits:
    """One rung of the summarising ladder."""

    max_items: int
    """Items kept per list (the first half and the last half), the rest counted."""
    max_keys: int
    """Keys kept per mapping (the first half and the last half in key order), the rest counted."""
    max_chars: int
    """Characters kept per string or key."""
    max_depth: int
    """Containers nested deeper than this are replaced by a marker with their size."""


# Rung 0 changes only pathological payloads (a list of more than 16 items, a 400-character
# string); each later rung roughly halves what is kept.
LADDER: tuple[SummaryLimits, ...] = (
    SummaryLimits(max_items=16, max_keys=32, max_chars=400, max_depth=6),
    SummaryLimits(max_items=8, max_keys=16, max_chars=200, max_depth=4),
    SummaryLimits(max_items=4, max_keys=8, max_chars=80, max_depth=3),
    SummaryLimits(max_items=2, max_keys=4, max_chars=40, max_depth=2),
)


def cut_string(text: str, max_chars: int) -> str:
    """Keep the first `max_chars` characters and mark how many were cut."""
    if len(text) <= max_chars:
        return text
    return f"{text[:max_chars]}{ELLIPSIS}[+{len(text) - max_chars} chars]"


def list_marker(omitted: int, total: int) -> str:
    """The string that stands in a summarised list for its omitted middle items."""
    return f"{ELLIPSIS}[{omitted} of {total} items omitted]{ELLIPSIS}"


def keys_marker(omitted: int, total: int) -> str:
    """The value of `DICT_MARKER_KEY` in a summarised mapping."""
    return f"[{omitted} of {total} keys omitted]"


def depth_marker(value: Mapping[str, Any] | Sequence[Any]) -> str:
    """The string that replaces a container nested too deep, with its size."""
    if isinstance(value, Mapping):
        return f"{{{ELLIPSIS}{len(value)} keys}}"
    return f"[{ELLIPSIS}{len(value)} items]"


def _halves(total: int, keep: int) -> tuple[int, int]:
    head = (keep + 1) // 2
    return head, keep - head


def summarise(value: Any, limits: SummaryLimits, depth: int = 0) -> Any:
    """Return `value` (frozen JSON) reduced to `limits`, with markers wherever it was reduced."""
    if isinstance(value, str):
        return cut_string(value, limits.max_chars)
    if isinstance(value, Mapping):
        if depth >= limits.max_depth and value:
            return depth_marker(value)
        keys = list(value)
        kept = keys
        if len(keys) > limits.max_keys:
            head, tail = _halves(len(keys), limits.max_keys)
            kept = keys[:head] + (keys[-tail:] if tail else [])
        out: dict[str, Any] = {}
        for key in kept:
            short = cut_string(key, limits.max_chars)
            # Two long keys may share a prefix: number the later one rather than overwrite.
            n = 2
            while short in out:
                short = f"{cut_string(key, limits.max_chars)}#{n}"
                n += 1
            out[short] = summarise(value[key], limits, depth + 1)
        if len(kept) < len(keys):
            marker_key = DICT_MARKER_KEY
            while marker_key in out:  # a payload may itself use the marker key
                marker_key += ELLIPSIS
            out[marker_key] = keys_marker(len(keys) - len(kept), len(keys))
        return out
    if isinstance(value, list | tuple):
        if depth >= limits.max_depth and value:
            return depth_marker(value)
        items = list(value)
        if len(items) > limits.max_items:
            head, tail = _halves(len(items), limits.max_items)
            marker = list_marker(len(items) - head - tail, len(items))
            items = [*items[:head], marker, *(items[-tail:] if tail else [])]
        return [summarise(item, limits, depth + 1) for item in items]
    return value


def compact(value: Any) -> str:
    """Compact JSON: no spaces, insertion order (callers pass key-sorted mappings)."""
    return json.dumps(thaw(value), separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def payload_lines(payload: Mapping[str, Any]) -> list[str]:
    """One line per top-level key: `"key": <compact JSON>` (line structure survives cutting)."""
    return [f"{compact(key)}: {compact(item)}" for key, item in payload.items()]


@dataclass(frozen=True)
class Fitted:
    """A section's text after fitting it to a cap, with a note when anything was cut."""

    text: str
    tokens: int
    note: str | None = None


def fit_lines(
    head: str,
    lines: Sequence[str],
    cap: int,
    tokenizer: Tokenizer,
    describe: Callable[[int], str],
    section: str,
    full_tokens: int | None = None,
) -> Fitted:
    """Keep the longest prefix of `lines` that fits `cap` tokens together with a cut marker.

    `describe(k)` says what is lost when only the first `k` lines are kept; when even the first
    line does not fit with that description, the marker keeps only the counts. `full_tokens`
    is the count of the whole section when the caller already has it.

    Raises:
        BudgetError: not even the head and the shortest marker fit `cap`.
    """
    full = "\n".join([head, *lines])
    if full_tokens is None:
        full_tokens = tokenizer.count(full)
    if full_tokens <= cap:
        return Fitted(full, full_tokens)

    def attempt(k: int, detailed: bool) -> tuple[str, int]:
        cut_tokens = tokenizer.count("\n".join(lines[k:]))
        detail = f": {describe(k)}" if detailed else ""
        marker = (
            f"[{ELLIPSIS} cut {len(lines) - k} of {len(lines)} lines (~{cut_tokens} tokens)"
            f"{detail}]"
        )
        text = "\n".join([head, *lines[:k], marker])
        return text, tokenizer.count(text)

    detailed = True
    best = attempt(0, detailed)
    if best[1] > cap:
        detailed = False
        best = attempt(0, detailed)
    if best[1] > cap:
        msg = (
            f"section {section!r} has only {cap} tokens left, fewer than its header and "
            f"truncation marker need ({best[1]}); raise the context or lower the "
            "generation reserve"
        )
        raise BudgetError(msg)
    # Binary search for the largest prefix that fits; only tested prefixes are ever returned.
    lo, hi = 0, len(lines) - 1
    while lo < hi:
        mid = (lo + hi + 1) // 2
        candidate = attempt(mid, detailed)
        if candidate[1] <= cap:
            lo, best = mid, candidate
        else:
            hi = mid - 1
    text, tokens = best
    note = f"{section}: kept {lo} of {len(lines)} lines, cut ~{full_tokens - tokens} tokens"
    return Fitted(text, tokens, note)


def name_list(names: Sequence[str], max_chars: int = 40) -> str:
    """Join names up to about `max_chars`, then "+N more" so a marker stays short."""
    shown: list[str] = []
    used = 0
    for name in names:
        short = cut_string(compact(name)[1:-1], 20)  # JSON-escaped: a marker stays one line
        if shown and used + len(short) > max_chars:
            break
        shown.append(short)
        used += len(short) + 2
    rest = len(names) - len(shown)
    return ", ".join(shown) + (f" +{rest} more" if rest else "")


def fit_payload(
    head: str, payload: Mapping[str, Any], cap: int, tokenizer: Tokenizer, section: str
) -> Fitted:
    """Render `payload` one top-level key per line under `head`, within `cap` tokens.

    Climbs the summarising ladder rung by rung; if the last rung still does not fit, cuts whole
    lines from the end and names the top-level keys that were cut.
    """
    if not payload:
        return fit_lines(head, ["(no results reported)"], cap, tokenizer, lambda _k: "", section)
    full_lines = payload_lines(payload)
    full_tokens = tokenizer.count("\n".join([head, *full_lines]))
    lines = full_lines
    for rung, limits in enumerate(LADDER):
        reduced = summarise(payload, limits)
        lines = payload_lines(reduced)
        unchanged = rung == 0 and lines == full_lines
        text = "\n".join([head, *lines])
        tokens = full_tokens if unchanged else tokenizer.count(text)
        if tokens <= cap:
            if unchanged:
                return Fitted(text, tokens)
            note = (
                f"{section}: summarised (lists <= {limits.max_items} items, mappings <= "
                f"{limits.max_keys} keys, strings <= {limits.max_chars} chars, depth <= "
                f"{limits.max_depth}), ~{full_tokens - tokens} tokens cut"
            )
            return Fitted(text, tokens, note)
    keys = list(reduced)

    def describe(k: int) -> str:
        return "keys " + name_list(keys[k:])

    fitted = fit_lines(head, lines, cap, tokenizer, describe, section)
    note = (
        f"{fitted.note} after summarising to the last rung "
        f"(~{full_tokens - fitted.tokens} tokens cut in all)"
    )
    return Fitted(fitted.text, fitted.tokens, note)
