"""The portfolio task's contract, checked by the trusted parent: what the region defines, and whether
the weights its child returned are weights at all.

``allocate(day)`` returns target weights; the child driver turns a Series, dict or list into one row of
numbers per date (``driver.decode_weights``) and this module judges them: on every date an instrument
has a bar its weight is finite (NaN or missing is 0), lies in [-1, 1], and the gross exposure (the sum
of absolute weights) is at most the cap (``--max-gross``, default 1). Anything else is refused with a
reason naming the date, the instrument (by number, never by ticker) and the value.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

FUNCTIONS = ("generate_features", "allocate")  # what the region must define (the gate checks it)
DEFAULT_MAX_GROSS = 1.0
TOLERANCE = 1e-9  # float sums of weights meant to be exactly at a bound pass


class WeightsError(ValueError):
    """Weights that break the contract; ``date``, ``instrument`` (1..N) and ``value`` say where."""

    def __init__(self, message: str, date: str = "", instrument: int = 0, value: float = float("nan")) -> None:
        super().__init__(message)
        self.date, self.instrument, self.value = date, instrument, value


@dataclass(frozen=True)
class Calendar:
    """The union of the instruments' dates and which instrument has a bar on which of them."""

    dates: pd.Index
    present: np.ndarray  # (dates, instruments) bool
    rows: tuple[np.ndarray, ...]  # each instrument's bars as positions in ``dates``

    @classmethod
    def of(cls, frames: Sequence[pd.DataFrame]) -> Calendar:
        from alphaloop.tasks.portfolio.driver import union_calendar  # here: the registry reads FUNCTIONS alone

        dates = union_calendar(frames)
        rows = tuple(dates.get_indexer(f.index) for f in frames)
        present = np.zeros((len(dates), len(frames)), dtype=bool)
        for k, r in enumerate(rows):
            present[r, k] = True
        return cls(dates=dates, present=present, rows=rows)


def _day(dates: pd.Index, t: int) -> str:
    d = dates[t]
    return str(d.date()) if hasattr(d, "date") else str(d)


def validate_weights(raw: object, calendar: Calendar, max_gross: float = DEFAULT_MAX_GROSS) -> np.ndarray:
    """The child's weights as (dates, instruments) floats: 0 for a missing weight, NaN where an instrument
    has no bar; the first breach in date order raises ``WeightsError`` naming date, instrument and value."""
    shape = calendar.present.shape
    arr = np.asarray(raw)
    if arr.shape != shape or arr.dtype.kind not in "biuf":
        raise WeightsError(f"expected weights of shape {shape} (dates x instruments), got {arr.shape} {arr.dtype}")
    w = np.where(calendar.present, arr.astype(np.float64), np.nan)
    w[calendar.present & np.isnan(w)] = 0.0
    bad_value = calendar.present & (~np.isfinite(w) | (np.abs(w) > 1.0 + TOLERANCE))
    gross = np.nansum(np.abs(np.where(np.isfinite(w), w, 0.0)), axis=1)
    bad_gross = gross > max_gross + TOLERANCE
    first_value = int(np.argmax(bad_value.any(axis=1))) if bad_value.any() else shape[0]
    first_gross = int(np.argmax(bad_gross)) if bad_gross.any() else shape[0]
    if first_value <= first_gross and first_value < shape[0]:
        k = int(np.argmax(bad_value[first_value]))
        v = float(w[first_value, k])
        what = "is not finite" if not np.isfinite(v) else "is outside [-1, 1]"
        date = _day(calendar.dates, first_value)
        raise WeightsError(f"allocate on {date}: instrument {k + 1} weight {v:g} {what}", date, k + 1, v)
    if first_gross < shape[0]:
        row = np.where(calendar.present[first_gross], np.abs(w[first_gross]), 0.0)
        k = int(np.argmax(row))
        date = _day(calendar.dates, first_gross)
        raise WeightsError(f"allocate on {date}: gross exposure {gross[first_gross]:.4g} is above the cap "
                           f"{max_gross:g} (--max-gross); largest: instrument {k + 1} weight {w[first_gross, k]:g}",
                           date, k + 1, float(w[first_gross, k]))
    return w
