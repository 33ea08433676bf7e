"""Score one candidate over a universe of instruments: each instrument's long/flat strategy on its own
bars, and the equal-weight portfolio of them, whose validation figure is what the loop selects on.

Why a portfolio: on one instrument a test split of a few years has a Sharpe standard error of about
0.6, so a lucky rule and a good one look alike; the same rule on several instruments averages much
of that luck away, and a rule that only works on one instrument no longer looks good.

The portfolio holds each instrument at equal weight, rebalanced every day: its return on a date is
the mean of the returns of the instruments that have a bar on that date (each instrument keeps its
own calendar; no bar is invented). Buy and hold is the same portfolio of always-long positions.
Trade counts are summed over instruments, exposure and turnover averaged. The same holds for the
folds over train, whose date ranges are cut from the union of the instruments' train calendars.
With one instrument the portfolio is that instrument and every figure is ``scoring.score``'s.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from alphaloop.evaluate.backtest import DEFAULT_COST_BPS, TRADING_DAYS, positions_key, window_figures, window_positions
from alphaloop.evaluate.scoring import DEFAULT_FOLDS, DEFAULT_METRIC, History, Scores, fold_windows, score, score_window

if TYPE_CHECKING:
    from alphaloop.data.frozen import Universe


def instrument_label(i: int) -> str:
    """How prompts and reasons name an instrument: its number 1..N, never its ticker."""
    return f"instrument {i + 1}"


@dataclass(frozen=True)
class Leg:
    """One instrument's returns on one window, dated by the bar each period ends on."""

    dates: pd.Index
    returns: np.ndarray
    bh_returns: np.ndarray
    metrics: dict[str, float]
    periods_per_year: float = TRADING_DAYS  # its history's bars a year: the portfolio is annualised by it


def combine(legs: Sequence[Leg]) -> tuple[pd.Index, np.ndarray, np.ndarray]:
    """Equal-weight daily-rebalanced portfolio of the legs: the mean over the legs with a bar on each date."""
    if all(leg.dates.equals(legs[0].dates) for leg in legs[1:]):  # one calendar: a plain mean, no alignment
        return (legs[0].dates, np.mean([leg.returns for leg in legs], axis=0),
                np.mean([leg.bh_returns for leg in legs], axis=0))
    ret = pd.concat([pd.Series(leg.returns, index=leg.dates) for leg in legs], axis=1, sort=True).sort_index()
    bh = pd.concat([pd.Series(leg.bh_returns, index=leg.dates) for leg in legs], axis=1, sort=True).sort_index()
    return ret.index, ret.mean(axis=1).to_numpy(), bh.mean(axis=1).to_numpy()


def portfolio_metrics(returns: np.ndarray, bh_returns: np.ndarray, legs: Sequence[Leg]) -> dict[str, float]:
    """The figures ``backtest.compute_metrics`` reports, for a portfolio: return figures from its daily
    returns, trade figures from its instruments (round trips summed, exposure and turnover averaged)."""
    trips = np.array([leg.metrics["round_trips"] for leg in legs])
    wins = np.array([leg.metrics["win_rate"] for leg in legs])
    return {**window_figures(returns, bh_returns, {
        "round_trips": float(trips.sum()),
        "exposure": float(np.mean([leg.metrics["exposure"] for leg in legs])),
        "turnover": float(np.mean([leg.metrics["turnover"] for leg in legs])),
        "win_rate": float((trips * wins).sum() / trips.sum()) if trips.sum() else 0.0,
    }, periods_per_year=legs[0].periods_per_year if legs else TRADING_DAYS), "instruments": float(len(legs))}


def _leg(history: History, signals: np.ndarray, window: slice, cost_bps: float, fill: str) -> Leg:
    result = score_window(history, signals, window, cost_bps, fill)
    return Leg(history.frame.index[window][1:], result.returns, result.bh_returns, result.metrics,
               history.periods_per_year)


def _portfolio(legs: Sequence[Leg]) -> tuple[dict[str, float], np.ndarray, pd.Index]:
    dates, ret, bh = combine(legs)
    return portfolio_metrics(ret, bh, legs), ret, dates


def portfolio_folds(histories: Sequence[History], signals: Sequence[np.ndarray], folds: int, cost_bps: float,
                    fill: str = "close") -> list[dict]:
    """Walk-forward folds of the portfolio over train: date ranges cut from the union of the train calendars
    (as ``scoring.fold_windows`` cuts rows), each instrument backtested on its bars inside each range."""
    calendar = pd.Index(sorted(set().union(*(h.frame.index[h.windows["train"]] for h in histories))))
    out = []
    for w in fold_windows(len(calendar), folds):
        start, end = calendar[w.start], calendar[w.stop - 1]
        legs = []
        for h, s in zip(histories, signals, strict=True):
            train = h.windows["train"]
            idx = h.frame.index[train]
            a, b = train.start + idx.searchsorted(start, "left"), train.start + idx.searchsorted(end, "right")
            if b - a >= 2:
                legs.append(_leg(h, s, slice(int(a), int(b)), cost_bps, fill))
        if legs:
            m, _, _ = _portfolio(legs)
            out.append({**m, "start": str(start.date()), "end": str(end.date())})
    return out


@dataclass(frozen=True)
class UniverseFigures:
    """A candidate over a universe: the portfolio figure and the spread over instruments, never their names."""

    metric: str
    portfolio: float
    instruments: int
    best: tuple[int, float] | None = None  # (instrument number 1..N, value)
    median: float | None = None
    worst: tuple[int, float] | None = None
    each: tuple[tuple[float, float], ...] = ()  # per instrument, in order: (its value, its buy and hold's)


@dataclass
class UniverseScores:
    """The portfolio's scores (what the loop ranks by) and each instrument's, in the universe's order."""

    portfolio: Scores
    instruments: tuple[Scores, ...]
    dates: dict[str, pd.Index]  # the portfolio's return dates per split (the union of the calendars)

    def figures(self) -> UniverseFigures:
        """Portfolio figure with the best, median and worst instrument by validation metric (numbered 1..N)."""
        metric = self.portfolio.metric
        values = np.array([s.splits["val"][metric] for s in self.instruments], dtype=np.float64)
        best, worst = int(np.argmax(values)), int(np.argmin(values))
        return UniverseFigures(metric=metric, portfolio=self.portfolio.selection, instruments=len(values),
                               best=(best + 1, float(values[best])), median=float(np.median(values)),
                               worst=(worst + 1, float(values[worst])),
                               each=tuple((float(v), float(s.splits["val"].get(f"bh_{metric}", float("nan"))))
                                          for v, s in zip(values, self.instruments, strict=True)))

    def figures_json(self) -> dict:
        """The portfolio's validation figure with the best, median and worst instrument, by number."""
        f = self.figures()
        return {"instruments": len(self.instruments), "metric": f.metric, "portfolio_val": f.portfolio,
                "best": {"instrument": f.best[0], "val": f.best[1]}, "median_val": f.median,
                "worst": {"instrument": f.worst[0], "val": f.worst[1]}}

    def to_json(self) -> dict:
        """Per-instrument figures for the iteration record (numbered, in order; no names: records feed prompts)."""
        return {**self.figures_json(),
                "per_instrument": [{"splits": s.splits, "fold_spread": s.fold_spread(), "trades": s.trips()}
                                   for s in self.instruments]}


def score_universe(histories: Sequence[History], signals: Sequence[np.ndarray], metric: str = DEFAULT_METRIC,
                   folds: int = DEFAULT_FOLDS, cost_bps: float = DEFAULT_COST_BPS, fill: str = "close",
                   splits: tuple[str, ...] = ("train", "val")) -> UniverseScores:
    """Score each instrument with ``scoring.score`` and the equal-weight portfolio of them.

    With one instrument the portfolio's ``Scores`` is that instrument's own, so a single-instrument
    run ranks, records and prints exactly the numbers it always did.
    """
    if len(histories) != len(signals) or not histories:
        raise ValueError(f"{len(histories)} instruments but {len(signals)} signal arrays")
    per = tuple(score(h, s, metric=metric, folds=folds, cost_bps=cost_bps, fill=fill, splits=splits)
                for h, s in zip(histories, signals, strict=True))
    if len(per) == 1:
        h = histories[0]
        return UniverseScores(portfolio=per[0], instruments=per,
                              dates={k: h.frame.index[h.windows[k]][1:] for k in splits})
    metrics, returns, dates = {}, {}, {}
    for name in splits:  # each instrument's own backtest of the split, not a second one
        legs = [Leg(h.frame.index[h.windows[name]][1:], s.returns[name], h.bh_returns(name), s.splits[name],
                    h.periods_per_year)
                for h, s in zip(histories, per, strict=True)]
        metrics[name], returns[name], dates[name] = _portfolio(legs)
    fold_metrics = portfolio_folds(histories, signals, folds, cost_bps, fill) if "train" in splits else []
    portfolio = Scores(splits=metrics, folds=fold_metrics, returns=returns, metric=metric)
    return UniverseScores(portfolio=portfolio, instruments=per, dates=dates)


def bh_returns(histories: Sequence[History], split: str = "val") -> np.ndarray:
    """The equal-weight buy and hold of the universe on one split, aligned with the portfolio's returns."""
    legs = []
    for h in histories:
        rel = h.bh_returns(split)
        legs.append(Leg(h.frame.index[h.windows[split]][1:], rel, rel, {}, h.periods_per_year))
    return combine(legs)[2]


def curve_dates(histories: Sequence[History], split: str = "val") -> pd.DatetimeIndex:
    """The dates of the portfolio's growth-of-1 curve on a split: the earliest first bar, then each return's date
    (one more than the returns, as a curve starting at 1 has)."""
    first = min(h.frame.index[h.windows[split]][0] for h in histories)
    ends = sorted(set().union(*(h.frame.index[h.windows[split]][1:] for h in histories)))
    return pd.DatetimeIndex([first, *ends])


def instrument_histories(universe: Universe, names: tuple[str, ...] = ("train", "val")) -> list[History]:
    """One ``History`` per instrument of a ``data.Universe`` (``instruments`` in order, ``splits``
    instrument -> split -> frame), splits laid end to end in the order of ``names``."""
    return [History.from_splits({k: universe.splits[name][k] for k in names}, universe.periods_per_year)
            for name in universe.instruments]


def positions_sha256(histories: Sequence[History], signals: Sequence[np.ndarray]) -> str:
    """Key of the validation positions on every instrument: equal keys trade identically on validation
    everywhere, so a duplicate is judged on what it holds, not on the raw signals it emits."""
    if len(histories) == 1:
        return positions_key(window_positions(signals[0], histories[0].windows["val"]))
    return positions_key({f"{k:06d}": window_positions(s, h.windows["val"])
                          for k, (h, s) in enumerate(zip(histories, signals, strict=True))})


def signals_sha256(signals: Sequence[np.ndarray]) -> str:
    """Key of the raw signals on every instrument (one instrument: the key the loop always wrote)."""
    h = hashlib.sha256()
    for s in signals:
        h.update(np.asarray(s, dtype=np.int8).tobytes())
    return h.hexdigest()


def figures_from_record(u: dict | None) -> UniverseFigures | None:
    """The prompt's universe line (portfolio, best, median, worst instrument by number) from a record's
    ``universe`` field (None for one instrument)."""
    if not u:
        return None
    metric = u["metric"]
    each = tuple((float(i["splits"]["val"].get(metric, float("nan"))), float(i["splits"]["val"].get(f"bh_{metric}",
                                                                                                      float("nan"))))
                 for i in u.get("per_instrument", []))
    return UniverseFigures(metric=metric, portfolio=float(u["portfolio_val"]), instruments=int(u["instruments"]),
                           best=(int(u["best"]["instrument"]), float(u["best"]["val"])),
                           median=float(u["median_val"]),
                           worst=(int(u["worst"]["instrument"]), float(u["worst"]["val"])), each=each)
