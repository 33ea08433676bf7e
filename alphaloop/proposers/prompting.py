"""Build the chat messages of one proposal request from the prompt files and a ProposalContext.

The prompt must not grow with the run: it carries the top-K population only, learnings the loop
has already compacted (clipped again here as a safety net), and a length-capped parent region,
so iteration 500 costs about what iteration 10 did.
"""

from __future__ import annotations

import math
import re
from pathlib import Path

from alphaloop.proposers.base import MemberSummary, ProposalContext

PROMPTS_DIR = Path(__file__).resolve().parent.parent.parent / "prompts"
PROGRAM_PATH = PROMPTS_DIR / "program.md"
TEMPLATE_PATH = PROMPTS_DIR / "prompt_template.md"

TOP_K = 5  # population members shown
DESCRIPTION_LIMIT = 160  # characters of each member's description
PARENT_LIMIT = 6_000  # characters of the parent region
LEARNINGS_LIMIT = 14_000  # characters of learnings; above the loop's own 12,000 budget, so only a safety net
OUTCOME_LIMIT = 800  # characters of the latest outcome

PLACEHOLDER = re.compile(r"\{\{\s*(\w+)\s*\}\}")


def load_prompts(program_path: Path = PROGRAM_PATH, template_path: Path = TEMPLATE_PATH) -> tuple[str, str]:
    """Read program.md and prompt_template.md (the user may edit both between runs)."""
    return program_path.read_text(encoding="utf-8"), template_path.read_text(encoding="utf-8")


def clip(text: str, limit: int) -> str:
    """Keep the head and the tail of an over-long text with a marker saying how much was cut.

    Both ends are kept because compacted learnings summarise at the top and add news at the end.
    """
    if len(text) <= limit:
        return text
    head = limit // 3
    tail = limit - head
    cut = len(text) - head - tail
    return f"{text[:head].rstrip()}\n[... {cut} characters omitted ...]\n{text[-tail:].lstrip()}"


def one_line(text: str, limit: int) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 3].rstrip() + "..."


def format_number(value: float) -> str:
    return f"{value:.3f}" if math.isfinite(value) else "n/a"


def format_population(population: list[MemberSummary], metric: str, top_k: int = TOP_K) -> str:
    """The best ``top_k`` members, one line each, best validation figure first."""
    if not population:
        return "(empty: no candidate has been accepted yet)"

    def key(m: MemberSummary) -> float:
        return m.val_metric if math.isfinite(m.val_metric) else -math.inf

    ranked = sorted(population, key=key, reverse=True)[:top_k]
    lines = [
        f"- iter {m.iteration}: val {metric} {format_number(m.val_metric)}, train {metric} "
        f"{format_number(m.train_metric)}, {m.val_trades} val trades: {one_line(m.description, DESCRIPTION_LIMIT)}"
        for m in ranked
    ]
    if len(population) > top_k:
        lines.append(f"- ... and {len(population) - top_k} more not shown")
    return "\n".join(lines)


def render(template: str, values: dict[str, str]) -> str:
    """Fill ``{{name}}`` placeholders in one pass, so values holding braces are never re-read."""
    return PLACEHOLDER.sub(lambda m: values.get(m.group(1), m.group(0)), template)


def context_values(ctx: ProposalContext) -> dict[str, str]:
    region = ctx.parent_region.strip("\n")
    if len(region) > PARENT_LIMIT:
        region = region[:PARENT_LIMIT].rstrip() + f"\n# [... parent region cut at {PARENT_LIMIT} characters ...]"
    return {
        "metric": ctx.metric,
        "cost_bps": f"{ctx.cost_bps:g}",
        "iteration": str(ctx.iteration),
        "parent_iteration": str(ctx.parent_iteration),
        "parent_region": region,
        "population": format_population(ctx.population, ctx.metric),
        "learnings": clip(ctx.learnings.strip(), LEARNINGS_LIMIT) or "(none yet)",
        "last_outcome": clip(ctx.last_outcome.strip(), OUTCOME_LIMIT) if ctx.last_outcome else "(none yet)",
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


def prompt_chars(messages: list[dict]) -> int:
    """Total characters of a request's messages (tokens are roughly a quarter of this)."""
    return sum(len(m["content"]) for m in messages)
