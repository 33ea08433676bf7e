"""The trade task's invariance probes, dressed as panels: the same bars with other years of the same
calendar, at another price level, with history prepended or the first dates removed, on every
instrument at once. Allocate's weights must not move (``evaluate.invariance`` judges them).

The draws are the shared ones: ``evaluate.invariance.invariance_probes`` runs on a template frame
on the panel's union calendar, so one draw (one map of years, one level, one number of rows
prepended or removed) applies to every instrument and the union calendar of each probe panel is the
template probe's. A day-number or calendar lookup then loses its keys on every instrument together,
and a row-number key moves by the same offset on all of them, while cross-sectional comparisons
(ranks, spreads between instruments) are left exactly as they were.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from alphaloop.evaluate.invariance import (
    InvarianceFindings,
    InvarianceProbe,
    invariance_probes,
    judge_invariance,
    level_frame,
    prepended_frame,
)
from alphaloop.evaluate.probes import warmup_rows
from alphaloop.tasks.portfolio.driver import WEIGHTS, union_calendar

MIN_ROWS = 2  # an instrument the trim probe would leave with fewer bars makes the probe moot


@dataclass(frozen=True)
class PanelInvariance:
    """One invariance probe of the whole panel; ``probe`` is its shape on the union calendar (kind, start,
    offset, and a template frame whose index is the probe panel's union calendar)."""

    probe: InvarianceProbe
    frames: tuple[pd.DataFrame, ...]

    def describe(self) -> dict:
        return {**self.probe.describe(), "instruments": len(self.frames)}


@dataclass(frozen=True)
class Weights:
    """A panel run's weights under the name the shared judges read (``signals``), NaN where no bar."""

    signals: np.ndarray


def _relabelled(frame: pd.DataFrame, dates: pd.Index, moved: pd.Index) -> pd.DataFrame:
    out = frame.copy()
    out.index = pd.DatetimeIndex(moved[dates.get_indexer(frame.index)], name=frame.index.name)
    return out


def _prepended(frame: pd.DataFrame, prefix: pd.Index, seed: int) -> pd.DataFrame:
    out = prepended_frame(frame, len(prefix), seed)
    out.index = pd.DatetimeIndex(prefix.append(frame.index), name=frame.index.name)
    return out


def panel_invariance(frames: Sequence[pd.DataFrame], seed: int) -> list[PanelInvariance]:
    """The drawn calendar, the drawn level, history prepended and the first dates removed, each on every
    instrument with one draw (see the module docstring)."""
    dates = union_calendar(frames)
    if len(dates) <= MIN_ROWS:
        return []
    template = pd.DataFrame({"Close": np.ones(len(dates))}, index=pd.DatetimeIndex(dates, name="Date"))
    out = []
    for p in invariance_probes(template, seed, positions=True):
        if p.kind == "date_shift":
            panel = tuple(_relabelled(f, dates, p.frame.index) for f in frames)
        elif p.kind == "level":
            panel = tuple(level_frame(f, seed)[0] for f in frames)
        elif p.kind == "prepend":
            rng = np.random.default_rng([seed, 41])
            prefix = p.frame.index[: p.offset]
            panel = tuple(_prepended(f, prefix, int(rng.integers(2**31))) for f in frames)
        elif p.kind == "trim":
            panel = tuple(f.loc[dates[p.start]:] for f in frames)
            if min(len(f) for f in panel) < MIN_ROWS:
                continue
        else:
            continue
        out.append(PanelInvariance(p, panel))
    return out


def panel_warmup(frames: Sequence[pd.DataFrame], features: Sequence[Mapping[str, np.ndarray]],
                 dates: pd.Index) -> int:
    """The row of the union calendar ``dates`` by which every instrument's features have warmed up."""
    rows = [int(dates.get_indexer(f.index[[min(warmup_rows(cols), len(f) - 1)]])[0])
            for f, cols in zip(frames, features, strict=True) if len(f)]
    return max(rows, default=0)


def weights_words(reason: str) -> str:
    """The shared judges speak of signals; a portfolio's outputs are allocate's weights."""
    return reason.replace("signals", "allocate's weights", 1).replace("signals", "weights")


def judge_panel(frames: Sequence[pd.DataFrame], full: Mapping[str, np.ndarray],
                features: Sequence[Mapping[str, np.ndarray]], probes: Sequence[PanelInvariance],
                results: Sequence[Mapping[str, np.ndarray]]) -> InvarianceFindings:
    """Each probe's weights against the full run's (the shared rules: exact for other dates and levels; for
    history prepended or dates removed, changes that move with the rows or cover many dates)."""
    pairs = [(p.probe, Weights(np.asarray(r[WEIGHTS], dtype=np.float64))) for p, r in zip(probes, results, strict=True)]
    dates = union_calendar(frames)
    found = judge_invariance(Weights(np.asarray(full[WEIGHTS], dtype=np.float64)), pairs, dates,
                             panel_warmup(frames, features, dates))
    return InvarianceFindings(found.kinds, tuple((name, weights_words(why)) for name, why in found.failures))
