"""Thinning of the per-iteration series a chart draws, so a night of 100,000 iterations draws in seconds.

Why: the progress chart drew one marker per iteration: a night's 100,000 markers cost matplotlib seconds,
and a chart ~1,000 pixels wide with markers ~6 pixels wide shows no more than a few per column anyway.
The iteration axis is cut into ``SLICES`` equal slices and each series keeps, per slice, ``SLICE_POINTS``
of its points evenly spaced by rank: its lowest, its highest and the order statistics between (a dense
band stays dense, an outlier stays: keeping only each slice's lowest and highest drew a hollow band
where the points were thickest). Points that carry meaning one by one are always kept: ``keep`` (the
population, each step of the best so far). The best so far keeps each of its steps (a search's best
rises a few dozen times); only a best that rose more than ``2 * STRIP_BINS`` times keeps each bin's first
and last step (it only rises: those are its lowest and highest there). The rejection strip keeps one mark
per ``STRIP_BINS`` bin a stage occupies. Charts that thin say so, with how many points they drew of how
many (``thinned_words``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from alphaloop.present.report.data import rank_value, record_value

SLICES = 200  # slices of the iteration axis for the scatter series
SLICE_POINTS = 10  # points each series keeps per slice (beyond ``keep``): at most 2,000 a series
STRIP_BINS = 1000  # bins of the rejection strip (one mark per bin a stage occupies) and of the best's steps


def bins_of(x: np.ndarray, bins: int = STRIP_BINS, span: tuple[float, float] | None = None) -> np.ndarray:
    """The bin (0 .. bins - 1) of each x, bins of equal width over ``span`` (default: x's own range)."""
    x = np.asarray(x, dtype=np.float64)
    lo, hi = span if span is not None else ((x.min(), x.max()) if x.size else (0.0, 0.0))
    width = (hi - lo) / bins if hi > lo else 1.0
    return np.clip(((x - lo) / width).astype(np.int64), 0, bins - 1)


def by_rank(x: np.ndarray, y: np.ndarray, keep: np.ndarray | None = None, span: tuple[float, float] | None = None,
            slices: int = SLICES, per_slice: int = SLICE_POINTS) -> np.ndarray:
    """Indices (ascending) of the points to draw: in each slice of x, ``per_slice`` points evenly spaced by
    rank of y (the lowest and the highest among them), and every ``keep`` (a boolean mask). A series of at
    most ``slices * per_slice`` points is drawn whole."""
    x, y = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
    if x.size <= slices * per_slice:
        return np.arange(x.size)
    b = bins_of(x, slices, span)
    order = np.lexsort((y, b))  # by slice, then by y within it
    starts = np.flatnonzero(np.r_[True, b[order][1:] != b[order][:-1]])
    counts = np.diff(np.r_[starts, x.size])
    ranks = np.rint(np.linspace(0.0, 1.0, per_slice)[None, :] * (counts[:, None] - 1)).astype(np.int64)
    chosen = np.zeros(x.size, dtype=bool)
    chosen[order[(starts[:, None] + ranks).ravel()]] = True
    if keep is not None:
        chosen |= np.asarray(keep, dtype=bool)
    return np.flatnonzero(chosen)


def strip_marks(x: np.ndarray, span: tuple[float, float] | None = None, bins: int = STRIP_BINS) -> np.ndarray:
    """Of sorted iteration numbers, the first in each bin they occupy (all of them up to ``bins``)."""
    x = np.asarray(x)
    if x.size <= bins:
        return x
    return x[np.r_[True, np.diff(bins_of(x, bins, span)) != 0]]


def best_steps(x: np.ndarray, running: np.ndarray, bins: int = STRIP_BINS,
               span: tuple[float, float] | None = None) -> np.ndarray:
    """Indices of a best-so-far series to draw as a step line (``where="post"``): each point where it
    changes and the last one, which draw the same line as every point. A best that changed more than
    ``2 * bins`` times keeps each bin's first and last change (its lowest and highest there: it only rises)."""
    x, running = np.asarray(x, dtype=np.float64), np.asarray(running, dtype=np.float64)
    if x.size == 0:
        return np.arange(0)
    same = np.r_[False, (running[1:] == running[:-1]) | (np.isnan(running[1:]) & np.isnan(running[:-1]))]
    changes = np.flatnonzero(~same)
    if changes.size > 2 * bins:
        b = bins_of(x[changes], bins, span or (float(x.min()), float(x.max())))
        changes = changes[np.r_[True, b[1:] != b[:-1]] | np.r_[b[1:] != b[:-1], True]]
    return np.union1d(changes, [x.size - 1])


def thinned_words(drawn: int, of: int) -> str:
    """What a chart says when it drew fewer points than it has ("" when it drew every one)."""
    if drawn >= of:
        return ""
    return (f"; downsampled: {drawn:,} of {of:,} points drawn (in each of {SLICES} slices of the iteration axis, "
            f"{SLICE_POINTS} points of each series evenly spaced by rank from its lowest to its highest; every step "
            f"of the best so far and every population member; the strip marks each of {STRIP_BINS:,} bins a stage "
            "occupies)")


@dataclass(frozen=True)
class ProgressSeries:
    """The progress chart's series, one entry per record in iteration order (arrays, so thinning is vectorised)."""

    x: np.ndarray  # iteration numbers
    value: np.ndarray  # the validation selection metric (NaN when never scored)
    accepted: np.ndarray  # accepted (whether scored or not)
    in_population: np.ndarray  # entered the population when it was committed
    stage: np.ndarray  # the stage a rejected one stopped at (str)
    running: np.ndarray  # validation figure of the best so far by the population's ranking (NaN before any)
    improved: np.ndarray  # this record raised the best so far


def progress_series(records: Sequence[dict]) -> ProgressSeries:
    """The records' progress series; the best so far ranks as the population does (``rank_value``: strictly
    higher replaces) and shows the validation figure of the one it picked."""
    value = np.array([np.nan if (v := record_value(r)) is None else v for r in records], dtype=np.float64)
    accepted = np.array([r.get("status") == "accepted" for r in records], dtype=bool)
    rank = np.array([np.nan if (v := rank_value(r)) is None else v for r in records], dtype=np.float64)
    rank = np.where(accepted & np.isfinite(rank), rank, -np.inf)
    before = np.r_[-np.inf, np.maximum.accumulate(rank)[:-1]]
    improved = rank > before
    holder = np.maximum.accumulate(np.where(improved, np.arange(len(records)), -1))
    running = np.where(holder >= 0, value[np.maximum(holder, 0)], np.nan)
    return ProgressSeries(x=np.array([r["iteration"] for r in records], dtype=np.int64), value=value,
                          accepted=accepted, in_population=np.array([bool(r.get("in_population")) for r in records]),
                          stage=np.array([str(r.get("stage", "other")) for r in records], dtype=object),
                          running=running, improved=improved)
