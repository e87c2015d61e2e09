"""The renderer: a bundle becomes one prompt, in a fixed section order, within its budget.

Sections, always in this order and always present (an empty one says so):

    tier 0   1 SYSTEM MISSION · 2 STEP MISSION · 3 EVALUATION SCHEMA · 4 OUTPUT FORMAT
             5 GUARDRAILS · 6 AUTHORITY CONTRACTS                        (never truncated)
    tier 1   7 CURRENT EVALUATION · 8 STEP METRICS                      (tier1_cap)
    tier 2   9 RECENT OUTCOMES                                          (history_cap)
             10 TRENDS · 11 OPEN INCIDENTS                              (telemetry_cap)

Space is handed out in that priority order: tier 0 takes max(its size, tier0_reserved) (only
its size when the context is too small for the reservation), then each later section gets at
most its cap and at most what is left of context - generation reserve once every section after
it keeps `MIN_SECTION_TOKENS`. The text depends only on the bundle (no clock, no dict order),
so the same bundle always renders to the same bytes.
"""

from __future__ import annotations

import weakref
from dataclasses import dataclass
from typing import TYPE_CHECKING

from bundle_factory.budget import MIN_SECTION_TOKENS
from bundle_factory.bundle import BUNDLE_VERSION, MetricCheck, StepAwarenessBundle, TokenUsage
from bundle_factory.catalog import bundle_type
from bundle_factory.errors import BudgetError
from bundle_factory.truncation import Fitted, cut_string, fit_lines, fit_payload

if TYPE_CHECKING:
    from collections.abc import Sequence

    from bundle_factory.provenance import ProvenanceRecord
    from bundle_factory.records import Incident, OutcomeRecord, TrendSummary
    from bundle_factory.tokenizer import Tokenizer
    from messages.decisions import MetricThreshold

SECTION_TITLES: tuple[str, ...] = (
    "SYSTEM MISSION",
    "STEP MISSION",
    "EVALUATION SCHEMA",
    "OUTPUT FORMAT",
    "GUARDRAILS",
    "AUTHORITY CONTRACTS",
    "CURRENT EVALUATION",
    "STEP METRICS",
    "RECENT OUTCOMES",
    "TRENDS",
    "OPEN INCIDENTS",
)
"""The fixed section order; a section's header is `## <n>. <title>`."""

SEPARATOR = "\n\n"
# Free text from the store (summaries, reasons) is cut per line: one runaway summary must not
# push the other records out of the history cap.
_MAX_RECORD_CHARS = 200
# Sections 7-11 follow tier 0: five joins; the final check re-counts the whole text anyway.
_SECTIONS_AFTER_TIER0 = 5
_JOINS_AFTER_TIER0 = 5
# A tokenizer that merges across joins can exceed the sum of the parts by a few tokens; each
# retry takes back the overflow plus this margin.
_RETRY_MARGIN = 8
_MAX_RETRIES = 4


@dataclass(frozen=True)
class RenderedPrompt:
    """A rendered prompt and the token usage it was counted at."""

    text: str
    usage: TokenUsage


def header(n: int) -> str:
    """The header line of section `n` (1-based)."""
    return f"## {n}. {SECTION_TITLES[n - 1]}"


def fmt_number(value: float) -> str:
    """Integers without a decimal point, other numbers in their shortest round-trip form."""
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e15:
        return str(int(value))
    return repr(value)


def fmt_bounds(threshold: MetricThreshold) -> str:
    """`>= min and <= max`, naming only the bounds that exist."""
    bounds = []
    if threshold.min is not None:
        bounds.append(f">= {fmt_number(threshold.min)}")
    if threshold.max is not None:
        bounds.append(f"<= {fmt_number(threshold.max)}")
    return " and ".join(bounds) or "(any value)"


def fmt_threshold(threshold: MetricThreshold) -> str:
    """`metric >= min and <= max`."""
    return f"{threshold.metric} {fmt_bounds(threshold)}"


def _bullets(items: Sequence[str]) -> str:
    return "\n".join(f"- {item}" for item in items)


def render_title(bundle: StepAwarenessBundle) -> str:
    """The title block: bundle version, step, run id, Chapter 13 flag and generation time."""
    return (
        f"# WATCHER STEP AWARENESS BUNDLE v{BUNDLE_VERSION}\n"
        f"step {bundle.step_id} ({bundle.step_name}) | run {bundle.run_id} | "
        f"chapter 13: {'yes' if bundle.is_chapter_13 else 'no'} | "
        f"generated {bundle.generated_at.isoformat()}"
    )


def render_instructions(bundle: StepAwarenessBundle) -> str:
    """Sections 1-6, which depend only on the bundle type; never truncated."""
    ctx = bundle.context
    schema = ctx.evaluation_schema
    sections = [
        f"{header(1)}\n{ctx.system_mission}",
        f"{header(2)}\n{ctx.mission}",
        f"{header(3)}\nThe results report: {schema.reports}\n"
        "Success thresholds (all must hold):\n"
        + _bullets([fmt_threshold(t) for t in schema.thresholds]),
        f"{header(4)}\ngrammar: {ctx.grammar_name}\n"
        f"Answer with one JSON object in the `{ctx.grammar_name}` grammar, nothing before or "
        "after it.",
        f"{header(5)}\n{_bullets(ctx.guardrails)}",
        f"{header(6)}\n{_bullets(ctx.authority_contracts)}",
    ]
    return SEPARATOR.join(sections)


def render_tier0(bundle: StepAwarenessBundle) -> str:
    """The title block and sections 1-6."""
    return render_title(bundle) + SEPARATOR + render_instructions(bundle)


# Most section texts repeat between bundles (tier 0 per type, tier 2 until the store changes).
# The model's own tokenizer costs ~0.45 ms per 1,000 characters, so each distinct text is
# counted once per tokenizer; the whole prompt (unique by its title line) is always counted.
_COUNTS: weakref.WeakKeyDictionary[Tokenizer, dict[str, int]] = weakref.WeakKeyDictionary()
# 512 texts of a few KB each: a few MB at most; past this the cache starts over.
_MAX_CACHED = 512


def clear_count_cache() -> None:
    """Forget every remembered section count (for cold-start measurements)."""
    _COUNTS.clear()


class _CachedCounts:
    """A view of a tokenizer that remembers the count of every text it has seen."""

    def __init__(self, tokenizer: Tokenizer) -> None:
        self._tokenizer = tokenizer
        try:
            self._cache = _COUNTS.setdefault(tokenizer, {})
        except TypeError:  # not weakly referenceable: remember for this render only
            self._cache = {}

    @property
    def name(self) -> str:
        return self._tokenizer.name

    def count(self, text: str) -> int:
        count = self._cache.get(text)
        if count is None:
            if len(self._cache) >= _MAX_CACHED:
                self._cache.clear()
            count = self._cache[text] = self._tokenizer.count(text)
        return count


def _check_line(check: MetricCheck) -> str:
    value = "missing" if check.value is None else fmt_number(check.value)
    bounds = fmt_bounds(check.threshold)
    return f"- {check.threshold.metric} = {value} (needs {bounds}): {check.status.value}"


def _provenance_line(record: ProvenanceRecord) -> str:
    if record.is_missing:
        return f"- {record.path}: MISSING"
    if record.is_unreadable:
        return f"- {record.path}: UNREADABLE ({record.error})"
    return f"- {record.path}: sha256 {record.sha256[:16]} ({record.size} bytes)"


def evaluation_lines(bundle: StepAwarenessBundle) -> list[str]:
    """Section 7's lines: each threshold checked, a verdict count, then the state files used."""
    checks = bundle.context.evaluation_summary
    counts = dict.fromkeys(("pass", "fail", "missing"), 0)
    for check in checks:
        counts[check.status.value] += 1
    lines = [_check_line(check) for check in checks]
    lines.append(
        f"Verdict: {counts['pass']} of {len(checks)} thresholds pass, {counts['fail']} fail, "
        f"{counts['missing']} missing."
    )
    lines.append(f"State files used: {len(bundle.provenance) or 'none'}")
    lines.extend(_provenance_line(record) for record in bundle.provenance)
    return lines


def outcome_line(record: OutcomeRecord) -> str:
    """One recent outcome on one line."""
    summary = cut_string(record.summary, _MAX_RECORD_CHARS) if record.summary else ""
    if record.source == "step":
        confidence = "-" if record.confidence is None else fmt_number(record.confidence)
        line = (
            f"- {record.recorded_at} step {record.step_id} attempt {record.attempt}: "
            f"{record.status}, action {record.action}, confidence {confidence} "
            f"(run {record.run_id}, request {record.request_id})"
        )
    else:
        line = (
            f"- {record.recorded_at} request {record.request_id} ({record.request_type}): "
            f"{record.status}"
        )
    return f"{line}: {summary}" if summary else line


def trend_line(trend: TrendSummary) -> str:
    """One metric's trend on one line."""
    values = ", ".join(f"{v:.6g}" for v in trend.values)
    better = "higher" if trend.higher_is_better else "lower"
    return (
        f"- {trend.metric}: {trend.direction.value} over {len(trend.values)} values "
        f"(slope {trend.slope:+.4g} per value, {better} is better): {values}"
    )


def incident_line(incident: Incident) -> str:
    """One open incident on one line."""
    return (
        f"- {incident.opened_at} [{incident.severity}] {incident.source}: "
        f"{cut_string(incident.summary, _MAX_RECORD_CHARS)} "
        f"(incident {incident.incident_id}, correlation {incident.correlation_id})"
    )


def _records_or_none(lines: list[str], empty: str) -> list[str]:
    return lines or [f"- {empty}"]


def _split(cap: int, need_a: int, need_b: int) -> tuple[int, int]:
    """Share `cap` between two sections: each its need, else half plus the other's slack."""
    if need_a + need_b <= cap:
        return need_a, cap - need_a
    half = cap // 2
    if need_a <= half:
        return need_a, cap - need_a
    if need_b <= cap - half:
        return cap - need_b, need_b
    return half, cap - half


def _fit_records(
    n: int, lines: list[str], cap: int, tokenizer: Tokenizer, noun: str, need: int | None = None
) -> Fitted:
    return fit_lines(
        header(n),
        lines,
        cap,
        tokenizer,
        lambda k: f"{len(lines) - k} older {noun} not shown",
        SECTION_TITLES[n - 1],
        full_tokens=need,
    )


def _render_rest(
    bundle: StepAwarenessBundle, tokenizer: Tokenizer, available: int
) -> tuple[list[Fitted], int, int, int]:
    """Sections 7-11 within `available` tokens; returns them and tier-1/history/telemetry use.

    Each section is capped by its own cap and by what is left once every later section keeps
    `MIN_SECTION_TOKENS` (enough for its header and a truncation marker), so a greedy early
    section can shorten a later one but never squeeze it out.
    """
    floor = MIN_SECTION_TOKENS
    budgets = bundle.budgets
    ctx = bundle.context
    btype = bundle_type(bundle.step_id)

    # Three sections follow tier 1: outcomes, trends, incidents.
    tier1_cap = min(budgets.tier1_cap, available - 3 * floor)
    eval_lines = evaluation_lines(bundle)
    eval_need = tokenizer.count("\n".join([header(7), *eval_lines]))
    # The evaluation has priority; the metrics keep at least the floor.
    evaluation = fit_lines(
        header(7),
        eval_lines,
        min(eval_need, tier1_cap - floor),
        tokenizer,
        lambda k: f"{len(eval_lines) - k} evaluation lines not shown",
        SECTION_TITLES[6],
        full_tokens=eval_need,
    )
    metrics = fit_payload(
        header(8), ctx.inputs_summary, tier1_cap - evaluation.tokens, tokenizer, SECTION_TITLES[7]
    )
    tier1 = evaluation.tokens + metrics.tokens
    available -= tier1

    outcome_lines = _records_or_none(
        [outcome_line(r) for r in ctx.recent_outcomes],
        "none recorded" if btype.include_history else "not retrieved for this bundle type",
    )
    history_cap = min(budgets.history_cap, available - 2 * floor)
    history = _fit_records(9, outcome_lines, history_cap, tokenizer, "outcomes")
    available -= history.tokens

    trend_empty = (
        "excluded for this bundle type (no live ground truth)"
        if btype.trend_metrics == ()
        else "none recorded"
    )
    trend_lines = _records_or_none([trend_line(t) for t in ctx.trend_summary], trend_empty)
    incident_lines = _records_or_none([incident_line(i) for i in ctx.open_incidents], "none open")
    telemetry_cap = min(budgets.telemetry_cap, available)
    trends_need = tokenizer.count("\n".join([header(10), *trend_lines]))
    incidents_need = tokenizer.count("\n".join([header(11), *incident_lines]))
    trends_cap, _ = _split(telemetry_cap, trends_need, incidents_need)
    trends = _fit_records(10, trend_lines, trends_cap, tokenizer, "trends", trends_need)
    incidents = _fit_records(
        11, incident_lines, telemetry_cap - trends.tokens, tokenizer, "incidents", incidents_need
    )
    telemetry = trends.tokens + incidents.tokens
    return [evaluation, metrics, history, trends, incidents], tier1, history.tokens, telemetry


def render_prompt(bundle: StepAwarenessBundle, tokenizer: Tokenizer) -> RenderedPrompt:
    """Render `bundle` to its prompt; the prompt never exceeds context - generation reserve.

    Raises:
        BudgetError: tier 0 plus the generation reserve does not fit the context, or what is
            left cannot hold a section's header and truncation marker.
    """
    budgets = bundle.budgets
    limit = budgets.prompt_limit
    title = render_title(bundle)
    instructions = render_instructions(bundle)
    tier0_text = title + SEPARATOR + instructions
    counter = _CachedCounts(tokenizer)
    # Counted in parts (the instructions repeat per type); the whole prompt is counted below.
    tier0 = counter.count(title) + counter.count(SEPARATOR) + counter.count(instructions)
    if tier0 > limit:
        msg = (
            f"tier 0 of bundle type {bundle.step_id} ({bundle.step_name}) needs {tier0} tokens; "
            f"with the generation reserve of {budgets.generation_reserve} that is "
            f"{tier0 + budgets.generation_reserve}, more than the context of {budgets.context}. "
            "Tier 0 is never truncated: raise the context or lower the generation reserve"
        )
        raise BudgetError(msg)
    joins = _JOINS_AFTER_TIER0 * counter.count(SEPARATOR)
    needed = _SECTIONS_AFTER_TIER0 * MIN_SECTION_TOKENS
    available = limit - max(tier0, budgets.tier0_reserved) - joins
    if available < needed:
        # The reservation yields to a small context: only tier 0's actual size is kept back.
        available = limit - tier0 - joins
    if available < needed:
        msg = (
            f"bundle type {bundle.step_id}: after tier 0 ({tier0} tokens) and the generation "
            f"reserve ({budgets.generation_reserve}), {available} of the context's "
            f"{budgets.context} tokens remain; tiers 1 and 2 need at least {needed} "
            f"({_SECTIONS_AFTER_TIER0} sections x {MIN_SECTION_TOKENS}). Raise the context or "
            "lower the generation reserve"
        )
        raise BudgetError(msg)
    for _ in range(_MAX_RETRIES):
        sections, tier1, history, telemetry = _render_rest(bundle, counter, available)
        text = SEPARATOR.join([tier0_text, *(s.text for s in sections)])
        total = tokenizer.count(text)
        if total <= limit:
            usage = TokenUsage(
                tokenizer=tokenizer.name,
                tier0=tier0,
                tier1=tier1,
                history=history,
                telemetry=telemetry,
                total=total,
                cuts=tuple(s.note for s in sections if s.note),
            )
            return RenderedPrompt(text, usage)
        available -= total - limit + _RETRY_MARGIN
    msg = (
        f"bundle type {bundle.step_id}: the prompt still needs {total} tokens after "
        f"{_MAX_RETRIES} attempts to fit {limit}; raise the context"
    )
    raise BudgetError(msg)
