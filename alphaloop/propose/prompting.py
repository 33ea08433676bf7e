"""Build the chat messages of one proposal request from the prompt files and a ProposalContext.

The prompt must not grow with the run: it carries the top-K population only, learnings the loop
has already bounded (its distilled section whole, a fixed window of recent entries; clipped again
here only as a safety net), a length-capped parent region and
figure tables of at most MAX_WINDOWS rows, so iteration 500 costs about what iteration 10 did.
``variable_bound()`` is the most the variable parts can add; bench/bench_prompt_size.py measures it.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from pathlib import Path

from alphaloop.present.text import clip_end, clip_middle, fmt, safe
from alphaloop.propose.base import CandidateFigures, GuardThreshold, MemberSummary, ProposalContext, WindowFigures
from alphaloop.propose.offline.spec import RAW_COLUMNS
from alphaloop.run.grading import GRADING_RULE
from alphaloop.run.learnings import PROMPT_CHARS
from alphaloop.run.quoting import candidate_block

PROMPTS_DIR = Path(__file__).resolve().parent.parent.parent / "prompts"
PROGRAM_PATH = PROMPTS_DIR / "program.md"
TEMPLATE_PATH = PROMPTS_DIR / "prompt_template.md"
COMPACT_PATH = PROMPTS_DIR / "compact_template.md"

TOP_K = 5  # population members shown
DESCRIPTION_LIMIT = 160  # characters of each member's description
PARENT_LIMIT = 6_000  # characters of the parent region
LEARNINGS_LIMIT = PROMPT_CHARS  # characters of learnings: Learnings.prompt_view() stays under it by construction
OUTCOME_LIMIT = 800  # characters of the latest outcome
MAX_WINDOWS = 8  # rows of a figures table (train, folds, validation); more folds are summarised in one line
FIGURES_LIMIT = 2_600  # characters of one candidate's figures block (the parent's, the latest candidate's)
REASON_LIMIT = 300  # characters of why the parent was chosen
MAX_EACH = 20  # instruments listed one by one with their buy and hold
CORRELATIONS_LIMIT = 600  # characters of the members' correlations
GUARDS_LIMIT = 600  # characters of the guard thresholds

# a calendar date as the loop's reasons write it: 2003-04-17, 2003-04-17 00:00:00, 2003/04/17
CALENDAR_DATE = re.compile(r"(?<![\d.])(?:1[89]|2\d)\d{2}([-/])(?:0[1-9]|1[0-2])\1(?:0[1-9]|[12]\d|3[01])"
                           r"(?:[ T]\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?)?(?!\d)")
DATE_WITHHELD = "[date withheld]"
PLACEHOLDER = re.compile(r"\{\{\s*(\w+)\s*\}\}")
FILL = re.compile(r"^(?P<indent>[ \t]*)\{\{\s*(?P<alone>\w+)\s*\}\}[ \t]*\n(?P<blank>[ \t]*\n)?"
                  r"|\{\{\s*(?P<name>\w+)\s*\}\}", re.MULTILINE)


def load_prompts(program_path: Path = PROGRAM_PATH, template_path: Path = TEMPLATE_PATH) -> tuple[str, str]:
    """Read program.md and prompt_template.md (the user may edit both between runs)."""
    return program_path.read_text(encoding="utf-8"), template_path.read_text(encoding="utf-8")


def format_population(population: list[MemberSummary], metric: str, top_k: int = TOP_K,
                      trades: bool = True) -> str:
    """The best ``top_k`` members, one line each, best validation figure first."""
    if not population:
        return "(empty: no candidate has been accepted yet)"

    def key(m: MemberSummary) -> float:
        return m.val_metric if math.isfinite(m.val_metric) else -math.inf

    ranked = sorted(population, key=key, reverse=True)[:top_k]
    lines = [
        f"- iter {m.iteration}: val {metric} {fmt(m.val_metric, 3)}, train {metric} "
        f"{fmt(m.train_metric, 3)}{f', {m.val_trades} val trades' if trades else ''}: "
        f"{clip_end(m.description, DESCRIPTION_LIMIT)}"
        for m in ranked
    ]
    if len(population) > top_k:
        lines.append(f"- ... and {len(population) - top_k} more not shown")
    return "\n".join(lines)


def cell(value: float | int | None, kind: str) -> str:
    """One table cell: fractions as percentages, ratios to 3 decimals (as the run's headline figures),
    rates to 1, counts as integers, ``-`` when missing."""
    if kind == "pct":
        return fmt(value, 1, pct=True)
    if kind == "int":
        return fmt(value, 0)
    return fmt(value, 1 if kind == "rate" else 3)


TABLE_COLUMNS = (("bars", "bars", "int"), ("years", "years", "rate"),
                 ("sharpe", "Sharpe", "num"), ("total_return", "return", "pct"), ("max_drawdown", "max DD", "pct"),
                 ("exposure", "exposure", "pct"), ("round_trips", "trips", "int"), ("turnover", "turnover/yr", "rate"),
                 ("bh_sharpe", "B&H Sharpe", "num"), ("bh_total_return", "B&H return", "pct"),
                 ("bh_max_drawdown", "B&H max DD", "pct"))


def format_windows(windows: tuple[WindowFigures, ...], instruments: int = 1) -> list[str]:
    """A markdown table of at most MAX_WINDOWS rows; surplus folds are folded into one summary line. On a
    universe the trips are summed over its instruments, and the header says so."""
    rows = list(windows)
    extra: list[WindowFigures] = []
    if len(rows) > MAX_WINDOWS:
        keep = MAX_WINDOWS - 2
        extra, rows = rows[keep:-1], rows[:keep] + rows[-1:]
    labels = [f"trips (sum of {instruments} instruments)" if name == "round_trips" and instruments > 1 else label
              for name, label, _ in TABLE_COLUMNS]
    lines = ["| window | " + " | ".join(labels) + " |",
             "|---" * (len(TABLE_COLUMNS) + 1) + "|"]
    for w in rows:
        lines.append(f"| {clip_end(w.window, 20)} | "
                     + " | ".join(cell(getattr(w, name), kind) for name, _, kind in TABLE_COLUMNS) + " |")
    if extra:
        sharpes = [w.sharpe for w in extra if w.sharpe is not None and math.isfinite(w.sharpe)]
        spread = f"Sharpe {min(sharpes):.3f} to {max(sharpes):.3f}" if sharpes else "no Sharpe"
        lines.append(f"({len(extra)} more windows not shown: {spread})")
    return lines


def format_figures(title: str, figures: CandidateFigures | None) -> str:
    """One candidate's figures block, bounded by FIGURES_LIMIT; empty when the loop measured nothing."""
    if figures is None or (not figures.windows and figures.universe is None and not figures.status):
        return ""
    head = f"{title} (iteration {figures.iteration})"
    if figures.status:
        head += f": {clip_end(figures.status, 200)}"
    lines = [f"**{head}**"]
    u = figures.universe
    if u is not None:
        parts = [f"portfolio of {u.instruments} instruments: {u.metric} {cell(u.portfolio, 'num')}"]
        if u.best is not None:
            parts.append(f"best instrument {clip_end(u.best[0], 40)} {cell(u.best[1], 'num')}")
        if u.median is not None:
            parts.append(f"median {cell(u.median, 'num')}")
        if u.worst is not None:
            parts.append(f"worst instrument {clip_end(u.worst[0], 40)} {cell(u.worst[1], 'num')}")
        lines.append("; ".join(parts) + " (validation; the table below is the equal-weight portfolio's, "
                     "its B&H columns the equal-weight buy and hold's)")
        if u.each:
            lines.append(f"each instrument on validation, {u.metric} (its buy and hold's): " + "; ".join(
                f"{k} {cell(v, 'num')} ({cell(bh, 'num')})" for k, (v, bh) in enumerate(u.each[:MAX_EACH], 1))
                + (f"; ... {len(u.each) - MAX_EACH} more" if len(u.each) > MAX_EACH else ""))
    if figures.windows:
        lines += format_windows(figures.windows, u.instruments if u is not None else 1)
    return clip_middle("\n".join(lines), FIGURES_LIMIT)


def format_guards(guards: tuple[GuardThreshold, ...]) -> str:
    if not guards:
        return ""
    items = [f"{g.name} {g.limit:g}{(' ' + g.unit) if g.unit else ''}" for g in guards]
    return clip_end("Guards (a candidate outside any of these is rejected): " + "; ".join(items) + ".", GUARDS_LIMIT)


UNCHANGED_TEXT = ("**The latest change did not alter a single {one} on validation**: it held exactly its parent's "
                  "validation {many} (train and folds may differ), so its validation figures say nothing about the "
                  "idea. Change what the rule does on validation, not only how.")


def evidence_section(benchmark: str, reason: str | None, tables: Sequence[str], unchanged: str = "",
                     guards: str = "") -> str:
    """The prompt's figures section: why this parent, the candidates' tables (already formatted), the note that
    the latest change altered nothing (``UNCHANGED_TEXT`` in the task's words) and the guards; empty parts are
    left out, and the whole is empty when none is known.

    Why one: every task shows its own tables beside its own benchmark, laid out the same way."""
    parts = [f"Why this parent: {clip_end(reason, REASON_LIMIT)}" if reason else "", *tables, unchanged, guards]
    parts = [p for p in parts if p]
    if not parts:
        return ""
    return f"### Figures on train, folds and validation ({benchmark})\n\n" + "\n\n".join(parts)


def format_evidence(ctx: ProposalContext) -> str:
    """Figures, the parent's reason, the no-change flag and the guards; empty when none is known."""
    return evidence_section("buy and hold on the same windows", ctx.parent_reason,
                            (format_figures("Parent", ctx.parent_figures),
                             format_figures("Latest candidate", ctx.latest_figures)),
                            UNCHANGED_TEXT.format(one="position", many="positions") if ctx.unchanged_positions else "",
                            format_guards(ctx.guards))


STALL_TEXT = ("**The search has stalled**: the last {n} proposals in a row did not enter the population. "
              "Another variation of the parent is unlikely to help. Step back and propose a broader hypothesis: "
              "a different family of idea from the population's members (for example trend, momentum, mean "
              "reversion, breakout, volatility or volume conditions), built from a fresh premise about what moves "
              "these prices, even if it starts simpler than the parent.")


def format_stall(stalled: int) -> str:
    """What the model is told when the search stalls, instead of the night ending; empty otherwise."""
    return STALL_TEXT.format(n=stalled) if stalled else ""


def format_siblings(siblings: tuple[int, ...], parent: int) -> str:
    """With --workers N: proposals from the same parent whose outcome this one cannot see yet."""
    if not siblings:
        return ""
    which = ", ".join(str(j) for j in siblings)
    return (f"**In flight from the same parent**: iteration{'s' * (len(siblings) > 1)} {which} also build"
            f"{'s' * (len(siblings) == 1)} on iteration {parent} and {'is' if len(siblings) == 1 else 'are'} "
            f"being evaluated now; you cannot see {'its' if len(siblings) == 1 else 'their'} outcome yet. Make a "
            f"different change from the most obvious next step, so the two proposals test different ideas.")


def variable_bound() -> int:
    """The most characters the context's variable parts can add to a prompt (the caps above, plus framing)."""
    framing = 100
    return (PARENT_LIMIT + LEARNINGS_LIMIT + OUTCOME_LIMIT + (TOP_K + 1) * (DESCRIPTION_LIMIT + framing)
            + 2 * (FIGURES_LIMIT + framing) + REASON_LIMIT + GUARDS_LIMIT + 4 * framing + len(GRADING_RULE)
            + len(STALL_TEXT) + 2 * framing + 400  # the stall and sibling notes
            + CORRELATIONS_LIMIT + framing)


def render(template: str, values: dict[str, str]) -> str:
    """Fill ``{{name}}`` placeholders in one pass, so values holding braces are never re-read.

    A placeholder alone on its line whose value is empty takes its line and one blank line with it,
    so an optional section leaves no gap.
    """

    def fill(m: re.Match[str]) -> str:
        name = m.group("alone") or m.group("name")
        value = values.get(name)
        if value is None:
            return m.group(0)
        if m.group("alone") is None:
            return value
        return "" if value == "" else f"{m.group('indent')}{value}\n{m.group('blank') or ''}"

    return FILL.sub(fill, template)


PRICE_COLUMNS = RAW_COLUMNS  # what the programs name a candidate's df columns by


def columns_text(columns: tuple[str, ...]) -> str:
    """The price columns a candidate's ``df`` holds, and those this data lacks (close-only files, indices without
    Volume): a model told of columns that are not there writes candidates that fail. () = every one."""
    have = [c for c in PRICE_COLUMNS if not columns or c in columns]
    missing = [c for c in PRICE_COLUMNS if c not in have]
    text = ", ".join(f"`{c}`" for c in have)
    return text + (f" only (this data has no {', '.join(missing)}: a candidate reading one fails)" if missing else "")


def context_values(ctx: ProposalContext) -> dict[str, str]:
    region = safe(ctx.parent_region, keep="\n\t").strip("\n")  # code: its lines stay, raw control bytes go
    if len(region) > PARENT_LIMIT:
        region = region[:PARENT_LIMIT].rstrip() + f"\n# [... parent region cut at {PARENT_LIMIT} characters ...]"
    return {
        "metric": ctx.metric,
        "cost_bps": f"{ctx.cost_bps:g}",
        "max_gross": f"{ctx.max_gross:g}",
        "iteration": str(ctx.iteration),
        "parent_iteration": str(ctx.parent_iteration),
        "parent_region": region,
        "population": format_population(ctx.population, ctx.metric, trades=ctx.shows_trades) + (
            f"\n\n{clip_end(ctx.correlations, CORRELATIONS_LIMIT)}" if ctx.correlations else ""),
        "learnings": clip_middle(ctx.learnings.strip(), LEARNINGS_LIMIT) or "(none yet)",
        # the latest outcome may quote the candidate (its names, its messages): a delimited, bounded block
        "last_outcome": candidate_block(ctx.last_outcome.strip(), OUTCOME_LIMIT) if ctx.last_outcome else "(none yet)",
        "evidence": format_evidence(ctx),
        "stall": "\n\n".join(t for t in (format_siblings(ctx.siblings, ctx.parent_iteration),
                                          format_stall(ctx.stalled)) if t),
        "grading_rule": GRADING_RULE,
        "columns": columns_text(ctx.columns),
        **ctx.extra,
    }


def build_messages(ctx: ProposalContext, program: str, template: str) -> list[dict]:
    """System message: the research program; user message: the filled template.

    A template holding ``{{instructions}}`` gets the program inlined there and no system message
    is sent, for chat templates of local models that reject the system role.
    """
    values = context_values(ctx)
    instructions = render(program, values).strip()
    if "instructions" in {m.group(1) for m in PLACEHOLDER.finditer(template)}:
        return [{"role": "user", "content": render(template, {**values, "instructions": instructions}).strip()}]
    return [
        {"role": "system", "content": instructions},
        {"role": "user", "content": render(template, values).strip()},
    ]


def withhold_dates(text: str) -> str:
    """``text`` with every calendar date replaced by DATE_WITHHELD.

    Reasons name the date a check failed on (look-ahead, invariance, a bad forecast or weight), which
    helps at a terminal; a model reading one learns which stretch of market history it is shown, and
    its memory of that history is look-ahead. Every request passes through here."""
    return CALENDAR_DATE.sub(DATE_WITHHELD, text)


def prompt_chars(messages: list[dict]) -> int:
    """Total characters of a request's messages (tokens are roughly a quarter of this)."""
    return sum(len(m["content"]) for m in messages)
