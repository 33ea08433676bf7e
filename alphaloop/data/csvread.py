"""Read the CSV dialects other tools write into one raw daily frame, or refuse with one line.

Handled: comma, semicolon (with decimal commas) and tab separators; the two-level header a yfinance
MultiIndex frame writes (``Price`` / ``Ticker`` / ``Date`` rows); dates with UTC offsets that change
with daylight saving (a daily bar's date is its exchange date, so the local date part is kept, never
the UTC conversion); Unix epoch seconds, milliseconds, microseconds or nanoseconds (told apart by
magnitude); ``YYYYMMDD`` integers. Anything else ambiguous is refused rather than guessed.
"""

from __future__ import annotations

import csv
import itertools
import os
import re
from pathlib import Path

import pandas as pd

PRICE_COLUMNS = ("Open", "High", "Low", "Close")
REQUIRED_COLUMNS = (*PRICE_COLUMNS, "Volume")
OPTIONAL_COLUMNS = ("Adj Close",)
DATE_NAMES = ("date", "datetime", "timestamp", "time")
SEPARATORS = (",", ";", "\t", "|")
SNIFF_LINES = 20
# Epoch units by the magnitude of a timestamp after 1973-03-03 (1e8 s): seconds < 1e11 <= ms < 1e14 <= us < 1e17 <= ns.
EPOCH_UNITS = ((1e8, 1e11, "s"), (1e11, 1e14, "ms"), (1e14, 1e17, "us"), (1e17, 1e20, "ns"))
_OFFSET = re.compile(r"(\d{1,2}:\d{2}(?::\d{2}(?:\.\d+)?)?)\s*(?:Z|UTC|GMT|[+-]\d{2}:?\d{2})$", re.IGNORECASE)


class DataError(Exception):
    """A fatal data problem; its message is shown to the user as one line."""


def _head(p: Path) -> list[str]:
    try:
        with open(p, encoding="utf-8-sig", newline="") as fh:
            return [line for line in itertools.islice(fh, SNIFF_LINES) if line.strip()]
    except UnicodeDecodeError as exc:
        raise DataError(f"{p}: not a text CSV (not UTF-8: {exc.reason})") from exc


def _separator(lines: list[str]) -> str:
    """The separator that splits every sniffed line into the same, largest number of fields."""
    best, width = ",", 1
    for sep in SEPARATORS:
        counts = {len(next(csv.reader([line], delimiter=sep))) for line in lines}
        if len(counts) == 1 and (n := counts.pop()) > width:
            best, width = sep, n
    return best


def _yfinance_header(rows: list[list[str]], p: Path) -> int | None:
    """Rows to skip below a yfinance two-level header (``Price``/``Ticker``, then ``Date``), else None."""
    if len(rows) < 3:
        return None
    first = [r[0].strip().lower() if r else "" for r in rows[:3]]
    if first[:2] not in (["price", "ticker"], ["ticker", "price"]):
        return None
    tickers_row = rows[1] if first[1] == "ticker" else rows[0]
    tickers = sorted({t.strip() for t in tickers_row[1:] if t.strip()})
    if len(tickers) > 1:
        raise DataError(f"{p}: a yfinance file with {len(tickers)} tickers ({', '.join(tickers[:4])}); "
                        f"save one ticker per file")
    if first[0] == "ticker":
        raise DataError(f"{p}: a yfinance file grouped by ticker (Ticker row above Price); "
                        f"save it with the Price row first (yfinance's default) or one header row")
    date_row = rows[2]
    return 2 if first[2] in DATE_NAMES and not any(c.strip() for c in date_row[1:]) else 1


def read_frame(p: Path) -> pd.DataFrame:
    """The file as strings, with the separator and header layout worked out."""
    lines = _head(p)
    if not lines:
        raise DataError(f"{p}: the file is empty")
    sep = _separator(lines)
    rows = list(csv.reader(lines, delimiter=sep))
    skip = _yfinance_header(rows, p)
    try:
        df = pd.read_csv(p, sep=sep, dtype=str, skiprows=range(1, skip + 1) if skip else None,
                         encoding="utf-8-sig", skipinitialspace=True)
    except pd.errors.EmptyDataError as exc:
        raise DataError(f"{p}: the file is empty") from exc
    except (pd.errors.ParserError, UnicodeDecodeError, ValueError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise DataError(f"{p}: not a readable CSV ({first})") from exc
    if df.empty:
        raise DataError(f"{p}: the file has a header but no rows")
    df.columns = [str(c).strip() for c in df.columns]
    if len(df.columns) < 2:
        raise DataError(f"{p}: only one column found (separators tried: comma, semicolon, tab, bar)")
    if sep == ";":
        df = df.apply(lambda col: col.str.replace(",", ".", regex=False) if col.name != df.columns[0] else col)
    return df


def _epoch_dates(num: pd.Series, p: Path, col: str) -> pd.Series:
    low, high = float(num.abs().min()), float(num.abs().max())
    for lo, hi, unit in EPOCH_UNITS:
        if lo <= low and high < hi:
            return pd.to_datetime(num.astype("int64"), unit=unit)
    raise DataError(f"{p}: column '{col}' holds numbers ({low:.0f} .. {high:.0f}) that are not one Unix epoch unit "
                    f"(seconds, ms, us or ns after 1973) nor YYYYMMDD; write the dates as YYYY-MM-DD")


def parse_dates(raw: pd.Series, p: Path, col: str) -> pd.DatetimeIndex:
    """Exchange dates of daily bars: local date part of offset stamps, epoch by magnitude, never 1970."""
    text = raw.astype(str).str.strip()
    num = pd.to_numeric(text, errors="coerce")
    if num.notna().all():
        if (num == num.round()).all() and num.between(1800_01_01, 2200_12_31).all():
            dates = pd.to_datetime(num.astype("int64").astype(str), format="%Y%m%d", errors="coerce")
        else:
            dates = _epoch_dates(num, p, col)
    else:
        dates = pd.to_datetime(text.str.replace(_OFFSET, r"\1", regex=True), errors="coerce", format="mixed")
    bad = dates.isna()
    if bad.any():
        raise DataError(f"{p}: {int(bad.sum())} row(s) with an unparseable date in column '{col}' "
                        f"(first: {raw[bad].iloc[0]!r})")
    if getattr(dates.dt, "tz", None) is not None:
        dates = dates.dt.tz_localize(None)
    days = dates.dt.normalize()
    if days.duplicated().any() and not dates.duplicated().any():
        raise DataError(f"{p}: several rows per day (first: {days[days.duplicated()].iloc[0].date()}); "
                        f"these look like intraday bars, prepare.py needs daily bars")
    if (days.dt.year < 1900).any():
        raise DataError(f"{p}: dates before 1900 in column '{col}' (first: {raw[days.dt.year < 1900].iloc[0]!r})")
    return pd.DatetimeIndex(days, name="Date")


def read_csv(path: str | os.PathLike[str]) -> pd.DataFrame:
    """A user CSV with a date column (``Date``/``Datetime``/``Timestamp`` or the first) as a raw frame."""
    p = Path(path)
    if not p.is_file():
        raise DataError(f"{p}: no such file")
    df = read_frame(p)
    lower = {c.lower(): c for c in df.columns}
    date_col = next((lower[n] for n in DATE_NAMES if n in lower), df.columns[0])
    index = parse_dates(df[date_col], p, date_col)
    df = df.drop(columns=[date_col])
    df.index = index
    rename = {c: canon for canon in (*REQUIRED_COLUMNS, *OPTIONAL_COLUMNS) for c in df.columns
              if c.lower().replace("_", " ") == canon.lower()}
    return df.rename(columns=rename)
