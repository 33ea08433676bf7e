"""Seeded synthetic bars and helpers shared by the forecast tests."""

from __future__ import annotations

import numpy as np
import pandas as pd

from alphaloop.candidate import Row
from alphaloop.evaluate.scoring import History
from alphaloop.tasks.forecast.buckets import BucketScheme


def synthetic_bars(n: int = 2500, seed: int = 7, calm: float = 0.004, wild: float = 0.025,
                   stay: float = 0.99) -> pd.DataFrame:
    """Daily bars whose volatility switches between a calm and a wild state that persists for ~100 bars.

    The planted predictable component: in the wild state large moves (the down and up buckets) are far
    likelier than in the calm state, and the state can be read from recent volatility.
    """
    rng = np.random.default_rng(seed)
    state = np.zeros(n, dtype=int)
    for t in range(1, n):
        state[t] = state[t - 1] if rng.random() < stay else 1 - state[t - 1]
    sigma = np.where(state == 1, wild, calm)
    close = 100.0 * np.exp(np.cumsum(rng.normal(0.0, sigma)))
    index = pd.bdate_range("2001-01-02", periods=n, name="Date")
    return pd.DataFrame({"Open": close, "High": close * 1.002, "Low": close * 0.998, "Close": close,
                         "Volume": 1e6}, index=index)


def history_of(df: pd.DataFrame, train: float = 0.6) -> History:
    cut = int(len(df) * train)
    return History.from_splits({"train": df.iloc[:cut], "val": df.iloc[cut:]})


def scheme_of(history: History) -> BucketScheme:
    return BucketScheme.from_train(history.frame["Close"].to_numpy()[history.windows["train"]])


def exec_region(region: str) -> dict:
    """The region's functions with only pd and np in scope (tests only: no isolation at all)."""
    scope: dict = {"pd": pd, "np": np}
    exec(compile(region, "<forecast region>", "exec"), scope)
    return scope


def rows_of(df: pd.DataFrame) -> list[Row]:
    cols = [str(c) for c in df.columns]
    return [Row(zip(cols, vals, strict=True)) for vals in zip(*(df[c].tolist() for c in df.columns), strict=True)]
