"""Grading a hypothesis against what happened on validation, and the hit rate: one rule, one tally.

Why one module: the loop grades, ``learnings.md``, the live view, the end-of-run summary and the
report all show the hit rate, and the prompt states the rule to the model; they must agree.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

HALF = 0.5  # share of a stated size the metric must reach for the hypothesis to hold
EPS = 1e-12  # a move smaller than this is no move (float noise of an unchanged figure)
REJECTED_MARK = " (graded on a rejected candidate: it was scored, then refused)"

GRADING_RULE = (
    "Each hypothesis is graded by its `Expect:` line against the parent, on the validation split: it holds only "
    "if that metric moved the stated way and, when you gave a size, by at least half of it (`Expect: sharpe up "
    "0.2` holds from +0.1; +0.05 does not, nor does a move the other way). A rejected candidate's hypothesis is "
    "graded only when the candidate was scored, and is marked so; without a readable `Expect:` line, or when "
    "the candidate was never scored, it is ungraded. The hit rate counts graded and ungraded hypotheses apart."
)


class Expected(Protocol):
    """What ``grade`` reads of a hypothesis (``proposers.base.Expectation``), named here so that the
    prompt builder can import the rule without importing the proposers."""

    metric: str
    direction: int
    magnitude: float | None


def grade(expectation: Expected | None, parent_val: Mapping[str, Any] | None,
          child_val: Mapping[str, Any] | None, *, rejected: bool = False) -> tuple[bool | None, str]:
    """Did the named validation metric move the stated way (by at least half the stated size)?

    None when it cannot be told: no expectation, no figures for parent or candidate (a candidate
    refused before scoring), or a metric the scorer does not report. ``rejected`` marks a verdict
    on a candidate that was scored and then refused (by a guard, say), so nobody reads it as a kept idea.
    """
    if expectation is None:
        return None, "no structured expectation given"
    if parent_val is None or child_val is None:
        return None, "not measurable (no validation figures for parent or candidate)"
    metric = expectation.metric
    if child_val.get(metric) is None or parent_val.get(metric) is None:
        return None, f"unknown metric {metric!r}"
    delta = float(child_val[metric]) - float(parent_val[metric])
    moved = delta * expectation.direction
    held = moved > EPS
    if held and expectation.magnitude is not None and abs(expectation.magnitude) > 0:
        held = moved >= HALF * abs(expectation.magnitude) - 1e-9  # exactly half holds, float rounding aside
    way = "up" if expectation.direction > 0 else "down"
    size = f" by {expectation.magnitude:g}" if expectation.magnitude is not None else ""
    verdict = f"expected val {metric} {way}{size}; it moved {delta:+.4g}: {'held' if held else 'did not hold'}"
    return held, verdict + (REJECTED_MARK if rejected else "")


@dataclass
class Tally:
    """Hypotheses graded (and of those, held and graded on a rejected candidate) and ungraded."""

    held: int = 0
    graded: int = 0
    ungraded: int = 0
    graded_rejected: int = 0

    def add(self, held: bool | None, rejected: bool = False) -> None:
        if held is None:
            self.ungraded += 1
            return
        self.graded += 1
        self.held += int(held)
        self.graded_rejected += int(rejected)

    def text(self) -> str:
        """The hit rate as every view prints it: held over graded, with the ungraded beside it."""
        if not self.graded:
            none = "no graded hypotheses yet"
            return f"{none} ({self.ungraded} ungraded)" if self.ungraded else none
        out = f"{self.held}/{self.graded} hypotheses held ({self.held / self.graded:.0%}); {self.ungraded} ungraded"
        if self.graded_rejected:
            out += f"; {self.graded_rejected} of the graded on rejected (scored) candidates"
        return out

    def short(self) -> str:
        """The figure alone, for a table cell: ``held/graded (pct), N ungraded``."""
        if not self.graded:
            return f"-, {self.ungraded} ungraded" if self.ungraded else "-"
        return f"{self.held}/{self.graded} ({self.held / self.graded:.0%}), {self.ungraded} ungraded"

    def to_json(self) -> dict[str, int]:
        return dict(self.__dict__)

    @classmethod
    def from_json(cls, d: Mapping[str, Any] | None) -> Tally:
        d = d or {}
        return cls(**{k: int(d.get(k, 0)) for k in ("held", "graded", "ungraded", "graded_rejected")})


def counts(record: Mapping[str, Any] | Any) -> bool:
    """Whether an iteration carries a hypothesis to grade: every proposal after the baseline does."""
    return _get(record, "iteration", 0) > 0


def tally(records: Iterable[Mapping[str, Any] | Any]) -> Tally:
    """The hit rate of a run, counted from its iteration records (dicts or typed records)."""
    out = Tally()
    for r in records:
        if counts(r):
            out.add(_get(r, "hypothesis_held"), _get(r, "status") != "accepted")
    return out


def _get(record: Mapping[str, Any] | Any, name: str, default: Any = None) -> Any:
    """A field of a record dict or of a typed record (the loop moves from one to the other)."""
    if isinstance(record, Mapping):
        return record.get(name, default)
    return getattr(record, name, default)
