"""Invariance probes: the same bars dressed differently must get the same outputs.

A candidate's outputs (a strategy's signals, a forecaster's probabilities) must follow the prices,
not where the bars sit, which dates they carry or at what level they trade. Each probe is a frame
holding the full history's bars, rerun by the look-ahead stage in the sandbox and judged here:

* ``date_shift``: every year of the history is replaced by a year drawn for this run (from the
  run's secret nonce) with the very same calendar (same weekday for every month and day, same leap
  status), years kept in order. Weekdays, months, days of month and days of year are unchanged;
  the year, and any day number (days since an epoch, modulo anything but 7), moves by a different
  amount in different years, so a lookup keyed by dates or day numbers loses its keys. Gaps between
  bars change only where a year ends (a window measured in days, ``rolling('30D')``, sees them).
* ``level``: every price multiplied by one drawn power of two and the volume by another (returns,
  ratios and every float comparison unchanged, exactly), so a lookup keyed by price or volume levels
  loses its keys, and an absolute price threshold shows as such.
* ``prepend`` / ``trim``: a seeded random-walk history glued before the first bar, or the first
  rows removed, each a prime number of rows (so code keyed to the row number modulo anything
  smaller moves). Code tied to row numbers (``np.arange(len(df))``, a literal tuple of rows, a call
  counter, odd rows) moves with the rows: each change it makes reappears ``offset`` bars away, or its
  changes line up (runs, periods). A history-dependent statistic that converges (an expanding
  z-score or quantile) flips scattered bars near its thresholds instead, and is accepted, however
  many.
"""

from __future__ import annotations

import datetime
import functools
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from alphaloop.evaluate.probes import PRICE_COLUMNS, FrameLike

PREPEND_ROWS = (50, 150)  # range of the drawn length of the prepended history
TRIM_ROWS = (20, 60)  # range of the drawn number of rows removed at the start
SETTLE_ROWS = 300  # after the warm-up: min_periods windows fill up and ewm forgets a different start
CALENDAR_YEARS = (1901, 2099)  # within these years the Gregorian calendar repeats every 28 years
LEVEL_EXPONENTS = (1, 2)  # the level probe multiplies by 2**k, |k| drawn from these, either way
# Why powers of two: multiplying every input by 2**k scales every float result exactly, so a ratio,
# a crossover or a tie of two moving averages rounds the same way and an ordinary rule cannot flip on a
# tie (any other factor flipped 8 bars of an SMA 20/50 crossover over 300 seeded series of cent prices).
PATTERN_LAGS = 64  # lags scanned for a pattern in where a position probe's changes fall
PATTERN_SHARE = 0.75  # ... a pattern: this share of the changed bars has another change one lag away
PATTERN_MIN = 12  # ... among at least this many changed bars (fewer can line up by chance)
# Measured (1,000-bar histories, 12 nonces, both position probes): an expanding z-score's or quantile's
# changes share a lag at most 0.45 of the time; odd rows, every third row, row % 7, a step at a row 0.95-1.0.
FORECAST_SLACK = 3.0  # a forecast may move by this x |offset| / (rows before it) on a position probe
# Why: an expanding frequency over t rows moves by at most |offset| / t when |offset| rows are added or removed
# (a state's frequency by its share of them); measured max 1.26x over the offline forecast proposer's candidates
# and expanding/rolling climatologies (4 seeds, both probes); a memorised row table's overrides reach 4.6-23x.
OUTPUT_RTOL = 1e-9  # recomputed probabilities agree to float noise; signals exactly
DATE_SHIFT_YEARS = 28  # the fallback shift (a whole calendar cycle) for dates outside CALENDAR_YEARS
DATE_SHIFT_DAYS = 10227  # DATE_SHIFT_YEARS in days: 1461 whole weeks


@dataclass(frozen=True)
class InvarianceProbe:
    """A frame holding the full history's bars ``start ..`` at rows ``start + offset ..``."""

    frame: pd.DataFrame
    kind: str  # "date_shift" | "level" | "prepend" | "trim"
    start: int  # first full-history row the probe holds
    offset: int  # probe row = full row + offset
    note: str = ""  # what was drawn, in words, for the reason and the record

    def describe(self) -> dict:
        """JSON-serialisable summary for the iteration record."""
        return {"kind": self.kind, "rows": int(len(self.frame)), "start": int(self.start), "offset": int(self.offset),
                "drawn": self.note}


def calendar_key(year: int) -> tuple[int, bool]:
    """A year's calendar: the weekday of its 1 January and whether it is a leap year."""
    leap = year % 4 == 0 and (year % 100 != 0 or year % 400 == 0)
    return datetime.date(year, 1, 1).weekday(), leap


def drawn_years(years: Sequence[int], rng: np.random.Generator, off_cycle: bool = True) -> dict[int, int] | None:
    """An increasing map of ``years`` onto years with the same calendar, drawn uniformly among all
    such maps within ``CALENDAR_YEARS``; None when a year lies outside them or no map exists.

    ``off_cycle``: a common year never maps to a year a multiple of 28 away (a whole calendar cycle,
    10227 days, which a day number modulo 10227 survives); a leap year's calendar recurs only every
    28 years within 1901-2099, so leap years keep such shifts."""
    lo, hi = CALENDAR_YEARS
    if not years or min(years) < lo or max(years) > hi:
        return None
    pool, weekday, leap = _calendars()

    def same_calendar(y: int) -> np.ndarray:
        day, is_leap = calendar_key(y)
        cycle = (pool - y) % 28 == 0
        return pool[(weekday == day) & (leap == is_leap) & ~(cycle & (off_cycle and not is_leap))]

    cands = [same_calendar(int(y)) for y in years]
    if any(c.size == 0 for c in cands):
        return None
    ways = [np.ones(len(cands[-1]))]  # ways[i][j]: increasing maps of years i.. starting at cands[i][j]
    for i in range(len(years) - 2, -1, -1):
        after, w_after = cands[i + 1], ways[0]
        tail = np.r_[np.cumsum(w_after[::-1])[::-1], 0.0]  # sum of ways over candidates >= position
        w = tail[np.searchsorted(after, cands[i], side="right")]
        total = w.sum()
        if total <= 0:
            return None
        ways.insert(0, w / total)
    chosen: list[int] = []
    for i, w in enumerate(ways):
        allowed = cands[i] > (chosen[-1] if chosen else lo - 1)
        p = np.where(allowed, w, 0.0)
        if p.sum() <= 0:
            return None
        chosen.append(int(rng.choice(cands[i], p=p / p.sum())))
    return dict(zip((int(y) for y in years), chosen, strict=True))


@functools.lru_cache(maxsize=1)
def _calendars() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Every year of ``CALENDAR_YEARS`` with its calendar (``calendar_key``) as arrays, built once."""
    pool = np.arange(CALENDAR_YEARS[0], CALENDAR_YEARS[1] + 1)
    weekday, leap = zip(*(calendar_key(int(y)) for y in pool), strict=True)
    return pool, np.array(weekday), np.array(leap)


def date_shifted_frame(frame: pd.DataFrame) -> pd.DataFrame:
    """The same bars with every date moved ``DATE_SHIFT_YEARS`` (forward, or back if that would pass 2099)."""
    out = frame.copy()
    days = DATE_SHIFT_DAYS if frame.index.max().year + DATE_SHIFT_YEARS <= 2099 else -DATE_SHIFT_DAYS
    out.index = pd.DatetimeIndex(frame.index + pd.Timedelta(days=days), name=frame.index.name)
    return out


def calendar_remapped_frame(frame: pd.DataFrame, seed: int) -> tuple[pd.DataFrame, str]:
    """The same bars with each year replaced by a drawn year of the same calendar (see the module
    docstring), and the map in words; the fixed 28-year shift when the dates leave 1901-2099."""
    year_of_row = frame.index.year.to_numpy()
    years = [int(y) for y in np.unique(year_of_row)]
    rng = np.random.default_rng([seed, 28])
    mapping = None
    for _ in range(4):  # an identity map would prove nothing
        mapping = drawn_years(years, rng) or drawn_years(years, rng, off_cycle=False)
        if mapping is None or any(k != v for k, v in mapping.items()):
            break
    if mapping is None:
        return date_shifted_frame(frame), f"every date moved {DATE_SHIFT_YEARS} years"
    out = frame.copy()
    shift = {y: (pd.Timestamp(year=z, month=1, day=1) - pd.Timestamp(year=y, month=1, day=1)).days
             for y, z in mapping.items()}
    days = np.asarray([shift[y] for y in years], dtype=np.int64)[np.searchsorted(years, year_of_row)]
    out.index = pd.DatetimeIndex(frame.index + pd.to_timedelta(days, unit="D"), name=frame.index.name)
    first, last = years[0], years[-1]
    return out, f"years {first}-{last} carried as {mapping[first]}-{mapping[last]}, each year its own draw"


def level_frame(frame: pd.DataFrame, seed: int) -> tuple[pd.DataFrame, str]:
    """Every price times one drawn factor and the volume times another: returns and ratios unchanged."""
    rng = np.random.default_rng([seed, 31])
    price, volume = (2.0 ** int(rng.choice([-1, 1]) * rng.integers(LEVEL_EXPONENTS[0], LEVEL_EXPONENTS[1] + 1))
                     for _ in range(2))
    out = frame.copy()
    for col in frame.columns:
        if col in PRICE_COLUMNS and pd.api.types.is_numeric_dtype(frame[col]):
            out[col] = frame[col].to_numpy(dtype=np.float64) * price
    if "Volume" in frame.columns and pd.api.types.is_numeric_dtype(frame["Volume"]):
        out["Volume"] = frame["Volume"].to_numpy(dtype=np.float64) * volume
    return out, f"prices x{price:.4g}, volume x{volume:.4g}"


def prepended_frame(frame: pd.DataFrame, rows: int, seed: int) -> pd.DataFrame:
    """``rows`` earlier bars glued before the first: a seeded random walk into the first close.

    Closes walk backwards from the first close with the first year's own daily volatility; the
    other prices keep a real bar's ratio to its close (so High >= Low still holds), volumes are
    drawn from real bars, and the dates are the business days before the first date.
    """
    rng = np.random.default_rng(seed)
    n = len(frame)
    close = frame["Close"].to_numpy(dtype=np.float64)
    logret = np.diff(np.log(close[: min(n, 253)]))
    vol = float(np.std(logret)) if logret.size > 1 and np.isfinite(logret).all() else 0.01
    back = np.cumsum(rng.normal(0.0, max(vol, 1e-4), rows))[::-1]  # log distance of each new bar to bar 0
    new_close = close[0] * np.exp(back)
    donors = rng.integers(0, n, rows)  # real bars lending their shape (price ratios, volume)
    prefix = frame.iloc[donors].copy()
    for col in frame.columns:
        values = frame[col].to_numpy()
        if col in PRICE_COLUMNS and np.issubdtype(values.dtype, np.number):
            prefix[col] = values[donors] / close[donors] * new_close
    if "Close" in prefix.columns:
        prefix["Close"] = new_close
    prefix.index = pd.bdate_range(end=frame.index[0] - pd.Timedelta(days=1), periods=rows, name=frame.index.name)
    return pd.concat([prefix, frame])


def _prime(lo: int, hi: int, rng: np.random.Generator) -> int:
    """A prime drawn in [lo, hi]: rows keyed modulo any k below lo move under such an offset."""
    primes = [p for p in range(max(2, lo), hi + 1) if all(p % d for d in range(2, int(p**0.5) + 1))]
    return int(rng.choice(primes))


def invariance_probes(frame: pd.DataFrame, seed: int, positions: bool = True) -> list[InvarianceProbe]:
    """The drawn calendar, the drawn level and (``positions``) the two position probes (history
    prepended, rows removed). A forecaster gets them all: its probabilities may move on a position
    probe by what a converging frequency moves (``FORECAST_SLACK``), not more."""
    rng = np.random.default_rng([seed, 11])
    dated, said = calendar_remapped_frame(frame, seed)
    probes = [InvarianceProbe(dated, "date_shift", 0, 0, said)]
    if "Close" in frame.columns and len(frame) > 2:
        leveled, said = level_frame(frame, seed)
        probes.append(InvarianceProbe(leveled, "level", 0, 0, said))
    if not positions:
        return probes
    if "Close" in frame.columns and len(frame) > 2:
        rows = _prime(*PREPEND_ROWS, rng)
        probes.append(InvarianceProbe(prepended_frame(frame, rows, int(rng.integers(2**31))), "prepend", 0, rows))
    trim = _prime(*TRIM_ROWS, rng)
    if len(frame) > 2 * trim:
        probes.append(InvarianceProbe(frame.iloc[trim:], "trim", trim, -trim))
    return probes


def outputs(result: FrameLike) -> tuple[np.ndarray, str]:
    """A run's outputs, one row a bar: a forecaster's probabilities, else the signals; and their name."""
    forecasts = getattr(result, "forecasts", None)
    if forecasts is not None:
        values = np.asarray(forecasts, dtype=np.float64)
        return values.reshape(len(values), -1), "forecasts"
    values = np.asarray(result.signals, dtype=np.float64)
    return values.reshape(len(values), -1), "signals"


def changed_rows(a: np.ndarray, b: np.ndarray, atol: float | np.ndarray = 0.0) -> np.ndarray:
    """Rows (bars) where two output tables disagree beyond float noise (and ``atol``, one per row if an array)."""
    atol = np.asarray(atol, dtype=np.float64)
    atol = atol.reshape(-1, 1) if atol.ndim else atol
    same = np.isclose(a, b, rtol=OUTPUT_RTOL, atol=atol, equal_nan=True) | (a == b)
    return ~same.all(axis=1)


def date_dependence(full: FrameLike, shifted: FrameLike, index: pd.Index,
                    note: str = f"every date moved {DATE_SHIFT_YEARS} years") -> str | None:
    """Reason when the outputs change once the same bars carry other dates (``note`` says which), else None."""
    return relabel_dependence(full, InvarianceProbe(pd.DataFrame(), "date_shift", 0, 0, note), shifted, index)


def relabel_dependence(full: FrameLike, probe: InvarianceProbe, result: FrameLike, index: pd.Index) -> str | None:
    """Reason when the outputs change once the same bars carry other dates or levels, else None."""
    a, what = outputs(full)
    b, _ = outputs(result)
    if a.shape != b.shape:
        return f"{what} have {b.shape[0]} rows on the {probe.kind} probe instead of {a.shape[0]}"
    diff = changed_rows(a, b)
    if not diff.any():
        return None
    row = int(np.argmax(diff))
    if probe.kind == "date_shift":
        return (f"{what} change on {int(diff.sum())} bar(s) (first {index[row].date()}) when the same bars carry "
                f"other years with the same calendar ({probe.note}; every date keeps its weekday, month and day): "
                f"it reads the calendar year, specific dates or day numbers; weekday and month effects are fine, "
                f"and windows are counted in bars (rolling(21)), not in days ('30D')")
    return (f"{what} change on {int(diff.sum())} bar(s) (first {index[row].date()}) when every price and the volume "
            f"are rescaled ({probe.note}; returns and ratios unchanged): it depends on price or volume levels; "
            f"compare prices with each other (returns, ratios, moving averages), not with fixed numbers")


def paired(diff: np.ndarray, rows: np.ndarray, lag: int) -> int:
    """How many of the changed ``rows`` (``diff``'s true rows) have another change exactly ``lag`` bars before
    or after."""
    marked = np.zeros(diff.size + 2 * lag, dtype=bool)
    marked[lag: lag + diff.size] = diff
    return int((marked[rows] | marked[rows + 2 * lag]).sum())


def pattern(diff: np.ndarray) -> tuple[float, int]:
    """The largest share of changed bars with another change exactly L bars before or after, over
    L = 1 .. ``PATTERN_LAGS``, and that L: runs (L = 1), periods (row % k) and steps at a row number
    line up; a converging statistic's scattered flips do not."""
    rows = np.flatnonzero(diff)
    best, at = 0.0, 0
    for lag in range(1, PATTERN_LAGS + 1):
        if rows.size < 2:
            break
        share = paired(diff, rows, lag) / rows.size
        if share > best:
            best, at = share, lag
    return best, at


def position_dependence(full: FrameLike, probe: InvarianceProbe, result: FrameLike, index: pd.Index,
                        warmup: int) -> str | None:
    """Reason when the shared bars' outputs move with the rows once history is prepended or rows removed.

    Compared from the warm-up plus ``SETTLE_ROWS`` on, train rows included (a row table there moves
    the folds); the pattern rule lets a converging statistic's scattered flips pass however many.
    Code tied to row numbers is told from a converging statistic by where the changes fall: each
    change of row-keyed code reappears ``offset`` bars away (the key moved with the rows), or the
    changes line up in a pattern (``pattern``: runs, periods, a step at a row number); an expanding
    statistic flips scattered bars, however many.
    """
    a, what = outputs(full)
    b, _ = outputs(result)
    first = probe.start + warmup + SETTLE_ROWS  # full-history row from which both must agree
    if first >= a.shape[0]:
        return None
    if b.shape[0] != len(probe.frame):
        return f"{what} have {b.shape[0]} rows on the {probe.kind} probe"
    shared = b[first + probe.offset: a.shape[0] + probe.offset]
    slack = 0.0  # signals: exact; probabilities: what a converging frequency may move (FORECAST_SLACK)
    if what == "forecasts":
        slack = FORECAST_SLACK * abs(probe.offset) / (np.arange(first, a.shape[0]) + 1.0 - probe.start)
    diff = changed_rows(a[first:], shared, slack)
    if not diff.any():
        return None
    rows = np.flatnonzero(diff)
    step = abs(probe.offset)
    moved = paired(diff, rows, step)  # the changes that reappear where the rows moved to
    share, lag = pattern(diff)
    patterned = rows.size >= PATTERN_MIN and share >= PATTERN_SHARE
    if moved < max(2, (rows.size + 1) // 2) and not patterned:
        return None
    row = first + int(rows[0])
    how = (f"{probe.offset} earlier bars are prepended to the history" if probe.kind == "prepend"
           else f"the first {probe.start} rows are removed")
    if what == "forecasts":
        how += f", by more than a converging frequency moves ({FORECAST_SLACK:g} x {step} / the bars before)"
    shape = (f"{moved} of them reappear {step} bars away, where the rows moved" if not patterned
             else f"in a pattern: {share:.0%} of them have another change {lag} bar(s) away")
    return (f"{what} depend on row positions, not on prices: on {rows.size} of {diff.size} shared bar(s) after the "
            f"warm-up (first {index[row].date()}) the same bars get different {what} when {how} ({shape}); compute "
            f"from prices and rolling windows, never from row numbers (df.index positions, range(len(df)), np.arange, "
            f"call counters, literal lists of rows)")


def probe_failure(full: FrameLike, probe: InvarianceProbe, result: FrameLike, index: pd.Index,
                  warmup: int) -> tuple[str, str] | None:
    """``(guard, reason)`` when one invariance probe's outputs moved, else None."""
    if probe.kind in ("date_shift", "level"):
        moved = relabel_dependence(full, probe, result, index)
        guard = "date_dependence" if probe.kind == "date_shift" else "level_dependence"
        return (guard, moved) if moved else None
    moved = position_dependence(full, probe, result, index, warmup)
    return ("position_dependence", moved) if moved else None


def invariance_failures(full: FrameLike, probes: Sequence[tuple[InvarianceProbe, FrameLike]], index: pd.Index,
                        warmup: int) -> list[tuple[str, str]]:
    """Every invariance guard that failed, the first reason of each, in the probes' order."""
    found: dict[str, str] = {}
    for probe, result in probes:
        failed = probe_failure(full, probe, result, index, warmup)
        if failed and failed[0] not in found:
            found[failed[0]] = failed[1]
    return list(found.items())


@dataclass(frozen=True)
class InvarianceFindings:
    """The invariance probes' verdict, judged once by the stage that ran them, for ``check_guards``."""

    kinds: frozenset[str] = frozenset()  # the probe kinds that ran ("date_shift", "level", "prepend", "trim")
    failures: tuple[tuple[str, str], ...] = ()  # (guard, reason), the first reason of each guard


def judge_invariance(full: FrameLike, probes: Sequence[tuple[InvarianceProbe, FrameLike]], index: pd.Index,
                     warmup: int) -> InvarianceFindings:
    """Judge each probe paired with the candidate's (confirmed) result on it."""
    return InvarianceFindings(frozenset(probe.kind for probe, _ in probes),
                              tuple(invariance_failures(full, probes, index, warmup)))
