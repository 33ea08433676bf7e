"""Seeded synthetic universes for the portfolio task: a common market factor, idiosyncratic noise and,
when asked, a planted cross-sectional edge (a persistent drift per instrument that momentum can rank)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from alphaloop.evaluate.scoring import History

SPLITS = (("train", 0.6), ("val", 0.2), ("test", 0.2))


def universe_frames(n: int = 8, days: int = 1500, edge: float = 0.0, seed: int = 0,
                    ragged: bool = False) -> tuple[pd.DataFrame, ...]:
    """``n`` OHLCV frames on business days; returns = beta x market + drift + noise. ``edge`` scales a
    persistent per-instrument drift (AR(1), half-life ~35 days, zero mean across instruments each day) that
    past returns reveal; 0 plants none.
    ``ragged`` drops a few bars per instrument so calendars differ."""
    rng = np.random.default_rng(seed)
    dates = pd.bdate_range("2000-01-03", periods=days)
    market = rng.normal(0.0003, 0.010, days)
    drift = np.zeros((days, n))
    shocks = rng.normal(0.0, 1.0, (days, n))
    for t in range(1, days):
        drift[t] = 0.98 * drift[t - 1] + 0.2 * shocks[t]
    drift -= drift.mean(axis=1, keepdims=True)  # purely cross-sectional: the market factor is not touched
    beta = rng.uniform(0.7, 1.3, n)
    noise = rng.normal(0.0, 0.012, (days, n))
    rets = market[:, None] * beta[None, :] + noise + edge * 0.001 * np.vstack([np.zeros((1, n)), drift[:-1]])
    close = 50.0 * np.exp(np.cumsum(np.log1p(rets), axis=0))
    frames = []
    for k in range(n):
        c = close[:, k]
        f = pd.DataFrame({"Open": c * (1 + rng.normal(0, 0.002, days)), "Close": c,
                          "Volume": rng.integers(1_000, 10_000, days).astype(float)}, index=dates)
        f["High"] = f[["Open", "Close"]].max(axis=1) * 1.003
        f["Low"] = f[["Open", "Close"]].min(axis=1) * 0.997
        f = f[["Open", "High", "Low", "Close", "Volume"]]
        if ragged:
            keep = np.ones(days, dtype=bool)
            keep[rng.choice(np.arange(5, days - 5), size=days // 50, replace=False)] = False
            f = f[keep]
        f.index.name = "Date"
        frames.append(f)
    return tuple(frames)


def split_frames(frames: tuple[pd.DataFrame, ...], names: tuple[str, ...] = ("train", "val")) -> tuple[History, ...]:
    """Histories cut at the same dates for every instrument (the universe's splits), ``names`` laid end to end."""
    dates = frames[0].index.union(frames[-1].index)
    edges = np.cumsum([0] + [int(round(len(dates) * share)) for _, share in SPLITS])
    edges[-1] = len(dates)
    cuts = {name: (dates[a], dates[b - 1]) for (name, _), a, b in zip(SPLITS, edges[:-1], edges[1:], strict=True)}
    out = []
    for f in frames:
        out.append(History.from_splits({name: f.loc[cuts[name][0]:cuts[name][1]] for name in names}))
    return tuple(out)


def namespace(region: str) -> dict:
    """A region executed in this process with ``pd`` and ``np`` in scope (tests only: no isolation)."""
    ns: dict = {"pd": pd, "np": np}
    exec(compile(region, "<candidate>", "exec"), ns)  # noqa: S102 - test double of the sandbox
    return ns


EQUAL_WEIGHT = '''
def generate_features(df):
    return df

def allocate(day):
    return [1.0 / len(day)] * len(day)
'''

MOMENTUM = '''
def generate_features(df):
    df["mom"] = df["Close"].pct_change(20)
    return df

def allocate(day):
    ranked = day["mom"].dropna().sort_values()
    k = max(1, len(ranked) // 3)
    weights = {i: 0.5 / k for i in ranked.index[-k:]}
    weights.update({i: -0.5 / k for i in ranked.index[:k]})
    return weights
'''

# Reads another instrument's next close through a module-level dict shared by the panel's instruments.
CROSS_LEAK = '''
SEEN = {}

def generate_features(df):
    SEEN[len(SEEN) + 1] = df["Close"].to_numpy()
    return df

def allocate(day):
    first = SEEN[1]
    hits = np.flatnonzero(first == day["Close"].iloc[0])
    if not len(hits) or hits[0] + 1 >= len(first):
        return {}
    t = hits[0]
    return {i: (0.2 if SEEN[i][t + 1] > SEEN[i][t] else -0.2) for i in day.index}
'''

# Keyed to row numbers (a feature counting rows) and to day numbers (days since an epoch): the invariance probes'
# targets.
KEYED = '''
def generate_features(df):
    df["KEY"] = FEATURE
    df["mom"] = df["Close"].pct_change(20)
    return df

def allocate(day):
    ranked = day["mom"].dropna().sort_values()
    if len(ranked) < 2:
        return {}
    sign = 1.0 if day["KEY"].iloc[0] % CYCLE else -1.0
    return {ranked.index[-1]: 0.5 * sign, ranked.index[0]: -0.5 * sign}
'''


def _keyed(key: str, feature: str, cycle: str) -> str:
    return KEYED.replace("KEY", key).replace("FEATURE", feature).replace("CYCLE", cycle)


ROW_KEYED = _keyed("row", "np.arange(len(df)).astype(float)", "10 < 5")
DAY_KEYED = _keyed("day", "df.index.to_julian_date().to_numpy()", "13 < 6")
