"""Read the CSV dialects other tools write into one raw daily frame, or refuse with one line.

Handled: comma, semicolon, tab and bar separators; decimal commas and thousands separators
(``1.234,56``, ``"2,506.85"``), currency signs (Nasdaq's ``$157.74``), volume suffixes
(Investing.com's ``1.23M``); UTF-8 (with or without BOM), UTF-16 (MetaTrader 5) and Windows-1252;
the column names Yahoo, Stooq, Investing.com (``Price``, ``Vol.``), Nasdaq.com (``Close/Last``),
Alpha Vantage (``adjusted_close``), MetaTrader 5 (``<DATE>``, ``<CLOSE>``) and others use; Binance
klines without a header row; the two-level header a yfinance MultiIndex frame writes. Dates:
alphaloop/data/dates.py. Reading is bounded (file size, line length) so a wrong file ends in one
``error:`` line, not a traceback or a machine out of memory.
"""

from __future__ import annotations

import csv
import io
import os
import re
from pathlib import Path

import pandas as pd

from alphaloop.data.dates import parse_dates
from alphaloop.data.errors import DataError

PRICE_COLUMNS = ("Open", "High", "Low", "Close")
REQUIRED_COLUMNS = ("Close",)  # Open, High, Low and Volume are used when present (index, FX, close-only files)
OPTIONAL_COLUMNS = ("Adj Close",)
DATE_NAMES = ("date", "datetime", "timestamp", "time", "open time", "day", "trade date", "gmt time", "local time")
SEPARATORS = (",", ";", "\t", "|")
SNIFF_LINES = 20
MAX_FILE_BYTES = 64 * 2**20  # a century of daily bars is a few MB; more is intraday or tick data
MAX_LINE_CHARS = 10_000  # a daily bar's line is under 200 characters
# Normalised header (lower case, no <>*, underscores as spaces) -> the column alphaloop uses.
ALIASES = {
    **dict.fromkeys(("open", "open price", "opening price"), "Open"),
    **dict.fromkeys(("high", "high price"), "High"),
    **dict.fromkeys(("low", "low price"), "Low"),
    **dict.fromkeys(("close", "close/last", "price", "last", "close price", "closing price", "last price"), "Close"),
    **dict.fromkeys(("adj close", "adj. close", "adjclose", "adjusted close", "adj close price", "adjusted",
                     "close adj", "adjusted close price", "adj. close price"), "Adj Close"),
    **dict.fromkeys(("volume", "vol.", "vol", "volume (shares)", "real volume"), "Volume"),
}
BINANCE_COLUMNS = ("Open time", "Open", "High", "Low", "Close", "Volume", "Close time", "Quote asset volume",
                   "Number of trades", "Taker buy base asset volume", "Taker buy quote asset volume", "Ignore")
_SUFFIX = {"K": 1e3, "M": 1e6, "B": 1e9, "T": 1e12}
__all__ = ["DataError", "OPTIONAL_COLUMNS", "PRICE_COLUMNS", "REQUIRED_COLUMNS", "read_csv"]


def _bytes(p: Path) -> bytes:
    """The file's bytes, refused with the reason when it is not a CSV a person could mean."""
    if p.is_dir():
        raise DataError(f"{p}: is a directory; give a CSV file (--csv-dir takes a folder of them)")
    if not p.is_file():
        raise DataError(f"{p}: no such file")
    size = p.stat().st_size
    if size > MAX_FILE_BYTES:
        raise DataError(f"{p}: {size / 2**20:,.0f} MB, over the {MAX_FILE_BYTES // 2**20} MB read limit; a century "
                        "of daily bars is a few MB, so this looks like intraday or tick data")
    with open(p, "rb") as fh:
        data = fh.read(MAX_FILE_BYTES + 1)
    if data[:2] == b"\x1f\x8b":
        raise DataError(f"{p}: a gzip-compressed file; decompress it first (gunzip -k {p.name})")
    if data[:4] == b"PK\x03\x04":
        kind = "an Excel workbook (.xlsx)" if b"xl/" in data[:4096] else "a zip archive"
        raise DataError(f"{p}: {kind}, not a CSV; export the sheet as CSV (File > Save As > CSV)")
    if data[:8] == b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1":
        raise DataError(f"{p}: an Excel 97-2003 workbook (.xls), not a CSV; save the sheet as CSV")
    return data


def _decode(data: bytes, p: Path) -> str:
    """UTF-8 (BOM or not), UTF-16 (BOM, or NUL bytes every other byte as MetaTrader writes), else Windows-1252."""
    if data[:2] in (b"\xff\xfe", b"\xfe\xff"):
        encodings = ("utf-16",)
    elif b"\x00" in data[:1000]:
        encodings = ("utf-16-le",) if data[1:2] == b"\x00" else ("utf-16-be",)
    else:
        encodings = ("utf-8-sig", "cp1252")
    for enc in encodings:
        try:
            text = data.decode(enc)
        except UnicodeDecodeError:
            continue
        if "\x00" not in text:
            return text
    raise DataError(f"{p}: not a text CSV (neither UTF-8, UTF-16 nor Windows-1252 text)")


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


def _is_number(field: str) -> bool:
    return re.fullmatch(r"\s*-?\d+(?:[.,]\d+)?(?:[eE][-+]?\d+)?\s*", field) is not None


def _headerless(row: list[str], p: Path) -> tuple[str, ...] | None:
    """Column names for a file without a header row: Binance klines, else a refusal naming what is expected."""
    if not row or not all(_is_number(f) for f in row if f.strip()):
        return None
    if len(row) == len(BINANCE_COLUMNS) and row[0].strip().isdigit() and row[6].strip().isdigit():
        return BINANCE_COLUMNS
    raise DataError(f"{p}: no header row (the first line is {len(row)} numbers: {','.join(row[:4])}...); "
                    "add a header naming the columns: Date and Close, optionally Open, High, Low, Volume, Adj Close")


def normalise(name: str) -> str:
    """A header as the alias table spells it: ``<CLOSE>``, ``adjusted_close`` and ``Adj Close*`` all match."""
    return re.sub(r"\s+", " ", str(name).strip().strip("<>").replace("*", "").replace("_", " ")).lower().strip()


def _decimal_mark(values: list[pd.Series], sep: str) -> str:
    """The file's decimal mark, from every value: the last of ``.``/``,`` in ``1.234,56`` decides."""
    text = pd.concat(values, ignore_index=True).dropna().astype(str)
    both = text[text.str.contains(",", regex=False) & text.str.contains(".", regex=False)]
    if len(both):
        comma_last = (both.str.rfind(",") > both.str.rfind(".")).mean()
        return "," if comma_last > 0.5 else "."
    commas = text[text.str.contains(",", regex=False)]
    if commas.empty:
        return "."
    if sep != "," or text.str.contains(".", regex=False).any():
        return "," if sep != "," else "."
    return "." if commas.str.fullmatch(r"-?\d{1,3}(?:,\d{3})+").all() else ","


def _numbers(col: pd.Series, decimal: str) -> pd.Series:
    """Number text without currency signs, thousands marks or K/M/B suffixes, as plain ``1234.5`` strings."""
    s = col.astype("string").str.replace(r"[\s\u00a0\u202f$€£¥'%]", "", regex=True)
    s = s.mask(s.isin(["-", "--", "n/a", "N/A", "null", "NaN", "nan"]), "")
    parts = s.str.extract(r"^(.*?\d)([KMBT])$", flags=re.IGNORECASE)
    has_suffix = parts[0].notna()
    s = s.where(~has_suffix, parts[0])
    thousands = "." if decimal == "," else ","
    s = s.str.replace(thousands, "", regex=False)
    if decimal == ",":
        s = s.str.replace(",", ".", regex=False)
    if has_suffix.any():
        scale = parts[1].str.upper().map(_SUFFIX)
        num = pd.to_numeric(s.where(has_suffix), errors="coerce") * scale
        s = s.where(~has_suffix, num.map(lambda v: "" if pd.isna(v) else repr(float(v))))
    return s.astype(object).where(s.notna(), None)


def read_frame(p: Path) -> tuple[pd.DataFrame, str]:
    """The file as strings with the separator, encoding and header layout worked out, and the separator."""
    text = _decode(_bytes(p), p)
    lines = text.splitlines()
    longest = max((len(line) for line in lines), default=0)
    if longest > MAX_LINE_CHARS:
        raise DataError(f"{p}: a line of {longest:,} characters (limit {MAX_LINE_CHARS:,}); a CSV of daily bars "
                        "has short lines, so this is not one")
    head = [line for line in lines[: SNIFF_LINES * 5] if line.strip()][:SNIFF_LINES]
    if not head:
        raise DataError(f"{p}: the file is empty")
    sep = _separator(head)
    rows = list(csv.reader(head, delimiter=sep))
    skip = _yfinance_header(rows, p)
    names = _headerless(rows[0], p) if skip is None else None
    try:
        df = pd.read_csv(io.StringIO(text), sep=sep, dtype=str, skipinitialspace=True,
                         skiprows=range(1, skip + 1) if skip else None,
                         header=None if names else 0, names=list(names) if names else None)
    except pd.errors.EmptyDataError as exc:
        raise DataError(f"{p}: the file is empty") from exc
    except (pd.errors.ParserError, csv.Error, ValueError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise DataError(f"{p}: not a readable CSV ({first})") from exc
    if df.empty:
        raise DataError(f"{p}: the file has a header but no rows")
    df.columns = [str(c).strip() for c in df.columns]
    if len(df.columns) < 2:
        raise DataError(f"{p}: only one column found (separators tried: comma, semicolon, tab, bar)")
    return df, sep


def _rename(df: pd.DataFrame) -> pd.DataFrame:
    """Known headers to alphaloop's names; the first of several columns naming one thing wins."""
    rename, taken = {}, set()
    for col in df.columns:
        canon = ALIASES.get(normalise(col))
        if canon and canon not in taken and (canon == col or canon not in df.columns):
            rename[col] = canon
            taken.add(canon)
    return df.rename(columns=rename)


def _date_column(df: pd.DataFrame, p: Path) -> str:
    """The date column: the first named like one (``Date`` before ``Time``), else the first column."""
    by_name = {normalise(c): c for c in reversed(df.columns)}
    col = next((by_name[n] for n in DATE_NAMES if n in by_name), df.columns[0])
    other = by_name.get("time")
    if other is not None and other != col and df[other].nunique() > 1:
        raise DataError(f"{p}: a separate time column '{other}' with {df[other].nunique()} different times: "
                        "these look like intraday bars, prepare.py needs daily bars")
    return col


def read_csv(path: str | os.PathLike[str], date_format: str | None = None) -> pd.DataFrame:
    """A user CSV as a raw frame indexed by exchange date, its known columns under alphaloop's names."""
    p = Path(path)
    df, sep = read_frame(p)
    date_col = _date_column(df, p)
    index = parse_dates(df[date_col], p, date_col, date_format)
    df = _rename(df.drop(columns=[date_col]))
    known = [c for c in (*PRICE_COLUMNS, "Volume", *OPTIONAL_COLUMNS) if c in df.columns]
    decimal = _decimal_mark([df[c] for c in known], sep) if known else "."
    for col in known:
        df[col] = _numbers(df[col], decimal)
    df.index = index
    return df
