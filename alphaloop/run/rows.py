"""One iteration record as text: a results.tsv row, a description, the outcome line, a learnings entry.

Each is derived from the record alone, so a replay after a kill writes the same text.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from alphaloop.present.text import clip
from alphaloop.run.learnings import Entry
from alphaloop.run.records import IterationRecord

if TYPE_CHECKING:
    from alphaloop.tasks.protocol import Task


def describe(record: IterationRecord, limit: int = 100, baseline: str = "baseline") -> str:
    """A one-line description of what an iteration tried, for tables, summaries and the report
    (iteration 0 is the task's ``baseline``)."""
    if record.iteration == 0:
        return baseline
    p = record.proposal or {}
    text = p.get("change") or p.get("hypothesis") or p.get("error") or ""
    return clip(text, limit)


def outcome_line(record: IterationRecord, metric: str, task: Task) -> str:
    """The latest outcome as the next prompt and the live view show it."""
    n = record.iteration
    if not record.accepted:  # the reason may quote the candidate's own text: flatten and clip it
        return f"iter {n} rejected at {record.stage}: {clip(record.reason, 300)}"
    where = "entered the population" if record.in_population else "did not beat the population"
    if record.duplicate_of is not None:
        where = f"{record.copy_words}: the same validation outputs, so it adds nothing"
    elif record.disguised:
        where = f"kept out: {record.bh_disguise['reason']}"
    elif record.novelty_kind == "near_copy":
        where = record.novelty["reason"]
    bh = task.beside_benchmark(record.split("val"), metric) if record.scores else ""
    note = task.figures_note(record.split("val")) if record.scores else ""
    bh += f", {note}" if note else ""
    return f"iter {n} accepted, val {metric} {record.val_metric:.3f}{bh}; {where}"


def entry_from_record(record: IterationRecord, metric: str, task: Task) -> Entry:
    """The learnings entry for one iteration, derived from its record alone (so replays match)."""
    p = record.proposal or {}
    if record.accepted:
        val, train = record.split("val"), record.split("train")
        where = "entered the population" if record.in_population else "not in the top-K"
        if record.duplicate_of is not None:
            where += f" ({record.copy_words}: the same validation outputs)"
        elif record.disguised:
            where += " (buy and hold in disguise)"
        elif record.novelty_kind == "near_copy":
            where += f" (near copy of iter {record.novelty['member']})"
        note = task.figures_note(val)
        extra = f", {note}" if note else ""
        headline = (f"accepted, val {metric} {val[metric]:.3f}{task.beside_benchmark(val, metric)} "
                    f"(train {train[metric]:.3f}){extra}, {where}")
    else:
        headline = f"rejected at {record.stage}: {clip(record.reason, 200)}"
    val_split = record.split("val") or {}
    return Entry(
        iteration=record.iteration, parent=record.parent, headline=headline,
        hypothesis=p.get("hypothesis", ""), change=p.get("change", ""), expected=p.get("expected", ""),
        verdict=record.grading or "", held=record.hypothesis_held,
        status=record.status, stage=record.stage, reason=record.reason, metric=metric,
        val=_number(val_split.get(metric)), bh=_number(val_split.get(f"bh_{metric}")),
        selection=_number(record.selection), entered=record.entered, duplicate=record.duplicate_of is not None,
    )


def _number(value: object) -> float | None:
    """A figure the notes can compare (a per-horizon list or a missing value is not one)."""
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None
