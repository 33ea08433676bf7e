"""The trade task's child driver: what the sandbox child does with one frame (a panel of instruments).

Its text is handed to the sandbox (``Sandbox(drivers=...)``) and built into a module in the clean
zygote, so it imports only the standard library, numpy and pandas, never alphaloop (a test checks).
``run_frame`` calls the candidate's ``generate_features`` and ``strategy_logic`` on every instrument
of the frame and returns named float64 arrays: ``signals/<i>`` and ``feature/<i>/<column>`` (numeric
columns only). The trusted parent (``alphaloop.tasks.trade.outputs``) validates every array again;
the checks here only give the candidate an early, precise reason.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd

FUNCTIONS = ("generate_features", "strategy_logic")
MAX_FEATURES = 256  # numeric feature columns kept per instrument
MAX_NAME_CHARS = 200
NUMBER_TYPES = (bool, int, float, np.integer, np.floating, np.bool_)
# Run once on a synthetic frame by the zygote, so pandas' lazy imports happen before any child forks.
PREWARM_REGION = '''
def generate_features(d):
    d["a"] = d["Close"].rolling(5).mean() + d["Close"].ewm(span=5).mean()
    d["b"] = d["Close"].rolling(5).apply(lambda x: x[-1], raw=True).rank(pct=True)
    d["c"] = d.groupby(d.index.month)["Close"].transform("mean").pct_change().fillna(0)
    d["d"] = np.where(d["a"] > d["b"], 1, 0) + d["Close"].rolling(5).agg(["mean", "std"]).sum(axis=1)
    d["e"] = d["Close"].rolling(5).quantile(0.5).diff().clip(-1, 1).shift(1).ffill()
    list(d.head(2).itertuples())
    str(d.tail(2))
    return d


def strategy_logic(row):
    return 0
'''


class BadOutput(Exception):
    """The candidate ran but returned something the task cannot use (reported as ``bad_output``)."""


class Row(dict):
    """One bar as handed to ``strategy_logic``: ``row['col']`` and ``row.col`` both work."""

    def __getattr__(self, name: str) -> Any:
        try:
            return self[name]
        except KeyError as exc:
            raise AttributeError(name) from exc


def features_of(generate_features: Callable[[pd.DataFrame], pd.DataFrame], df: pd.DataFrame) -> pd.DataFrame:
    """The candidate's feature frame for ``df``, checked to keep one row per input bar."""
    features = generate_features(df.copy())
    if not isinstance(features, pd.DataFrame):
        raise TypeError(f"generate_features must return a DataFrame, got {type(features).__name__}")
    if len(features) != len(df):
        raise ValueError(f"generate_features returned {len(features)} rows for {len(df)} input rows")
    return features


def per_row(features: pd.DataFrame, fn: Callable[[Any], Any]) -> list[Any]:
    """``fn(row)`` for every row of ``features``, in order (rows as ``Row`` mappings of Python scalars)."""
    columns = [str(c) for c in features.columns]
    if not columns:
        return [fn(Row()) for _ in range(len(features))]
    values = [features[c].tolist() for c in features.columns]  # python scalars, like to_dict
    return [fn(Row(zip(columns, vals, strict=True))) for vals in zip(*values, strict=True)]


def compute_signals(generate_features: Callable[[pd.DataFrame], pd.DataFrame], strategy_logic: Callable[[Any], Any],
                    df: pd.DataFrame) -> tuple[pd.DataFrame, np.ndarray]:
    """Run a candidate's two functions on ``df``: its feature frame and raw (unvalidated) signals."""
    features = features_of(generate_features, df)
    return features, np.array(per_row(features, strategy_logic), dtype=object)


def check_signals(raw: Any, n: int) -> np.ndarray:
    """Signals as float64 in {-1, 0, 1}, or ValueError saying what is wrong (the parent checks again)."""
    arr = np.asarray(raw)
    if arr.shape != (n,):
        raise ValueError(f"expected {n} signals, got shape {arr.shape}")
    if arr.dtype == object:
        bad = [k for k in set(map(type, arr.tolist())) if not issubclass(k, NUMBER_TYPES)]
        if bad:
            raise ValueError(f"signals must be numbers, got {bad[0].__name__}")
        arr = arr.astype(np.float64)
    if arr.dtype.kind not in "biuf":
        raise ValueError(f"signals must be numbers, got dtype {arr.dtype}")
    f = arr.astype(np.float64)
    if not np.all(np.isfinite(f)):
        raise ValueError(f"{int(np.sum(~np.isfinite(f)))} signals are NaN or infinite")
    outside = ~np.isin(f, (-1.0, 0.0, 1.0))
    if outside.any():
        raise ValueError(f"{int(outside.sum())} signals outside {{1, -1, 0}} (first: {f[outside][0].item()!r})")
    return f


def numeric_columns(features: pd.DataFrame, where: str) -> dict[str, np.ndarray]:
    """The numeric and boolean columns as float64 (first of a repeated name wins), at most ``MAX_FEATURES``."""
    out: dict[str, np.ndarray] = {}
    for pos, name in enumerate(features.columns):
        column = features.iloc[:, pos]
        if not (pd.api.types.is_numeric_dtype(column.dtype) or pd.api.types.is_bool_dtype(column.dtype)):
            continue
        label = (name if isinstance(name, str) else str(name))[:MAX_NAME_CHARS]
        if label in out:
            continue
        if len(out) >= MAX_FEATURES:
            raise BadOutput(f"{where}more than {MAX_FEATURES} numeric feature columns")
        out[label] = column.to_numpy(dtype=np.float64, na_value=np.nan)
    return out


def run_frame(namespace: dict[str, Any], frame: tuple[pd.DataFrame, ...]) -> dict[str, np.ndarray]:
    """Signals and numeric features of every instrument of ``frame`` ("frame i: " names instrument i)."""
    generate_features, strategy_logic = namespace["generate_features"], namespace["strategy_logic"]
    arrays: dict[str, np.ndarray] = {}
    for i, df in enumerate(frame):
        where = f"frame {i}: "
        features, raw = compute_signals(generate_features, strategy_logic, df)
        if not features.index.equals(df.index):  # signals are matched to bars by position: order must hold
            raise BadOutput(f"{where}generate_features changed the index; keep one row per input bar, in order")
        try:
            arrays[f"signals/{i}"] = check_signals(raw, len(df))
        except ValueError as exc:
            raise BadOutput(f"{where}{exc}") from None
        for name, values in numeric_columns(features, where).items():
            arrays[f"feature/{i}/{name}"] = values
    return arrays
