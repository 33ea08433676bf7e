"""Signals -> positions -> daily returns -> metrics, vectorised with numpy.

Convention (the seed's, and the one every figure in alphaloop uses unless labelled otherwise):
a signal computed from bar t's data takes effect at bar t's close and earns close t -> close t+1.
Signal 1 enters long when flat, -1 exits to flat, 0 keeps the position. A backtest starts flat at
the first bar of the window it is given and any open position is closed at the last bar.
Costs are ``cost_bps`` of traded notional, charged each time the position changes.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

TRADING_DAYS = 252  # bars a year of daily stock data; other data carries its own (History.periods_per_year)
DEFAULT_COST_BPS = 2.0
FILLS = ("close", "next_open")


@dataclass(frozen=True)
class BacktestResult:
    """Everything a scorer or report needs about one backtest window."""

    returns: np.ndarray  # net strategy return of each period close[k] -> close[k+1], length n-1
    positions: np.ndarray  # position held after bar k's close (0 or 1), length n, last is 0
    bh_returns: np.ndarray  # buy-and-hold return of each period, length n-1
    metrics: dict[str, float]


def positions_from_signals(signals: np.ndarray) -> np.ndarray:
    """Turn enter/exit/hold signals into a 0/1 position per bar (state machine, vectorised)."""
    sig = np.asarray(signals, dtype=np.int64)
    idx = np.where(sig != 0, np.arange(sig.size), -1)
    last = np.maximum.accumulate(idx) if sig.size else idx
    pos = np.zeros(sig.size, dtype=np.int64)
    seen = last >= 0
    pos[seen] = sig[last[seen]] == 1
    return pos


def backtest(
    close: np.ndarray,
    signals: np.ndarray,
    cost_bps: float = DEFAULT_COST_BPS,
    fill: str = "close",
    open_: np.ndarray | None = None,
    periods_per_year: float = TRADING_DAYS,
) -> BacktestResult:
    """Backtest one window; ``fill='next_open'`` (labelled option) trades at the next bar's open."""
    close = np.asarray(close, dtype=np.float64)
    if close.ndim != 1 or close.size != np.asarray(signals).size:
        raise ValueError("close and signals must be 1-d arrays of the same length")
    if close.size < 2:
        raise ValueError("a backtest window needs at least two bars")
    if cost_bps < 0:
        raise ValueError("cost_bps must be >= 0")
    if fill not in FILLS:
        raise ValueError(f"fill must be one of {FILLS}")
    pos = positions_from_signals(signals)
    pos[-1] = 0  # close out at the last bar
    cost = cost_bps / 1e4
    trades = np.abs(np.diff(pos, prepend=0)).astype(np.float64)
    rel = close[1:] / close[:-1] - 1.0
    if fill == "close":
        held = pos[:-1]
        gross = 1.0 + held * rel
        factor = gross * (1.0 - cost * trades[:-1])
    else:
        if open_ is None:
            raise ValueError("fill='next_open' needs open prices")
        open_ = np.asarray(open_, dtype=np.float64)
        before = np.concatenate(([0], pos[:-2]))  # position held into bar k+1's open
        after = pos[:-1]  # position from bar k+1's open to its close
        gap = open_[1:] / close[:-1] - 1.0
        intraday = close[1:] / open_[1:] - 1.0
        factor = (1.0 + before * gap) * (1.0 - cost * np.abs(after - before)) * (1.0 + after * intraday)
    factor[-1] *= 1.0 - cost * trades[-1]
    returns = factor - 1.0
    metrics = compute_metrics(returns, pos, rel, periods_per_year)
    return BacktestResult(returns=returns, positions=pos, bh_returns=rel, metrics=metrics)


def sharpe(returns: np.ndarray, periods_per_year: float = TRADING_DAYS) -> float:
    """Annualised arithmetic Sharpe ratio (risk-free 0); 0 when the series has no variance."""
    r = np.asarray(returns, dtype=np.float64)
    if r.size < 2:
        return 0.0
    mean = r.mean()
    sd = np.sqrt(np.dot(r - mean, r - mean) / (r.size - 1))
    return float(mean / sd * np.sqrt(periods_per_year)) if sd > 1e-15 else 0.0


def sortino(returns: np.ndarray, periods_per_year: float = TRADING_DAYS) -> float:
    """Annualised Sortino ratio with target 0 (downside deviation over all periods)."""
    r = np.asarray(returns, dtype=np.float64)
    if r.size < 2:
        return 0.0
    down = np.minimum(r, 0.0)
    dd = np.sqrt(np.dot(down, down) / r.size)
    return float(r.mean() / dd * np.sqrt(periods_per_year)) if dd > 1e-15 else 0.0


def _log_equity(returns: np.ndarray) -> np.ndarray:
    """Log of the equity curve, starting at 0 (equity 1) before the first period."""
    out = np.empty(returns.size + 1)
    out[0] = 0.0
    np.cumsum(np.log1p(returns), out=out[1:])
    return out


def _drawdown_from_log(log_eq: np.ndarray) -> float:
    return float(np.expm1(np.min(log_eq - np.maximum.accumulate(log_eq))))


def max_drawdown(returns: np.ndarray) -> float:
    """Largest peak-to-trough loss of the equity curve starting at 1, as a negative fraction."""
    return _drawdown_from_log(_log_equity(np.asarray(returns, dtype=np.float64)))


def round_trip_bars(pos: np.ndarray) -> np.ndarray:
    """(entry bar, exit bar) of each round trip, shape (k, 2): long from entry's close to exit's close.

    With the window's last position closed (``pos[-1] == 0``, as ``backtest`` does) every entry has an exit.
    """
    change = np.diff(np.asarray(pos, dtype=np.int64), prepend=0)
    return np.column_stack((np.flatnonzero(change == 1), np.flatnonzero(change == -1)))


def positions_from_trips(trips: np.ndarray, n: int) -> np.ndarray:
    """The 0/1 positions of ``n`` bars that ``round_trip_bars`` was given back: the record keeps only the trips."""
    pos = np.zeros(n, dtype=np.int64)
    for entry, exit_ in np.asarray(trips, dtype=np.int64).reshape(-1, 2):
        pos[entry:exit_] = 1
    return pos


def _round_trip_returns(log_eq: np.ndarray, pos: np.ndarray) -> np.ndarray:
    """Net compounded return of each round trip, entry cost and exit cost included."""
    bars = round_trip_bars(pos)
    last_period = np.minimum(bars[:, 1], log_eq.size - 2)  # the exit cost sits in period `exit`
    return np.expm1(log_eq[last_period + 1] - log_eq[bars[:, 0]])


def round_trip_returns(returns: np.ndarray, pos: np.ndarray) -> np.ndarray:
    """Net return of each round trip of a window from its daily net returns (as ``compute_metrics`` counts them)."""
    return _round_trip_returns(_log_equity(np.asarray(returns, dtype=np.float64)), pos)


def window_figures(returns: np.ndarray, bh_returns: np.ndarray, trade: dict[str, float],
                   log_eq: np.ndarray | None = None, periods_per_year: float = TRADING_DAYS) -> dict[str, float]:
    """Every reported figure of a window: those of its daily net returns and buy and hold's, with the
    trade figures (round trips, exposure, turnover, win rate), which depend on how the returns were
    made (one instrument's positions, or a portfolio's legs), set in their place among them."""
    n = returns.size
    years = n / periods_per_year
    log_eq = _log_equity(returns) if log_eq is None else log_eq
    bh_log_eq = _log_equity(bh_returns)
    total = float(np.expm1(log_eq[-1]))
    cagr = float((1.0 + total) ** (1.0 / years) - 1.0) if years > 0 and total > -1 else -1.0
    mdd = _drawdown_from_log(log_eq)
    return {
        "total_return": total,
        "cagr": cagr,
        "sharpe": sharpe(returns, periods_per_year),
        "sortino": sortino(returns, periods_per_year),
        "max_drawdown": mdd,
        "calmar": float(cagr / -mdd) if mdd < -1e-12 else 0.0,
        **trade,
        "bars": float(n + 1),
        "bh_total_return": float(np.expm1(bh_log_eq[-1])),
        "bh_sharpe": sharpe(bh_returns, periods_per_year),
        "bh_max_drawdown": _drawdown_from_log(bh_log_eq),
    }


def compute_metrics(returns: np.ndarray, pos: np.ndarray, bh_returns: np.ndarray,
                    periods_per_year: float = TRADING_DAYS) -> dict[str, float]:
    """Every figure alphaloop reports for one window, strategy and buy-and-hold side by side;
    ``periods_per_year`` is the data's bars a year (the manifest's), which annualises them."""
    n = returns.size
    years = n / periods_per_year
    log_eq = _log_equity(returns)
    trips = _round_trip_returns(log_eq, pos)
    traded = float(np.abs(np.diff(pos, prepend=0)).sum())
    return window_figures(returns, bh_returns, {
        "round_trips": float(trips.size),
        "exposure": float(np.mean(pos[:-1])) if n else 0.0,
        "turnover": float(traded / years) if years > 0 else 0.0,
        "win_rate": float(np.mean(trips > 0)) if trips.size else 0.0,
    }, log_eq, periods_per_year)


def window_positions(signals: np.ndarray, window: slice) -> np.ndarray:
    """The 0/1 positions the backtester holds in ``window`` of ``signals``: flat at the window's
    first bar, the state machine applied, closed at its last bar (as ``backtest.backtest``)."""
    pos = positions_from_signals(np.asarray(signals)[window])
    if pos.size:
        pos[-1] = 0
    return pos.astype(np.int8)


def positions_key(positions: Mapping[str, np.ndarray] | np.ndarray) -> str:
    """sha256 over the validation positions, per instrument (sorted by name): equal keys trade identically."""
    per = {"": positions} if isinstance(positions, np.ndarray) else positions
    h = hashlib.sha256()
    for name in sorted(per):
        pos = np.ascontiguousarray(np.asarray(per[name]) != 0, dtype=np.int8)
        h.update(f"{name}\0{pos.size}\0".encode())
        h.update(pos.tobytes())
    return h.hexdigest()
