"""Score a portfolio's weights in the trusted parent: one return series per split and fold, with the
equal-weight buy and hold of the same instruments and cash beside every figure.

Fill and costs: the weights set with date t's close earn close t -> the instrument's next close (the
trade task's fill). Each instrument keeps its own calendar: on a date where it has no bar it earns
nothing and keeps the weight held at its last bar, which then earns the whole move from that bar to
its next one; that kept weight takes its place in the gross cap first, and what allocate sets that
date is scaled to the room left (``held_weights``). After an instrument's last bar it holds nothing.
Costs are ``cost_bps`` of the summed absolute changes of the target weights, charged in the period
after the change; holding a constant target is free (the daily rebalance back to it, as the
equal-weight benchmark's, costs nothing), and so is the book set on the history's very first date.
The portfolio runs on without a break across the splits, so a split's first period holds what the
previous date set; each split's figures are its own dates only.

The benchmark is the universe's (``evaluate.universe``): on each date the mean return of the
instruments with a bar that date, each from its own previous bar; cash earns 0, so its Sharpe, return
and drawdown are 0 by construction. An allocator holding 1/n of the n instruments with a bar each
date reproduces the benchmark exactly on a shared calendar.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from alphaloop.evaluate.backtest import DEFAULT_COST_BPS, TRADING_DAYS, window_figures
from alphaloop.evaluate.scoring import DEFAULT_FOLDS, SELECTION_METRICS, History, SplitFigures, fold_windows
from alphaloop.tasks.portfolio.contract import DEFAULT_MAX_GROSS, TOLERANCE, Calendar

PORTFOLIO_METRICS = (*SELECTION_METRICS, "information_ratio")
DEFAULT_METRIC = "sharpe"


@dataclass(frozen=True)
class Panel:
    """Closes and returns of every instrument on the union calendar (NaN close where it has no bar)."""

    calendar: Calendar
    close: np.ndarray  # (dates, instruments)
    returns: np.ndarray  # each instrument's return from its previous bar, 0 where it has none
    bh: np.ndarray  # the equal-weight buy and hold's return per date (0 where no instrument has a return)
    windows: dict[str, tuple[int, int]]  # split -> [start, stop) on the calendar

    @classmethod
    def of(cls, histories: Sequence[History]) -> Panel:
        calendar = Calendar.of([h.frame for h in histories])
        close = np.full(calendar.present.shape, np.nan)
        for k, (h, rows) in enumerate(zip(histories, calendar.rows, strict=True)):
            close[rows, k] = h.return_close()
        prev = np.vstack([np.full((1, close.shape[1]), np.nan), pd.DataFrame(close).ffill().to_numpy()[:-1]])
        rel = close / prev - 1.0
        has = np.isfinite(rel)
        count = has.sum(axis=1)
        bh = np.divide(np.where(has, rel, 0.0).sum(axis=1), count, out=np.zeros(len(count)), where=count > 0)
        windows = {}
        for name in histories[0].windows:
            starts, stops = [], []
            for h, rows in zip(histories, calendar.rows, strict=True):
                w = h.windows.get(name)
                if w is not None and w.stop > w.start:
                    starts.append(rows[w.start])
                    stops.append(rows[w.stop - 1] + 1)
            if starts:
                windows[name] = (int(min(starts)), int(max(stops)))
        return cls(calendar=calendar, close=close, returns=np.where(has, rel, 0.0), bh=bh, windows=windows)


@dataclass
class PortfolioScores(SplitFigures):
    """Figures per split and fold (strategy, equal-weight buy and hold as ``bh_*``), the selection value,
    and the series the statistics, duplicates and report read."""

    splits: dict[str, dict[str, float]]
    folds: list[dict[str, float]]
    returns: dict[str, np.ndarray]  # daily net returns per split
    bh: dict[str, np.ndarray]  # the equal-weight buy and hold's, aligned
    contributions: dict[str, list[float]]  # per split, each instrument's summed daily contribution, in order
    metric: str
    dates: dict[str, pd.Index] = field(default_factory=dict)  # the return dates per split
    weights: dict[str, np.ndarray] = field(default_factory=dict, repr=False)  # held weights per split
    max_gross: float | None = None  # the gross cap the weights were checked against (final reuses it)

    def to_json(self) -> dict:
        return {**super().to_json(), "contributions": self.contributions, "max_gross": self.max_gross}


def held_weights(weights: np.ndarray, max_gross: float = DEFAULT_MAX_GROSS) -> np.ndarray:
    """The book each date's close sets: allocate's weights where an instrument has a bar, the weight kept
    from its last bar where it has none (0 before its first bar and after its last), with what allocate
    sets scaled down to the room the kept weights leave under the cap, so the book never holds more than
    ``max_gross``.

    The scale of a date depends on the weights kept from earlier dates, which were scaled in turn; each
    pass below settles every date whose chain of kept weights is one step longer, so the passes stop
    after the longest chain (a handful on real calendars), each one vectorised over the whole panel."""
    w = np.asarray(weights, dtype=np.float64)
    bar = np.isfinite(w)
    if not bar.size:
        return np.zeros(w.shape)
    ended = np.zeros_like(bar)  # the date after an instrument's last bar closes its position
    last = np.where(bar.any(axis=0), bar.shape[0] - 1 - np.argmax(bar[::-1], axis=0), bar.shape[0])
    cols = np.flatnonzero(last + 1 < bar.shape[0])
    ended[last[cols] + 1, cols] = True
    absent = ~bar & ~ended
    gross = np.abs(np.where(bar, w, 0.0)).sum(axis=1)
    scale = np.ones(w.shape[0])
    for _ in range(w.shape[0] + 1):
        held = _carry(np.where(bar, w * scale[:, None], np.where(ended, 0.0, np.nan)))
        room = np.maximum(max_gross - np.abs(np.where(absent, held, 0.0)).sum(axis=1), 0.0)
        new = np.where(gross > room + TOLERANCE, room / np.where(gross > 0, gross, 1.0), 1.0)
        if np.array_equal(new, scale):
            return held
        scale = new
    raise AssertionError("every date's scale depends only on earlier dates, so the passes settle")


def _carry(targets: np.ndarray) -> np.ndarray:
    """Each date's last set target at or before it (0 before any)."""
    return np.nan_to_num(pd.DataFrame(targets).ffill().to_numpy(), nan=0.0)


def contributions(panel: Panel, weights: np.ndarray, cost_bps: float,
                  max_gross: float = DEFAULT_MAX_GROSS) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per date and instrument the net contribution to the portfolio's return, the held weights and the
    weight changes (all (dates, instruments)); row t is the period ending at date t."""
    target = held_weights(weights, max_gross)
    held = np.vstack([np.zeros((1, target.shape[1])), target[:-1]])  # set at the previous date's close
    change = np.diff(target, axis=0, prepend=target[:1])  # the first date's book is set, not traded (free)
    cost = np.vstack([np.zeros((1, target.shape[1])), np.abs(change[:-1])]) * (cost_bps / 1e4)
    return held * panel.returns - cost, held, change


def _information_ratio(excess: np.ndarray, periods_per_year: float = TRADING_DAYS) -> float:
    if excess.size < 2:
        return 0.0
    sd = excess.std(ddof=1)
    return float(excess.mean() / sd * np.sqrt(periods_per_year)) if sd > 1e-15 else 0.0


def window_metrics(r: np.ndarray, bh: np.ndarray, held: np.ndarray, change: np.ndarray,
                   periods_per_year: float = TRADING_DAYS) -> dict[str, float]:
    """Every figure of one window: return figures beside the benchmark's, exposures, turnover, legs, beta,
    correlation and information ratio against the equal-weight buy and hold, annualised by the data's bars a
    year (the manifest's, through ``History.periods_per_year``)."""
    n = r.size
    years = n / periods_per_year
    gross = np.abs(held).sum(axis=1)
    traded = np.abs(change).sum()
    var_bh = float(bh.var(ddof=1)) if n > 1 else 0.0
    cov = float(np.cov(r, bh, ddof=1)[0, 1]) if n > 1 else 0.0
    sd = float(r.std(ddof=1)) if n > 1 else 0.0
    corr = cov / (sd * np.sqrt(var_bh)) if sd > 1e-15 and var_bh > 1e-30 else 0.0
    return window_figures(r, bh, {
        "exposure": float(gross.mean()) if n else 0.0,
        "gross_exposure": float(gross.mean()) if n else 0.0,
        "net_exposure": float(held.sum(axis=1).mean()) if n else 0.0,
        "turnover": float(traded / years) if years > 0 else 0.0,
        "rebalances": float((np.abs(change) > 1e-12).any(axis=1).sum()),
        "long_count": float((held > 1e-12).sum(axis=1).mean()) if n else 0.0,
        "short_count": float((held < -1e-12).sum(axis=1).mean()) if n else 0.0,
        "beta": cov / var_bh if var_bh > 1e-30 else 0.0,
        "correlation": float(corr),
        "information_ratio": _information_ratio(r - bh, periods_per_year),
    }, periods_per_year=periods_per_year)


def score_portfolio(histories: Sequence[History], weights: np.ndarray, metric: str = DEFAULT_METRIC,
                    folds: int = DEFAULT_FOLDS, cost_bps: float = DEFAULT_COST_BPS,
                    splits: tuple[str, ...] = ("train", "val"), panel: Panel | None = None,
                    max_gross: float = DEFAULT_MAX_GROSS) -> PortfolioScores:
    """Score validated weights ((dates, instruments) on the union calendar, NaN where no bar) per split and
    per walk-forward fold over train (validation is in no fold: it is the selection split); ``max_gross`` is
    the cap they were validated against, which the book held keeps (``held_weights``)."""
    if metric not in PORTFOLIO_METRICS:
        raise ValueError(f"unknown metric {metric!r}; choose from {', '.join(PORTFOLIO_METRICS)}")
    panel = panel or Panel.of(histories)
    contrib, held, change = contributions(panel, weights, cost_bps, max_gross)
    port = contrib.sum(axis=1)

    def window(a: int, b: int) -> dict[str, float]:
        return window_metrics(port[a + 1:b], panel.bh[a + 1:b], held[a + 1:b], change[a:b - 1],
                              histories[0].periods_per_year)

    out, rets, bhs, parts, dates, kept = {}, {}, {}, {}, {}, {}
    for name in splits:
        a, b = panel.windows[name]
        out[name] = {**window(a, b), "instruments": float(len(histories))}
        rets[name], bhs[name] = port[a + 1:b], panel.bh[a + 1:b]
        parts[name] = contrib[a + 1:b].sum(axis=0).tolist()
        dates[name] = panel.calendar.dates[a + 1:b]
        kept[name] = held[a + 1:b]
    fold_metrics = []
    if "train" in panel.windows and "train" in splits:
        a0, b0 = panel.windows["train"]
        for w in fold_windows(b0 - a0, folds):
            a, b = a0 + w.start, a0 + w.stop
            fold_metrics.append({**window(a, b), "start": str(panel.calendar.dates[a].date()),
                                 "end": str(panel.calendar.dates[b - 1].date())})
    return PortfolioScores(splits=out, folds=fold_metrics, returns=rets, bh=bhs, contributions=parts,
                           metric=metric, dates=dates, weights=kept, max_gross=max_gross)
