"""The bar frequency of a price series, inferred from its dates, and the annualisation it implies.

Why: Sharpe, Sortino, CAGR and turnover are annualised by the number of bars in a year. Weekly bars
annualised with 252 overstate CAGR and Sharpe; a 7-day crypto calendar understated with 252. The
frequency is inferred from the dates alone (the typical gap, and for daily bars whether weekends
trade), recorded in the manifest, said on screen, and what cannot be inferred is refused.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from alphaloop.data.errors import DataError

DEFAULT_PERIODS_PER_YEAR = 252.0  # five trading days a week: the seed's constant, kept for daily stock data
# (name, typical gap in days, gaps counted as this frequency (inclusive), bars a year)
_KINDS = (("daily", 1, (1, 6), None), ("weekly", 7, (4, 11), 52.0), ("monthly", 30, (25, 35), 12.0))
MIN_CONSISTENT = 0.8  # share of gaps that must fit the inferred frequency, else it is refused as irregular
WEEKEND_7DAY = 0.2  # a 7-day calendar has 2/7 of its bars on weekends; 5-day markets almost none
WEEKEND_5DAY = 0.02


@dataclass(frozen=True)
class Frequency:
    """What the dates say: a name for the screen and the bars per year returns are annualised by."""

    name: str
    periods_per_year: float

    def to_json(self) -> dict:
        return {"frequency": self.name, "periods_per_year": self.periods_per_year}

    def line(self) -> str:
        return f"{self.name} bars, annualised with {self.periods_per_year:g} bars a year"


def infer_frequency(index: pd.DatetimeIndex, label: str = "data") -> Frequency:
    """The frequency of sorted, unique bar dates; DataError when the dates fit none."""
    if len(index) < 3:
        raise DataError(f"{label}: too few rows ({len(index)}) to tell the bar frequency")
    days = np.diff(index.as_unit("ns").asi8) / 86_400e9
    median = float(np.median(days))
    for name, _typical, (lo, hi), per_year in _KINDS:
        if not lo <= median <= hi:
            continue
        fit = float(np.mean((days >= lo if name != "daily" else days > 0) & (days <= hi)))
        if fit < MIN_CONSISTENT:
            break
        if name != "daily":
            return Frequency(name, per_year)
        weekend = float(np.mean(index.day_of_week >= 5))
        if weekend >= WEEKEND_7DAY:
            return Frequency("daily (7-day calendar)", 365.0)
        if weekend <= WEEKEND_5DAY:
            return Frequency("daily (5-day weeks)", DEFAULT_PERIODS_PER_YEAR)
        raise DataError(f"{label}: daily bars, but {weekend:.0%} of them fall on weekends (neither a 5-day "
                        f"market, about 0%, nor a 7-day one, about 29%); give --bars-per-year N to state it")
    raise DataError(f"{label}: cannot tell the bar frequency from the dates (typical gap {median:g} days; "
                    f"daily, weekly and monthly bars are recognised); give --bars-per-year N to state it")


def periods_per_year(index: pd.Index) -> float:
    """Bars a year for frames whose manifest is not at hand (the frozen splits): inferred, 252 when unsure
    (including an index that is not dates)."""
    if not isinstance(index, pd.DatetimeIndex):
        return DEFAULT_PERIODS_PER_YEAR
    try:
        return infer_frequency(index).periods_per_year
    except DataError:
        return DEFAULT_PERIODS_PER_YEAR
