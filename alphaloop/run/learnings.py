"""learnings.md: a distilled head kept current at every iteration, the model's lessons, a bounded
log of older iterations and the recent ones verbatim.

Replay is a pure fold: ``add(entry, compacted)`` takes the compactor's text as data (stored in the
iteration record that produced it, ``learnings_compacted``), so resuming never calls a model and
the same records always give the same notes. The live loop asks ``compaction_request`` first and
calls the model only when a compaction is due.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Callable
from dataclasses import dataclass

from alphaloop.present.text import clip, safe
from alphaloop.run.distilled import DISTILLED_CHARS, Distilled
from alphaloop.run.grading import Tally, grade
from alphaloop.run.quoting import harness_only, inert, plain

__all__ = ["Entry", "Learnings", "grade", "tokens"]

BUDGET_TOKENS = 3_000  # learnings.md as a whole
CHARS_PER_TOKEN = 4  # a conservative rule of thumb for English and code
KEEP_RECENT = 6  # entries that always stay verbatim in the file
SUMMARY_ITEMS = 24  # one-line items the deterministic log of older iterations keeps
LESSONS_CHARS = 1_200  # what the compactor is asked to write; the prompt carries it whole
RECENT_IN_PROMPT = 5  # recent entries the prompt shows, before and after any compaction
ENTRY_PROMPT_CHARS = 700  # one recent entry as the prompt shows it (fields clipped at word boundaries)
FRAMING = 300  # headings and the hit-rate line
# The most characters prompt_view() returns, by construction; prompting.py uses it as its cap.
PROMPT_CHARS = DISTILLED_CHARS + LESSONS_CHARS + RECENT_IN_PROMPT * (ENTRY_PROMPT_CHARS + 2) + FRAMING

FILE_WIDTHS = {"headline": 400, "Hypothesis": 400, "Change": 400, "Expected": 400, "Graded": 400}
PROMPT_WIDTHS = {"headline": 170, "Hypothesis": 150, "Change": 110, "Expected": 80, "Graded": 130}


def tokens(text: str) -> int:
    return len(text) // CHARS_PER_TOKEN + 1


@dataclass
class Entry:
    """One iteration as the researcher should remember it (derived from its record alone)."""

    iteration: int
    parent: int | None
    headline: str  # e.g. "accepted, val sharpe 0.61 (train 0.40), entered the population"
    hypothesis: str
    change: str
    expected: str
    verdict: str  # the grading sentence
    held: bool | None
    status: str = ""  # accepted / rejected ("" in entries written before the distilled section)
    stage: str = ""
    reason: str = ""
    metric: str = ""
    val: float | None = None  # the selection metric on validation, when scored
    bh: float | None = None  # buy and hold's figure for it on validation
    selection: float | None = None  # what the population ranks by
    entered: bool = False
    duplicate: bool = False  # same validation positions as an earlier candidate: no idea of its own to judge

    def render(self, widths: dict[str, int] | None = None, prompt: bool = False) -> str:
        """The markdown entry; every field is one safe, inert line (no HTML, link or image), so no text
        can forge a heading or an entry. In a ``prompt`` a rejection's reason keeps only the harness's
        words: the candidate's own (names, messages) reach a prompt only inside its latest-outcome block."""
        w = widths or FILE_WIDTHS
        parent = f"parent {self.parent}" if self.parent is not None else "baseline"
        headline = self.headline
        if prompt and self.status and self.status != "accepted":
            headline = f"rejected at {self.stage}: {harness_only(self.reason or self.headline)}"
        line = plain if prompt else inert  # a prompt is read as written: escapes would reach the model
        lines = [f"### iter {self.iteration} ({parent}): {line(clip(headline, w['headline']))}"]
        fields = (("Hypothesis", self.hypothesis), ("Change", self.change), ("Expected", self.expected),
                  ("Graded", self.verdict))
        for label, text in fields:
            if text:
                lines.append(f"- {label}: {line(clip(text, w[label]))}")
        return "\n".join(lines)

    def one_line(self) -> str:
        mark = {True: "held", False: "did not hold", None: "ungraded"}[self.held]
        what = clip(self.change or self.hypothesis or "(no description)", 110)
        return f"- iter {self.iteration}: {what}; {clip(self.headline, 90)} [{mark}]"

    def to_json(self) -> dict:
        return self.__dict__.copy()


def deterministic_summary(previous: str, old: list[Entry], budget_chars: int) -> str:
    """Fold old entries into the log of older iterations without an LLM: tallies plus the latest one-liners."""
    items = [line for line in previous.splitlines() if line.startswith("- iter ")]
    items += [e.one_line() for e in old]
    tally = [line for line in previous.splitlines() if line.startswith("Compacted so far:")]
    counts = _tally_counts(tally[0]) if tally else {"held": 0, "not": 0, "ungraded": 0, "n": 0}
    for e in old:
        counts["n"] += 1
        counts["held" if e.held else "not" if e.held is False else "ungraded"] += 1
    keep = items[-SUMMARY_ITEMS:]
    head = (f"Compacted so far: {counts['n']} iteration{'s' if counts['n'] != 1 else ''} folded into the lines below; "
            f"their hypotheses: {counts['held']} held, {counts['not']} did not hold, {counts['ungraded']} ungraded")
    text = "\n".join([head, *keep])
    while len(text) > budget_chars and len(keep) > 1:
        keep = keep[1:]
        text = "\n".join([head, *keep])
    return text


_TALLY_WORDS = re.compile(r"(\d+) iterations? folded.*?(\d+) held, (\d+) did not hold, (\d+) ungraded")


def _tally_counts(line: str) -> dict[str, int]:
    """The counts of a "Compacted so far" line, in words or as the older ``n=8 held=2 not=5 ungraded=1``."""
    words = _TALLY_WORDS.search(line)
    if words:
        return dict(zip(("n", "held", "not", "ungraded"), map(int, words.groups()), strict=True))
    try:
        parts = dict(p.split("=") for p in line.split(":", 1)[1].split())
        return {k: int(parts.get(k, 0)) for k in ("held", "not", "ungraded", "n")}
    except ValueError:
        return {"held": 0, "not": 0, "ungraded": 0, "n": 0}


@dataclass
class CompactionRequest:
    """What the live loop hands the compactor when the next entry triggers a compaction."""

    text: str
    budget_tokens: int


class Learnings:
    """Bounded learnings: distilled facts, the model's lessons, a log of the past, the recent entries verbatim."""

    def __init__(self, summary: str = "", entries: list[Entry] | None = None, hits: int = 0, graded: int = 0,
                 *, lessons: str = "", lessons_at: int | None = None, tally: Tally | None = None,
                 distilled: Distilled | None = None) -> None:
        self.earlier = summary  # the deterministic log of compacted iterations (file only)
        self.lessons = lessons  # the compactor's rewrite of the notes, shown whole in the prompt
        self.lessons_at = lessons_at
        self.entries = entries or []
        self.tally = tally or Tally(held=hits, graded=graded)
        self.distilled = distilled or Distilled()
        self._text: str | None = None  # render()'s text until the next fold: a fold measures it, learnings.md is it

    @property
    def summary(self) -> str:
        """The model's lessons when a compactor wrote them, else the deterministic log."""
        return self.lessons or self.earlier

    @property
    def hits(self) -> int:
        return self.tally.held

    @property
    def graded(self) -> int:
        return self.tally.graded

    # ----- the fold ----------------------------------------------------------------------
    def _due(self) -> bool:
        if len(self.entries) <= KEEP_RECENT:
            return False
        return len(self.render()) > BUDGET_TOKENS * CHARS_PER_TOKEN

    def compaction_request(self, entry: Entry) -> CompactionRequest | None:
        """The text to compact if adding ``entry`` will compact the notes, else None (no model call due).

        Decided on a copy folded exactly as ``add`` will fold, so the request and the fold always agree."""
        probe = copy.deepcopy(self)
        probe.add(entry)
        if len(probe.entries) == len(self.entries) + 1:
            return None
        old = (self.entries + [entry])[:-KEEP_RECENT]
        facts = "\n".join(probe.distilled.lines(probe.hit_rate()))
        parts = ["Distilled facts (kept by the loop, always shown):", facts]
        if self.lessons:
            parts += ["Your previous lessons:", self.lessons]
        parts += ["Iterations now leaving the recent window:", *(e.render() for e in old)]
        return CompactionRequest("\n\n".join(parts), LESSONS_CHARS // CHARS_PER_TOKEN)

    def add(self, entry: Entry, compacted: str | None | Callable[[str, int], str | None] = None, *,
            compactor: Callable[[str, int], str | None] | None = None) -> None:
        """Fold one entry in. ``compacted`` is the compactor's reply stored with the record (None: the
        deterministic fold alone). A callable (or ``compactor``) is asked at once when a compaction is
        due: for callers outside the loop, whose replay must never call a model."""
        ask = compactor or (compacted if callable(compacted) else None)
        if ask is not None:
            request = self.compaction_request(entry)
            compacted = ask(request.text, request.budget_tokens) if request is not None else None
        self._text = None
        self.entries.append(entry)
        if entry.iteration > 0:
            self.tally.add(entry.held, entry.status == "rejected")
        self.distilled.add(entry)
        if not self._due():
            return
        old, self.entries, self._text = self.entries[:-KEEP_RECENT], self.entries[-KEEP_RECENT:], None
        budget = BUDGET_TOKENS * CHARS_PER_TOKEN
        self.earlier = deterministic_summary(self.earlier, old, budget // 3)
        if compacted and len(compacted.strip()) <= LESSONS_CHARS:
            self.lessons = _lessons(compacted)
            self.lessons_at = entry.iteration

    def hit_rate(self) -> str:
        return self.tally.text()

    # ----- views -------------------------------------------------------------------------
    def _distilled_block(self, prompt: bool = False) -> list[str]:
        line = plain if prompt else inert
        lines = [line(text) for text in self.distilled.lines(self.hit_rate())]
        if self.lessons:
            lessons = "\n".join(plain(t) for t in self.lessons.split("\n")) if prompt else inert_lines(self.lessons)
            lines += ["", f"Lessons (the model's rewrite of the notes at iter {self.lessons_at}):", lessons]
        return lines

    def prompt_view(self, max_tokens: int | None = None) -> str:
        """What a prompt carries: the distilled section whole, then the same number of recent entries
        (RECENT_IN_PROMPT) before and after any compaction; at most PROMPT_CHARS by construction."""
        parts = ["Distilled notes (the whole run so far):", "\n".join(self._distilled_block(prompt=True))]
        recent = [_whole_lines(e.render(PROMPT_WIDTHS, prompt=True), ENTRY_PROMPT_CHARS)
                  for e in self.entries[-RECENT_IN_PROMPT:]]
        if recent:
            parts.append("Recent iterations:\n" + "\n\n".join(recent))
        text = "\n\n".join(parts)
        limit = (max_tokens * CHARS_PER_TOKEN) if max_tokens else PROMPT_CHARS
        return text if len(text) <= limit else _whole_lines(text, limit)

    def _render(self, entries: list[Entry]) -> str:
        parts = ["# Learnings", "", "## Distilled (kept current at every iteration; validation split)", "",
                 *self._distilled_block(), ""]
        if self.earlier:
            parts += ["## Earlier iterations, one line each", "", inert_lines(self.earlier), ""]
        parts += ["## Recent iterations", ""]
        parts += [e.render() + "\n" for e in entries]
        return "\n".join(parts).rstrip() + "\n"

    def render(self) -> str:
        """learnings.md's text, rendered once per fold (``add`` measures it, the loop then writes it)."""
        if self._text is None:
            self._text = self._render(self.entries)
        return self._text

    def to_json(self) -> dict:
        return {"summary": self.earlier, "lessons": self.lessons, "lessons_at": self.lessons_at,
                "entries": [e.to_json() for e in self.entries], "hits": self.hits, "graded": self.graded,
                "tally": self.tally.to_json(), "distilled": self.distilled.to_json()}

    @classmethod
    def from_json(cls, d: dict) -> Learnings:
        entries = [Entry(**e) for e in d.get("entries", [])]
        tally = Tally.from_json(d["tally"]) if "tally" in d else None
        return cls(d.get("summary", ""), entries, d.get("hits", 0), d.get("graded", 0), lessons=d.get("lessons", ""),
                   lessons_at=d.get("lessons_at"), tally=tally, distilled=Distilled.from_json(d.get("distilled")))


def inert_lines(text: str) -> str:
    """Several lines, each made inert (``quoting.inert``), their breaks kept."""
    return "\n".join(inert(line) for line in safe(text, keep="\n").split("\n"))


def _lessons(text: str) -> str:
    """A model's reply as notes: its line breaks kept, every escape and control character dropped, and
    a line that would read as a markdown heading turned into a bullet, so it cannot forge an entry."""
    lines = []
    for line in safe(text, keep="\n").strip().splitlines():
        stripped = line.lstrip()
        lines.append("- " + stripped.lstrip("#").strip() if stripped.startswith("#") else line.rstrip())
    return "\n".join(lines)


def _whole_lines(text: str, room: int) -> str:
    """The text's first lines that fit in ``room`` characters, so a long text is shortened, never cut mid-word."""
    kept: list[str] = []
    for line in text.splitlines():
        if sum(len(k) + 1 for k in kept) + len(line) > room:
            break
        kept.append(line)
    return "\n".join(kept) if kept else clip(text, room)

