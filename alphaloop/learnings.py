"""learnings.md: one entry per iteration, older entries compacted so the file stays bounded,
and each hypothesis graded against what actually happened on validation."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from alphaloop.proposers.base import Expectation
from alphaloop.text import clip, flat, safe

BUDGET_TOKENS = 3_000
CHARS_PER_TOKEN = 4  # a conservative rule of thumb for English and code
KEEP_RECENT = 6  # entries that always stay verbatim
SUMMARY_ITEMS = 24  # one-line items the deterministic summary keeps
PROMPT_TOKENS = 1_000  # the learnings a prompt carries: fixed, so prompts stay flat over a long run


def tokens(text: str) -> int:
    return len(text) // CHARS_PER_TOKEN + 1


def grade(expectation: Expectation | None, parent_val: dict | None, child_val: dict | None) -> tuple[bool | None, str]:
    """Did the validation metric move the way the proposal said? None when it cannot be told."""
    if expectation is None:
        return None, "no structured expectation given"
    if parent_val is None or child_val is None:
        return None, "not measurable (no validation figures for parent or candidate)"
    metric = expectation.metric
    if metric not in child_val or metric not in parent_val:
        return None, f"unknown metric {metric!r}"
    delta = float(child_val[metric]) - float(parent_val[metric])
    moved = delta * expectation.direction
    held = moved > 1e-12
    if held and expectation.magnitude is not None and abs(expectation.magnitude) > 0:
        held = moved >= 0.5 * abs(expectation.magnitude)
    way = "up" if expectation.direction > 0 else "down"
    size = f" by {expectation.magnitude:g}" if expectation.magnitude is not None else ""
    return held, f"expected val {metric} {way}{size}; it moved {delta:+.4g} -> {'held' if held else 'did not hold'}"


@dataclass
class Entry:
    """One iteration as the researcher should remember it."""

    iteration: int
    parent: int | None
    headline: str  # e.g. "accepted, val sharpe 0.61 (train 0.40), entered the population"
    hypothesis: str
    change: str
    expected: str
    verdict: str  # the grading sentence
    held: bool | None

    def render(self) -> str:
        """The markdown entry; every field is one safe line, so no text can forge a heading or an entry."""
        parent = f"parent {self.parent}" if self.parent is not None else "baseline"
        lines = [f"### iter {self.iteration} ({parent}): {flat(self.headline)}"]
        fields = (("Hypothesis", self.hypothesis), ("Change", self.change), ("Expected", self.expected),
                  ("Graded", self.verdict))
        for label, text in fields:
            if text:
                lines.append(f"- {label}: {clip(text, 400)}")
        return "\n".join(lines)

    def one_line(self) -> str:
        mark = {True: "held", False: "did not hold", None: "ungraded"}[self.held]
        what = clip(self.change or self.hypothesis or "(no description)", 110)
        return f"- iter {self.iteration}: {what} -> {clip(self.headline, 90)} [{mark}]"

    def to_json(self) -> dict:
        return self.__dict__.copy()


def deterministic_summary(previous: str, old: list[Entry], budget_chars: int) -> str:
    """Fold old entries into the summary without an LLM: tallies plus the latest one-liners."""
    items = [line for line in previous.splitlines() if line.startswith("- iter ")]
    items += [e.one_line() for e in old]
    tally = [line for line in previous.splitlines() if line.startswith("Compacted so far:")]
    counts = {"held": 0, "not": 0, "ungraded": 0, "n": 0}
    if tally:
        try:
            parts = dict(p.split("=") for p in tally[0].split(":", 1)[1].split())
            counts = {k: int(parts.get(k, 0)) for k in counts}
        except ValueError:
            pass
    for e in old:
        counts["n"] += 1
        counts["held" if e.held else "not" if e.held is False else "ungraded"] += 1
    keep = items[-SUMMARY_ITEMS:]
    head = f"Compacted so far: n={counts['n']} held={counts['held']} not={counts['not']} ungraded={counts['ungraded']}"
    text = "\n".join([head, *keep])
    while len(text) > budget_chars and len(keep) > 1:
        keep = keep[1:]
        text = "\n".join([head, *keep])
    return text


class Learnings:
    """Bounded learnings: a summary of the past plus the most recent entries verbatim."""

    def __init__(self, summary: str = "", entries: list[Entry] | None = None, hits: int = 0, graded: int = 0) -> None:
        self.summary = summary
        self.entries = entries or []
        self.hits = hits
        self.graded = graded

    def add(self, entry: Entry, compactor: Callable[[str, int], str | None] | None = None) -> None:
        self.entries.append(entry)
        if entry.held is not None:
            self.graded += 1
            self.hits += int(entry.held)
        self._compact(compactor)

    def hit_rate(self) -> str:
        if not self.graded:
            return "no graded hypotheses yet"
        return f"{self.hits}/{self.graded} hypotheses held ({self.hits / self.graded:.0%})"

    def _compact(self, compactor: Callable[[str, int], str | None] | None) -> None:
        budget = BUDGET_TOKENS * CHARS_PER_TOKEN
        if len(self.render()) <= budget or len(self.entries) <= KEEP_RECENT:
            return
        old, self.entries = self.entries[:-KEEP_RECENT], self.entries[-KEEP_RECENT:]
        summary_budget = budget // 3
        summary = None
        if compactor is not None:
            text = "\n\n".join([self.summary, *(e.render() for e in old)]).strip()
            summary = compactor(text, summary_budget // CHARS_PER_TOKEN)
            if summary is not None and len(summary) > summary_budget:
                summary = None
        # a model's reply: keep its line breaks, drop every escape and control character
        self.summary = safe(summary, keep="\n").strip() if summary else deterministic_summary(self.summary, old,
                                                                                               summary_budget)

    def prompt_view(self, max_tokens: int = PROMPT_TOKENS) -> str:
        """A fixed-size view for the prompt: hit rate, the summary's newest part, the newest entries.

        learnings.md itself may hold ~3,000 tokens; a prompt carrying all of it would grow for the
        first few dozen iterations and then saw-tooth, so the prompt gets a constant-size window.
        """
        budget = max_tokens * CHARS_PER_TOKEN
        head = f"Researcher hit rate: {self.hit_rate()}."
        summary = ""
        if self.summary:
            lines = safe(self.summary, keep="\n").splitlines()
            keep: list[str] = []
            for line in reversed(lines[1:]):
                if sum(len(k) + 1 for k in keep) + len(line) > budget // 3:
                    break
                keep.insert(0, line)
            summary = "\n".join(["Earlier iterations (summary):", lines[0], *keep])
        room = budget - len(head) - len(summary)
        recent: list[str] = []
        for e in reversed(self.entries):
            text = e.render()
            if recent and sum(len(r) + 2 for r in recent) + len(text) > room:
                break
            recent.insert(0, text if len(text) <= room else _whole_lines(text, room))
        recent_text = "Recent iterations:\n" + "\n\n".join(recent) if recent else ""
        return "\n\n".join(part for part in (head, summary, recent_text) if part)

    def render(self, rule: str = "") -> str:
        """The markdown file; ``rule`` is a header line, e.g. the loop's rule for iterations in flight."""
        parts = ["# Learnings", "", *([rule, ""] if rule else []),
                 f"Researcher hit rate: {self.hit_rate()} (graded on the validation split).", ""]
        if self.summary:
            parts += ["## Summary of earlier iterations", "", safe(self.summary, keep="\n"), ""]
        parts += ["## Recent iterations", ""]
        parts += [e.render() + "\n" for e in self.entries]
        return "\n".join(parts).rstrip() + "\n"

    def to_json(self) -> dict:
        return {"summary": self.summary, "entries": [e.to_json() for e in self.entries], "hits": self.hits,
                "graded": self.graded}

    @classmethod
    def from_json(cls, d: dict) -> Learnings:
        entries = [Entry(**e) for e in d.get("entries", [])]
        return cls(d.get("summary", ""), entries, d.get("hits", 0), d.get("graded", 0))


def _whole_lines(text: str, room: int) -> str:
    """The entry's first lines that fit in ``room`` characters, so a long entry is shortened, never cut mid-word."""
    kept: list[str] = []
    for line in text.splitlines():
        if sum(len(k) + 1 for k in kept) + len(line) > room:
            break
        kept.append(line)
    return "\n".join(kept) if kept else clip(text, room)
