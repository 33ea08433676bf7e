"""Exchange dates of daily bars from the date columns other tools write, or one line saying why not.

Day-first or month-first is decided from the whole column (a field over 12 decides), never guessed
from one row; a column that stays ambiguous is refused with the ``--date-format`` to state it.
Unix epoch stamps (seconds, ms, us or ns, told apart by magnitude) are a bar's opening time in UTC:
for an exchange east of UTC that is the previous UTC day, so the whole column is moved onto the
calendar day its bars trade on (weekdays for a 5-day market; the UTC date when that cannot decide).
Offset stamps keep their local date part (a daily bar's date is its exchange date).
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd

from alphaloop.data.errors import DataError

# Epoch units by the magnitude of a timestamp after 1973-03-03 (1e8 s): seconds < 1e11 <= ms < 1e14 <= us < 1e17 <= ns.
EPOCH_UNITS = ((1e8, 1e11, "s"), (1e11, 1e14, "ms"), (1e14, 1e17, "us"), (1e17, 1e20, "ns"))
DAY_NS = 86_400 * 10**9
_OFFSET = re.compile(r"(\d{1,2}:\d{2}(?::\d{2}(?:\.\d+)?)?)\s*(?:Z|UTC|GMT|[+-]\d{2}:?\d{2})$", re.IGNORECASE)
_NUMERIC_DATE = re.compile(r"^(\d{1,4})[./-](\d{1,2})[./-](\d{1,4})(?:[ T].*)?$")


def _epoch_dates(num: pd.Series, p: Path, col: str) -> pd.Series:
    low, high = float(num.abs().min()), float(num.abs().max())
    for lo, hi, unit in EPOCH_UNITS:
        if lo <= low and high < hi:
            return session_days(pd.to_datetime(num.astype("int64"), unit=unit))
    raise DataError(f"{p}: column '{col}' holds numbers ({low:.0f} .. {high:.0f}) that are not one Unix epoch unit "
                    f"(seconds, ms, us or ns after 1973) nor YYYYMMDD; write the dates as YYYY-MM-DD")


def session_days(stamps: pd.Series) -> pd.Series:
    """The trading day of each UTC opening stamp: one cut in the day, then the weekday-consistent date.

    The stamps' times of day cluster (an exchange opens at one local time, give or take daylight
    saving); cutting the day in the middle of the largest empty stretch puts every bar of the
    cluster on one side. Of that day and the next, the one with fewer weekend bars is the
    exchange's date; when both have as many (a 7-day calendar), the UTC date of most stamps.
    """
    ns = stamps.to_numpy().astype("datetime64[ns]").astype("int64")
    tod = np.unique(ns % DAY_NS)
    if tod.size == 1 and tod[0] == 0:
        return stamps.dt.normalize()
    gaps = np.diff(np.concatenate([tod, [tod[0] + DAY_NS]]))
    i = int(np.argmax(gaps))
    cut = (tod[i] + gaps[i] // 2) % DAY_NS
    base = pd.DatetimeIndex(((ns - cut) // DAY_NS * DAY_NS).astype("datetime64[ns]"))
    utc = pd.DatetimeIndex((ns // DAY_NS * DAY_NS).astype("datetime64[ns]"))
    options = [base, base + pd.Timedelta(days=1)]
    weekend = [float(np.mean(o.day_of_week >= 5)) for o in options]
    if abs(weekend[0] - weekend[1]) > 0.05:
        best = options[int(np.argmin(weekend))]
    else:
        best = max(options, key=lambda o: float(np.mean(o == utc)))
    return pd.Series(best, index=stamps.index)


def _numeric_order(text: pd.Series, p: Path, col: str) -> str | None:
    """The strptime format of an all-numeric column (``31.12.2018``, ``12/31/2018``, ``2018.12.31``), or None."""
    parts = text.str.extract(_NUMERIC_DATE)
    if parts.isna().any().any():
        return None
    a, b = parts[0].astype(int), parts[1].astype(int)
    seps = text.str.extract(r"^\d{1,4}([./-])\d{1,2}([./-])")
    if seps[0].nunique() != 1 or seps[1].nunique() != 1:
        return None
    s1, s2 = seps[0].iloc[0], seps[1].iloc[0]
    if parts[0].str.len().eq(4).all():
        return f"%Y{s1}%m{s2}%d"
    year = "%Y" if parts[2].str.len().eq(4).all() else "%y"
    day_first, month_first = bool((a > 12).any()), bool((b > 12).any())
    if day_first and month_first:
        raise DataError(f"{p}: column '{col}' has dates with a first field over 12 and others with a second "
                        f"field over 12 (first: {text[a > 12].iloc[0]!r}, {text[b > 12].iloc[0]!r}); "
                        f"give the format with --date-format")
    if not day_first and not month_first:
        if (a == b).all() or len(text) < 2:
            return f"%d{s1}%m{s2}{year}"  # every date reads the same either way
        raise DataError(f"{p}: column '{col}' is ambiguous: no day is over 12, so {text.iloc[0]!r} could be "
                        f"day-first or month-first; state it with --date-format '%d{s1}%m{s2}{year}' "
                        f"(day first) or --date-format '%m{s1}%d{s2}{year}' (month first)")
    return f"%d{s1}%m{s2}{year}" if day_first else f"%m{s1}%d{s2}{year}"


def parse_dates(raw: pd.Series, p: Path, col: str, date_format: str | None = None) -> pd.DatetimeIndex:
    """Exchange dates of daily bars: local date part of offset stamps, epoch by magnitude, never 1970."""
    text = raw.astype(str).str.strip()
    if date_format:
        dates = pd.to_datetime(text, format=date_format, errors="coerce")
        bad = dates.isna()
        if bad.any():
            raise DataError(f"{p}: {int(bad.sum())} row(s) in column '{col}' do not match --date-format "
                            f"{date_format!r} (first: {raw[bad].iloc[0]!r})")
        return _days(dates, raw, p, col)
    num = pd.to_numeric(text, errors="coerce")
    if num.notna().all():
        if (num == num.round()).all() and num.between(1800_01_01, 2200_12_31).all():
            dates = pd.to_datetime(num.astype("int64").astype(str), format="%Y%m%d", errors="coerce")
        else:
            dates = _epoch_dates(num, p, col)
    elif (fmt := _numeric_order(text, p, col)) is not None:
        day = text.str.extract(r"^(\S+)")[0].str.split("T").str[0]
        dates = pd.to_datetime(day, format=fmt, errors="coerce")
    else:
        dates = pd.to_datetime(text.str.replace(_OFFSET, r"\1", regex=True), errors="coerce", format="mixed")
    bad = dates.isna()
    if bad.any():
        raise DataError(f"{p}: {int(bad.sum())} row(s) with an unparseable date in column '{col}' "
                        f"(first: {raw[bad].iloc[0]!r}); state the format with --date-format, e.g. '%d.%m.%Y'")
    return _days(dates, raw, p, col)


def _days(dates: pd.Series, raw: pd.Series, p: Path, col: str) -> pd.DatetimeIndex:
    if getattr(dates.dt, "tz", None) is not None:
        dates = dates.dt.tz_localize(None)
    days = dates.dt.normalize()
    if days.duplicated().any() and not dates.duplicated().any():
        raise DataError(f"{p}: several rows per day (first: {days[days.duplicated()].iloc[0].date()}); "
                        f"these look like intraday bars, prepare.py needs daily bars")
    if (days.dt.year < 1900).any():
        raise DataError(f"{p}: dates before 1900 in column '{col}' (first: {raw[days.dt.year < 1900].iloc[0]!r})")
    return pd.DatetimeIndex(days, name="Date")
