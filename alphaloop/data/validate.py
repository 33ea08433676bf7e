"""Check one instrument's raw bars and make them a clean numeric frame, or refuse with one line.

Only Close is required: an index or FX file without Volume, or a file of closes alone, is valid.
The columns a file lacks are absent from the frame (never invented from Close); ``missing_columns``
names them for the manifest, the screen and the prompt, so all can tell what a candidate may use.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from alphaloop.data.csvread import OPTIONAL_COLUMNS, PRICE_COLUMNS, REQUIRED_COLUMNS, DataError

MAX_REPAIRABLE_MISSING = 0.01  # a handful: up to 1% of rows may be forward-filled
KNOWN_COLUMNS = (*PRICE_COLUMNS, "Volume", *OPTIONAL_COLUMNS)


def _numeric(df: pd.DataFrame, label: str) -> pd.DataFrame:
    for col in df.columns:
        raw = df[col]
        num = pd.to_numeric(raw, errors="coerce")
        junk = num.isna() & raw.notna() & (raw.astype(str).str.strip() != "")
        if junk.any():
            raise DataError(f"{label}: column {col} has {int(junk.sum())} non-numeric value(s) "
                            f"(first: {raw[junk].iloc[0]!r})")
        df[col] = num.astype(np.float64)
    return df


def _drop_empty(df: pd.DataFrame, label: str, repairs: list[str]) -> pd.DataFrame:
    """An all-empty optional column is dropped with a warning; an empty Close is fatal."""
    empty = [c for c in df.columns if df[c].isna().all() or (c == "Volume" and (df[c].fillna(0) == 0).all())]
    if "Close" in empty:
        raise DataError(f"{label}: column Close is empty (every row is blank); it is the one column prices need")
    if empty:
        repairs.append(f"{label}: column(s) {', '.join(empty)} empty (or a Volume of zeros) in every row; dropped")
    return df.drop(columns=empty)


def validate(df: pd.DataFrame, label: str = "data") -> tuple[pd.DataFrame, list[str]]:
    """Return a clean frame (sorted, numeric, positive) and the repairs made; DataError if fatal."""
    repairs: list[str] = []
    if not all(c in df.columns for c in REQUIRED_COLUMNS):
        found = ", ".join(str(c) for c in df.columns[:8]) or "none"
        raise DataError(f"{label}: no Close column (columns found: {found}); expected Date and Close, "
                        f"optionally Open, High, Low, Volume, Adj Close")
    keep = [c for c in KNOWN_COLUMNS if c in df.columns]
    df = df[keep].copy()
    if not isinstance(df.index, pd.DatetimeIndex):
        raise DataError(f"{label}: the index must be dates")
    dup = df.index.duplicated()
    if dup.any():
        raise DataError(f"{label}: {int(dup.sum())} duplicate date(s) (first: {df.index[dup][0].date()})")
    if not df.index.is_monotonic_increasing:
        newest_first = df.index.is_monotonic_decreasing
        repairs.append(f"{label}: rows were {'newest first' if newest_first else 'not in date order'}; sorted them")
        df = df.sort_index()
    df = _drop_empty(_numeric(df, label), label, repairs)
    keep = list(df.columns)
    holes = df.isna().any(axis=1)
    if holes.any():
        n = int(holes.sum())
        if holes.iloc[0] or n > max(1, int(MAX_REPAIRABLE_MISSING * len(df))):
            where = "the first row" if holes.iloc[0] else f"{n} rows"
            cols = ", ".join(c for c in keep if df[c].isna().any())
            raise DataError(f"{label}: missing values in {where} (column(s) {cols}); too many to repair "
                            f"(limit {MAX_REPAIRABLE_MISSING:.0%} of rows, not the first row)")
        repairs.append(f"{label}: {n} row(s) had missing values; forward-filled from the previous day")
        df = df.ffill()
    prices = [c for c in (*PRICE_COLUMNS, "Adj Close") if c in df.columns]
    nonpos = (df[prices] <= 0).any(axis=1)
    if nonpos.any():
        raise DataError(f"{label}: {int(nonpos.sum())} row(s) with a zero or negative price "
                        f"(first: {df.index[nonpos][0].date()})")
    if "Volume" in df.columns and (df["Volume"] < 0).any():
        raise DataError(f"{label}: negative volume on {int((df['Volume'] < 0).sum())} row(s)")
    if "High" in df.columns and "Low" in df.columns:
        inverted = df["High"] < df["Low"]
        if inverted.any():
            raise DataError(f"{label}: High below Low on {int(inverted.sum())} row(s) "
                            f"(first: {df.index[inverted][0].date()})")
    if not np.isfinite(df.to_numpy()).all():
        raise DataError(f"{label}: infinite values")
    return df, repairs


def missing_columns(frame: pd.DataFrame) -> list[str]:
    """The usual bar columns (Open, High, Low, Volume) a frame does not have: a candidate cannot use them."""
    return [c for c in (*PRICE_COLUMNS, "Volume") if c not in frame.columns]
