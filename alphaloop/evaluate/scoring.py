"""Score a candidate's signals: per split with warm-up on earlier history, walk-forward folds,
and the selection metric the loop ranks by. Every figure is labelled with its split."""

from __future__ import annotations

from dataclasses import dataclass, field
from itertools import pairwise

import numpy as np
import pandas as pd

from alphaloop.data.frequency import periods_per_year as inferred_periods_per_year
from alphaloop.data.frozen import return_column
from alphaloop.evaluate.backtest import DEFAULT_COST_BPS, BacktestResult, backtest, round_trip_bars

SELECTION_METRICS = ("sharpe", "total_return", "sortino", "calmar", "cagr")
DEFAULT_METRIC = "sharpe"
DEFAULT_FOLDS = 4
FOLD_WARMUP_BARS = 252  # a year of history before the first fold's scoring window
# What the walk-forward folds are, in the words --help, check, final and the report all use
FOLDS_WORDS = "walk-forward folds: equal chronological sub-periods of train, not re-fitted (sub-period analysis)"
FOLDS_START = (f"the first fold starts {FOLD_WARMUP_BARS} bars into train (at most a (folds+1)-th of it) so that "
               "features looking back up to a year are warmed up; validation is in no fold")
# Stress paths per scenario (stress.py uses it; defined here, a light module, so the command line and LoopConfig
# read it without importing arch). bench/stress_percentiles.py: the standard error of a reported 5th percentile
# of return falls from about 10 points at 8 paths to about 6 at 32 (the p5 drawdown from 4-5 to 2.5-3.5), for
# about 10 s per population member in the sandbox; 64 paths gain little more for twice the time.
DEFAULT_STRESS_PATHS = 32


@dataclass(frozen=True)
class History:
    """Splits laid end to end so features warm up on the past; windows say where each split is."""

    frame: pd.DataFrame
    windows: dict[str, slice]
    prices: str = "Close"  # the column returns and buy and hold rest on (data.return_column picks it)
    periods_per_year: float = 252.0  # bars a year that annualise every figure (the manifest's frequency)

    @classmethod
    def from_splits(cls, splits: dict[str, pd.DataFrame], periods_per_year: float | None = None) -> History:
        """The splits end to end; ``periods_per_year`` from the manifest, else inferred from the dates."""
        frames, windows, start = [], {}, 0
        for name, df in splits.items():
            frames.append(df)
            windows[name] = slice(start, start + len(df))
            start += len(df)
        frame = pd.concat(frames)
        frame.index.name = "Date"
        per_year = inferred_periods_per_year(frame.index) if periods_per_year is None else float(periods_per_year)
        return cls(frame=frame, windows=windows, prices=return_column(frames), periods_per_year=per_year)

    def return_close(self) -> np.ndarray:
        """The whole history's closes that returns are measured on (dividend-adjusted when ``prices`` says so)."""
        return self.frame[self.prices].to_numpy(dtype=np.float64)

    def return_open(self) -> np.ndarray:
        """Opens on the same footing as ``return_close`` (adjusted by the bar's Adj Close / Close) for next_open."""
        open_ = self.frame["Open"].to_numpy(dtype=np.float64)
        if self.prices == "Close":
            return open_
        return open_ * (self.return_close() / self.frame["Close"].to_numpy(dtype=np.float64))

    def bh_returns(self, split: str) -> np.ndarray:
        """Buy-and-hold daily returns of one split, aligned with ``Scores.returns[split]``."""
        close = self.return_close()[self.windows[split]]
        return close[1:] / close[:-1] - 1.0


def fold_windows(n: int, folds: int, warmup: int = FOLD_WARMUP_BARS) -> list[slice]:
    """Chronological, equal, non-overlapping scoring windows over rows [warmup, n)."""
    if folds < 1:
        return []
    warmup = min(warmup, n // (folds + 1))
    edges = np.linspace(warmup, n, folds + 1).round().astype(int)
    return [slice(int(a), int(b)) for a, b in pairwise(edges) if b - a >= 2]


def score_window(history: History, signals: np.ndarray, window: slice, cost_bps: float = DEFAULT_COST_BPS,
                 fill: str = "close") -> BacktestResult:
    """Backtest one window of the history; signals are for the whole history frame."""
    close = history.return_close()[window]
    open_ = history.return_open()[window] if fill == "next_open" else None
    return backtest(close, np.asarray(signals)[window], cost_bps=cost_bps, fill=fill, open_=open_,
                    periods_per_year=history.periods_per_year)


class SplitFigures:
    """What every task's scores share: the selection value on validation, the folds' spread and their JSON.
    A subclass is a dataclass with ``splits``, ``folds`` and ``metric``."""

    splits: dict[str, dict[str, float]]
    folds: list[dict[str, float]]
    metric: str

    @property
    def selection(self) -> float:
        return float(self.splits["val"][self.metric])

    def fold_spread(self) -> dict[str, float]:
        vals = [f[self.metric] for f in self.folds]
        if not vals:
            return {}
        return {"min": float(np.min(vals)), "median": float(np.median(vals)), "max": float(np.max(vals))}

    def to_json(self) -> dict:
        return {"metric": self.metric, "selection_val": self.selection, "splits": self.splits,
                "folds": self.folds, "fold_spread": self.fold_spread()}


@dataclass
class Scores(SplitFigures):
    """Metrics per split and per fold, plus the selection value on validation."""

    splits: dict[str, dict[str, float]]
    folds: list[dict[str, float]]
    returns: dict[str, np.ndarray]  # daily net returns per split (the statistics use validation's)
    metric: str
    positions: dict[str, np.ndarray] = field(default_factory=dict)  # 0/1 per bar per split (trade lists, report)

    def trips(self) -> dict[str, list[list[int]]]:
        """Each split's round trips as [entry bar, exit bar] within the split: small, and the positions follow."""
        return {k: round_trip_bars(p).tolist() for k, p in self.positions.items()}



def score(history: History, signals: np.ndarray, metric: str = DEFAULT_METRIC, folds: int = DEFAULT_FOLDS,
          cost_bps: float = DEFAULT_COST_BPS, fill: str = "close",
          splits: tuple[str, ...] = ("train", "val")) -> Scores:
    """Score every split in ``splits`` and the walk-forward folds over train.

    The folds cover train only: validation is the selection split, so a fold overlapping it would
    put the selection data inside the "spread" that is meant to show regime dependence apart from it.
    """
    if metric not in SELECTION_METRICS:
        raise ValueError(f"unknown metric {metric!r}; choose from {', '.join(SELECTION_METRICS)}")
    results = {name: score_window(history, signals, history.windows[name], cost_bps, fill) for name in splits}
    train = history.windows.get("train")
    fold_metrics = []
    if train is not None:
        base = train.start
        for w in fold_windows(train.stop - base, folds):
            window = slice(base + w.start, base + w.stop)
            m = score_window(history, signals, window, cost_bps, fill).metrics
            idx = history.frame.index
            fold_metrics.append({**m, "start": str(idx[window.start].date()), "end": str(idx[window.stop - 1].date())})
    return Scores(
        splits={k: r.metrics for k, r in results.items()},
        folds=fold_metrics,
        returns={k: r.returns for k, r in results.items()},
        metric=metric,
        positions={k: r.positions for k, r in results.items()},
    )
