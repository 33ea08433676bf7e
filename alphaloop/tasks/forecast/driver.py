"""The forecast task's child driver: run a forecaster on one frame and turn its answers into arrays.

``forecast(row)`` returns ``{1: (p_down, p_flat, p_up), 3: ..., 5: ..., 10: ...}`` for every row.
``decode_forecasts`` turns the per-row mappings into a float64 array (n_rows, horizons, 3) plus an
int8 code per row and horizon saying whether the entry could be read at all. ``run_frame`` runs the
candidate on every instrument of a frame and returns only named float64 arrays (``forecasts/<i>``,
``codes/<i>`` and ``feature/<i>/<column>``), never Python objects; the trusted parent checks them
(``alphaloop.tasks.forecast.validate``). Its text is handed to the sandbox and built in the clean
zygote, so it imports only the standard library, numpy and pandas, never alphaloop (a test checks).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

FUNCTIONS = ("generate_features", "forecast")
HORIZONS = (1, 3, 5, 10)  # bars ahead; equal to ``alphaloop.tasks.forecast.buckets.HORIZONS`` (a test checks)
MAX_FEATURES = 256
MAX_NAME_CHARS = 200
PREWARM_REGION = '''
def generate_features(d):
    d["a"] = d["Close"].rolling(5).mean() + d["Close"].ewm(span=5).mean()
    d["b"] = d["Close"].pct_change().rolling(5).std().rank(pct=True)
    str(d.tail(2))
    return d


def forecast(row):
    return {1: (0.3, 0.4, 0.3), 3: (0.3, 0.4, 0.3), 5: (0.3, 0.4, 0.3), 10: (0.3, 0.4, 0.3)}
'''

OK, MISSING_HORIZON, NOT_THREE_NUMBERS, NOT_A_MAPPING = 0, 1, 2, 3
CODE_TEXT = {
    MISSING_HORIZON: "the horizon is missing from the returned mapping",
    NOT_THREE_NUMBERS: "the value is not three numbers (p_down, p_flat, p_up)",
    NOT_A_MAPPING: "forecast(row) did not return a mapping from horizon to probabilities",
}


@dataclass(frozen=True)
class DecodedForecasts:
    """Probabilities (n, H, 3), NaN where unreadable, and a code (n, H) per entry (0 = read)."""

    probs: np.ndarray
    codes: np.ndarray


def decode_entry(value: object) -> tuple[np.ndarray | None, int]:
    """Three floats from one horizon's value, or None and the code saying why not."""
    if isinstance(value, (str, bytes)):
        return None, NOT_THREE_NUMBERS
    try:
        arr = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError, OverflowError):
        return None, NOT_THREE_NUMBERS
    if arr.shape != (3,):
        return None, NOT_THREE_NUMBERS
    return arr, OK


def decode_forecasts(raw: Sequence[object], horizons: Sequence[int]) -> DecodedForecasts:
    """Per-row mappings -> (n, H, 3) float64 and (n, H) int8 codes; never raises on bad rows.

    The fast path builds the array in one go when every row is a well-formed mapping; otherwise each
    row is read on its own so one bad entry is pinpointed rather than failing the whole array.
    """
    n, hs = len(raw), tuple(horizons)
    try:
        if not all(isinstance(m, Mapping) for m in raw):
            raise TypeError("not every row is a mapping")
        probs = np.array([[m[h] for h in hs] for m in raw], dtype=np.float64)
        if probs.shape == (n, len(hs), 3):
            return DecodedForecasts(probs=probs, codes=np.zeros((n, len(hs)), dtype=np.int8))
    except (TypeError, ValueError, KeyError, OverflowError):
        pass
    probs = np.full((n, len(hs), 3), np.nan)
    codes = np.zeros((n, len(hs)), dtype=np.int8)
    for i, m in enumerate(raw):
        if not isinstance(m, Mapping):
            codes[i] = NOT_A_MAPPING
            continue
        for j, h in enumerate(hs):
            if h not in m:
                codes[i, j] = MISSING_HORIZON
                continue
            arr, code = decode_entry(m[h])
            codes[i, j] = code
            if arr is not None:
                probs[i, j] = arr
    return DecodedForecasts(probs=probs, codes=codes)


class BadOutput(Exception):
    """The forecaster ran but returned something the task cannot use (reported as ``bad_output``)."""


class Row(dict):
    """One bar as handed to ``forecast``: ``row['col']`` and ``row.col`` both work."""

    def __getattr__(self, name: str) -> Any:
        try:
            return self[name]
        except KeyError as exc:
            raise AttributeError(name) from exc


def compute_forecast_rows(generate_features: Callable[[pd.DataFrame], pd.DataFrame], forecast: Callable[[Any], Any],
                          df: pd.DataFrame) -> tuple[pd.DataFrame, list[Any]]:
    """Run a forecaster's two functions on ``df``: its feature frame and ``forecast(row)`` per row, undecoded."""
    features = generate_features(df.copy())
    if not isinstance(features, pd.DataFrame):
        raise TypeError(f"generate_features must return a DataFrame, got {type(features).__name__}")
    if len(features) != len(df):
        raise ValueError(f"generate_features returned {len(features)} rows for {len(df)} input rows")
    columns = [str(c) for c in features.columns]
    if not columns:
        return features, [forecast(Row()) for _ in range(len(features))]
    values = [features[c].tolist() for c in features.columns]
    return features, [forecast(Row(zip(columns, vals, strict=True))) for vals in zip(*values, strict=True)]


def run_frame(namespace: dict[str, Any], frame: tuple[pd.DataFrame, ...]) -> dict[str, np.ndarray]:
    """Probabilities, read codes and numeric features of every instrument of ``frame``."""
    generate_features, forecast = namespace["generate_features"], namespace["forecast"]
    arrays: dict[str, np.ndarray] = {}
    for i, df in enumerate(frame):
        features, rows = compute_forecast_rows(generate_features, forecast, df)
        if not features.index.equals(df.index):
            raise BadOutput(f"frame {i}: generate_features changed the index; keep one row per input bar, in order")
        decoded = decode_forecasts(rows, HORIZONS)
        arrays[f"forecasts/{i}"] = decoded.probs
        arrays[f"codes/{i}"] = decoded.codes.astype(np.float64)
        kept = 0
        for pos, name in enumerate(features.columns):
            column = features.iloc[:, pos]
            label = (name if isinstance(name, str) else str(name))[:MAX_NAME_CHARS]
            numeric = pd.api.types.is_numeric_dtype(column.dtype) or pd.api.types.is_bool_dtype(column.dtype)
            if not numeric or f"feature/{i}/{label}" in arrays:
                continue
            kept += 1
            if kept > MAX_FEATURES:
                raise BadOutput(f"frame {i}: more than {MAX_FEATURES} numeric feature columns")
            arrays[f"feature/{i}/{label}"] = column.to_numpy(dtype=np.float64, na_value=np.nan)
    return arrays
