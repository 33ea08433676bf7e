"""Child driver of the portfolio task: run a candidate's ``generate_features`` on every instrument and
its ``allocate(day)`` on every date, and hand back plain arrays for the trusted parent to judge.

This module runs inside the sandbox's child process, next to the candidate, so it imports only the
standard library, numpy and pandas (never alphaloop) and decides nothing about the candidate's worth:
it decodes the shapes ``allocate`` may return into numbers and leaves every check of those numbers
(finite, in [-1, 1], gross under the cap) to the parent (``alphaloop.tasks.portfolio.contract``).

The calendar is the sorted union of the instruments' dates. ``day`` on a date holds one row per
instrument with a bar that date, indexed by instrument number 1..N (never a ticker), with that
instrument's prices and feature columns; an instrument without a bar that date is absent from ``day``
and its weight in the returned array is NaN (it keeps the weight set at its last bar).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import pandas as pd

FUNCTIONS = ("generate_features", "allocate")  # the child reports a region missing one before it runs
WEIGHTS = "weights"  # (dates, instruments) float64, NaN where an instrument has no bar that date
MAX_FEATURES = 256  # numeric feature columns kept per instrument (the sandbox wire's cap)
MAX_NAME_CHARS = 200
NUMBERS = (bool, int, float, np.integer, np.floating, np.bool_)


class AllocationError(ValueError):
    """``allocate`` returned something that is not a set of weights; the message names date and instrument."""


BadOutput = AllocationError  # the sandbox child reports it as ``bad_output`` with its message
# Run once on a synthetic panel by the zygote, so pandas' lazy imports happen before any child forks.
PREWARM_REGION = '''
def generate_features(d):
    d["a"] = d["Close"].pct_change(5).rolling(5).mean() + d["Close"].ewm(span=5).mean()
    return d


def allocate(day):
    r = day["a"].rank(pct=True).sort_values().dropna()
    w = (r - r.mean()).clip(-1, 1)
    return w / max(w.abs().sum(), 1.0)
'''


def feature_key(i: int, column: str) -> str:
    """The name of instrument ``i``'s (0-based, frame order) feature column in the returned arrays."""
    return f"feature/{i}/{column}"


def union_calendar(frames: Sequence[pd.DataFrame]) -> pd.Index:
    """Every date on which at least one instrument has a bar, sorted (the parent computes the same)."""
    index = frames[0].index
    for f in frames[1:]:
        if not f.index.equals(index):
            index = index.union(f.index)
    return index.sort_values() if not index.is_monotonic_increasing else index


def features_of(generate_features: Callable[[pd.DataFrame], Any], df: pd.DataFrame, i: int) -> pd.DataFrame:
    """One instrument's feature frame, checked for shape: one row per input bar, in order."""
    out = generate_features(df.copy())
    if not isinstance(out, pd.DataFrame):
        raise TypeError(f"instrument {i + 1}: generate_features must return a DataFrame, got {type(out).__name__}")
    if len(out) != len(df) or not out.index.equals(df.index):
        raise ValueError(f"instrument {i + 1}: generate_features returned {len(out)} rows for {len(df)} input rows "
                         "or changed the index; keep one row per input bar, in order")
    return out


def _date(value: Any) -> str:
    return str(value.date()) if hasattr(value, "date") else str(value)


class Panel:
    """Every instrument's feature rows laid out date by date, so each ``day`` is one slice, not a search."""

    def __init__(self, features: Sequence[pd.DataFrame], calendar: pd.Index) -> None:
        columns: list[str] = []
        for f in features:
            columns.extend(str(c) for c in f.columns if str(c) not in columns)
        pos = np.concatenate([calendar.get_indexer(f.index) for f in features])
        inst = np.concatenate([np.full(len(f), k + 1, dtype=np.int64) for k, f in enumerate(features)])
        order = np.lexsort((inst, pos))
        self.instruments = inst[order]
        self.bounds = np.searchsorted(pos[order], np.arange(len(calendar) + 1))
        self.calendar = calendar
        numeric, other = [], []
        for c in columns:
            parts = [_column(f, c) for f in features]
            if all(p.dtype.kind in "biuf" for p in parts):
                numeric.append((c, np.concatenate([p.astype(np.float64) for p in parts])[order]))
            else:
                other.append((c, np.concatenate([p.astype(object) for p in parts])[order]))
        self.numeric = pd.Index([c for c, _ in numeric])
        self.block = (np.column_stack([a for _, a in numeric]) if numeric
                      else np.empty((len(order), 0), dtype=np.float64))
        self.other = other
        self.order = list(columns)

    def day(self, t: int) -> pd.DataFrame:
        """The rows of date ``t`` (a copy: the candidate may change it without touching other dates)."""
        a, b = self.bounds[t], self.bounds[t + 1]
        index = pd.Index(self.instruments[a:b], name="instrument")
        frame = pd.DataFrame(self.block[a:b].copy(), index=index, columns=self.numeric)
        if self.other:
            for c, values in self.other:
                frame[c] = values[a:b].copy()
            frame = frame[self.order]
        return frame


def _column(f: pd.DataFrame, c: str) -> np.ndarray:
    """Column ``c`` of one instrument (NaN when it lacks it); the first of same-named columns."""
    matches = [k for k, name in enumerate(f.columns) if str(name) == c]
    if not matches:
        return np.full(len(f), np.nan)
    col = f.iloc[:, matches[0]]
    if pd.api.types.is_bool_dtype(col.dtype) or pd.api.types.is_numeric_dtype(col.dtype):
        return col.to_numpy(dtype=np.float64, na_value=np.nan)
    return col.to_numpy(dtype=object)


def decode_weights(out: Any, index: np.ndarray, date: Any) -> np.ndarray:
    """The weights ``allocate`` returned for the rows ``index`` (instrument numbers) as floats in row order.

    A Series indexed like ``day`` or a dict keyed by instrument number, or a list in row order; a
    missing or None weight is NaN (the parent reads NaN as 0). A weight for an instrument without a
    row that date, a duplicate key, a list of the wrong length or a value that is not a number is an
    ``AllocationError`` naming the date, the instrument and the value. Ranges are the parent's to check.
    """
    when = _date(date)
    if isinstance(out, pd.Series):
        keys, values = list(out.index), list(out.to_numpy(dtype=object))
    elif isinstance(out, dict):
        keys, values = list(out.keys()), list(out.values())
    elif isinstance(out, list | tuple | np.ndarray):
        values = list(np.asarray(out, dtype=object).ravel()) if isinstance(out, np.ndarray) else list(out)
        if len(values) != len(index):
            raise AllocationError(f"allocate on {when} returned a list of {len(values)} weights for "
                                  f"{len(index)} instruments; a list gives one weight per row of day, in order")
        keys = [int(k) for k in index]
    else:
        raise AllocationError(f"allocate on {when} returned {type(out).__name__}; return a Series indexed like day, "
                              "a dict keyed by instrument number or a list in row order")
    weights = np.full(len(index), np.nan)
    row = {int(k): r for r, k in enumerate(index)}
    for key, value in zip(keys, values, strict=True):
        if value is None:
            continue
        if not isinstance(value, NUMBERS):
            raise AllocationError(f"allocate on {when}: the weight of instrument {key!r} is {_short(value)}, "
                                  "not a number")
        number = float(value)
        r = row.get(int(key)) if isinstance(key, NUMBERS) and float(key) == int(key) else None
        if r is None:
            if number != number or number == 0.0:
                continue
            raise AllocationError(f"allocate on {when}: weight {number!r} for instrument {key!r}, which has no row "
                                  f"in day that date (instruments: {', '.join(map(str, index.tolist()))})")
        if weights[r] == weights[r]:
            raise AllocationError(f"allocate on {when}: instrument {key!r} has two weights")
        weights[r] = number
    return weights


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def allocate_all(allocate: Callable[[pd.DataFrame], Any], panel: Panel, n: int) -> np.ndarray:
    """Call ``allocate`` on every date in order; (dates, n) weights, NaN where an instrument has no bar."""
    weights = np.full((len(panel.calendar), n), np.nan)
    for t in range(len(panel.calendar)):
        day = panel.day(t)
        if day.empty:
            continue
        index = day.index.to_numpy()
        decoded = decode_weights(allocate(day), index, panel.calendar[t])
        weights[t, index - 1] = np.where(np.isnan(decoded), 0.0, decoded)
    return weights


def run_frame(namespace: dict[str, Any], frame: tuple[pd.DataFrame, ...]) -> dict[str, np.ndarray]:
    """The sandbox's entry point: weights on the union calendar and every instrument's numeric features."""
    generate_features, allocate = namespace["generate_features"], namespace["allocate"]
    frames = tuple(frame)
    features = [features_of(generate_features, df, i) for i, df in enumerate(frames)]
    calendar = union_calendar(frames)
    out: dict[str, np.ndarray] = {WEIGHTS: allocate_all(allocate, Panel(features, calendar), len(frames))}
    for i, f in enumerate(features):
        kept = 0
        for pos, name in enumerate(f.columns):
            column = f.iloc[:, pos]
            key = feature_key(i, str(name)[:MAX_NAME_CHARS])
            numeric = pd.api.types.is_numeric_dtype(column.dtype) or pd.api.types.is_bool_dtype(column.dtype)
            if key in out or not numeric:
                continue
            kept += 1
            if kept > MAX_FEATURES:
                raise ValueError(f"instrument {i + 1}: more than {MAX_FEATURES} numeric feature columns")
            out[key] = column.to_numpy(dtype=np.float64, na_value=np.nan)
    return out
