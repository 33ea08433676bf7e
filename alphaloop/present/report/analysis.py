"""The figures users of backtesting tools look for, for the best candidate: trade statistics (profit
factor, expectancy, average win and loss, longest losing streak), monthly returns, rolling Sharpe, the
worst drawdowns with their durations, and its daily equity against buy and hold as a CSV.

Every figure is computed from the record's daily net returns and round trips on each split (and from
``final``'s reading on test), each beside buy and hold on the same days.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from alphaloop.evaluate.backtest import TRADING_DAYS, round_trip_returns
from alphaloop.present.report.best import Window, final_window, instrument_windows, split_window
from alphaloop.present.report.charts import BUY_HOLD, STRATEGY, date_axis, figure_html, style_axes
from alphaloop.present.report.data import Run
from alphaloop.present.report.html import cell, esc, note, section, table, td
from alphaloop.run.workdir import EQUITY_CSV

ROLLING_BARS = 126  # half a year of daily bars per rolling Sharpe point
WORST_DRAWDOWNS = 5


def trade_stats(w: Window) -> dict[str, float]:
    """Profit factor, expectancy, average win and loss and the longest losing streak of one split's round trips."""
    trips = round_trip_returns(w.returns, w.positions) if w.trips.size else np.zeros(0)
    wins, losses = trips[trips > 0], trips[trips < 0]
    streak = longest = 0
    for r in trips:
        streak = streak + 1 if r < 0 else 0
        longest = max(longest, streak)
    gross_loss = float(-losses.sum())
    return {"trips": float(trips.size),
            "profit_factor": float(wins.sum() / gross_loss) if gross_loss > 0 else float("nan"),
            "expectancy": float(trips.mean()) if trips.size else float("nan"),
            "avg_win": float(wins.mean()) if wins.size else float("nan"),
            "avg_loss": float(losses.mean()) if losses.size else float("nan"),
            "longest_losing_streak": float(longest)}


def trade_stats_html(windows: list[Window]) -> str:
    """One row of trade statistics per split (round trips, net of costs)."""
    rows = []
    for w in windows:
        s = trade_stats(w)
        rows.append(td(f"{w.where} split") + cell(s["trips"], "round_trips") + cell(s["profit_factor"])
                    + cell(s["expectancy"], "total_return") + cell(s["avg_win"], "total_return")
                    + cell(s["avg_loss"], "total_return") + cell(s["longest_losing_streak"], "round_trips"))
    if not rows:
        return ""
    return ("<h3>Trade statistics (round trips, net of costs)</h3>"
            + table(["measured on", "round trips", "profit factor", "expectancy (mean trip)", "average win",
                     "average loss", "longest losing streak (trips)"], rows, "compact")
            + note("profit factor: gross gains of winning trips over gross losses of losing ones (- when no trip "
                   "lost); buy and hold is one trip a split, its return is in the metrics table", "muted"))


def monthly_table(w: Window) -> pd.DataFrame:
    """Compounded returns per calendar month of one split: years as rows, months 1..12 as columns."""
    stamps = w.dates[1:]  # period k ends at bar k+1's close
    log = pd.Series(np.log1p(w.returns), index=stamps)
    months = np.expm1(log.groupby([stamps.year, stamps.month]).sum())
    return months.unstack(level=1).reindex(columns=range(1, 13))


def monthly_heatmap(w: Window, iteration: object) -> str:
    """A heatmap of monthly returns of one split, each cell annotated, beside buy and hold's year."""
    grid = monthly_table(w)
    if grid.empty:
        return ""
    bh_years = None
    if w.bh_returns is not None:
        years = w.dates[1:].year
        bh_years = np.expm1(pd.Series(np.log1p(w.bh_returns), index=years).groupby(level=0).sum())
    values = grid.to_numpy(dtype=np.float64)
    limit = float(np.nanmax(np.abs(values))) if np.isfinite(values).any() else 0.01
    fig = Figure(figsize=(10.4, 0.42 * len(grid) + 1.3))
    ax = fig.add_subplot(1, 1, 1)
    ax.imshow(np.ma.masked_invalid(values), cmap="RdYlGn", vmin=-limit, vmax=limit, aspect="auto")
    for (i, j), v in np.ndenumerate(values):
        if np.isfinite(v):
            ax.text(j, i, f"{v:+.1%}", ha="center", va="center", fontsize=7)
    ax.set_xticks(range(12), ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"],
                  fontsize=8)
    labels = [f"{y}  (B&H {bh_years[y]:+.0%})" if bh_years is not None and y in bh_years.index else str(y)
              for y in grid.index]
    ax.set_yticks(range(len(grid)), labels, fontsize=8)
    ax.set_title(f"{w.split} split: monthly returns of iter {iteration}, net of costs", fontsize=10, loc="left")
    fig.subplots_adjust(left=0.16, right=0.99, top=0.88, bottom=0.08)
    return figure_html(fig, f"monthly returns, {w.split} split",
                       f"{w.split} split; each cell a calendar month's compounded net return; buy and hold's return "
                       "of each year beside the year")


def rolling_sharpe(returns: np.ndarray, bars: int = ROLLING_BARS) -> np.ndarray:
    """Annualised Sharpe of the trailing ``bars`` daily returns at each bar (NaN before a full window or when flat)."""
    s = pd.Series(np.asarray(returns, dtype=np.float64))
    roll = s.rolling(bars, min_periods=bars)
    sd = roll.std(ddof=1)
    return (roll.mean() / sd.where(sd > 0) * np.sqrt(TRADING_DAYS)).to_numpy()


def rolling_sharpe_html(windows: list[Window], iteration: object) -> str:
    """Rolling Sharpe of the best candidate and of buy and hold, one panel per split, on dates."""
    windows = [w for w in windows if w.dates is not None and w.returns.size > ROLLING_BARS]
    if not windows:
        return ""
    fig = Figure(figsize=(10.4, 2.9))
    for j, w in enumerate(windows):
        ax = fig.add_subplot(1, len(windows), j + 1)
        x = w.dates[1:]
        ax.plot(x, rolling_sharpe(w.returns), color=STRATEGY, linewidth=1.1, label=f"iter {iteration}")
        if w.bh_returns is not None:
            ax.plot(x, rolling_sharpe(w.bh_returns), color=BUY_HOLD, linewidth=1.0, label="buy & hold")
        ax.axhline(0, color="#666", linewidth=0.8)
        ax.set_title(f"{w.split} split", fontsize=10, loc="left")
        date_axis(ax)
        style_axes(ax)
        if j == 0:
            ax.set_ylabel(f"Sharpe, {ROLLING_BARS} bars")
            ax.legend(fontsize=8, frameon=False, loc="upper left")
    fig.subplots_adjust(left=0.07, right=0.99, top=0.88, bottom=0.14, wspace=0.15)
    return figure_html(fig, "rolling Sharpe", f"annualised Sharpe over the trailing {ROLLING_BARS} bars "
                       f"(√{TRADING_DAYS}, risk-free 0), beside buy and hold on the same bars; "
                       + ", ".join(f"{w.split} split" for w in windows))


def drawdowns(returns: np.ndarray, dates: pd.DatetimeIndex) -> pd.DataFrame:
    """Every drawdown of a growth-of-1 curve: peak, trough and recovery dates, depth, and its days (bars)
    from peak to trough and from peak to recovery (to the last bar when not recovered)."""
    eq = np.concatenate(([1.0], np.cumprod(1.0 + np.asarray(returns, dtype=np.float64))))
    peak = np.maximum.accumulate(eq)
    under = eq < peak
    rows = []
    start = None
    for k in range(eq.size + 1):
        inside = k < eq.size and under[k]
        if inside and start is None:
            start = k - 1  # the peak bar
        elif not inside and start is not None:
            trough = start + int(np.argmin(eq[start:k]))
            recovered = k < eq.size
            rows.append({"peak": dates[start], "trough": dates[trough], "recovery": dates[k] if recovered else None,
                         "depth": float(eq[trough] / eq[start] - 1.0), "to_trough": trough - start,
                         "duration": (k if recovered else eq.size - 1) - start, "recovered": recovered})
            start = None
    return pd.DataFrame(rows, columns=["peak", "trough", "recovery", "depth", "to_trough", "duration", "recovered"])


def worst_drawdowns_html(w: Window, iteration: object, count: int = WORST_DRAWDOWNS) -> str:
    """The ``count`` deepest drawdowns of one split with their durations, and buy and hold's deepest beside them."""
    if w.dates is None:
        return ""
    dd = drawdowns(w.returns, w.dates).sort_values("depth").head(count)
    if dd.empty:
        return note(f"no drawdown on the {w.split} split", "muted")
    rows = [td(i + 1, "num") + td(r.peak.date()) + td(r.trough.date())
            + td(r.recovery.date() if r.recovered else "not recovered") + cell(r.depth, "max_drawdown")
            + td(int(r.to_trough), "num") + td(f"{int(r.duration)}{'' if r.recovered else '+'}", "num")
            for i, r in enumerate(dd.itertuples())]
    bh_text = ""
    if w.bh_returns is not None:
        bh = drawdowns(w.bh_returns, w.dates).sort_values("depth").head(1)
        if not bh.empty:
            b = bh.iloc[0]
            end = b.recovery.date() if b.recovered else "not recovered"
            bh_text = (f"; buy and hold's deepest on the same split: {b.depth:.1%} from {b.peak.date()} "
                       f"(trough {b.trough.date()}, {end}, {int(b.duration)} bars)")
    return (f"<h3>Worst drawdowns, {esc(w.split)} split (iter {esc(iteration)})</h3>"
            + table(["#", "peak", "trough", "recovered", "depth", "bars to trough", "bars under water"], rows,
                    "compact")
            + note(f"bars are trading days; + marks a drawdown still open at the split's end{bh_text}", "muted"))


def equity_csv(windows: list[Window]) -> str:
    """The best candidate's daily equity against buy and hold per split, as CSV text (growth of 1 from each
    split's first bar; returns net of costs; the test rows only as ``final`` recorded them)."""
    frames = []
    for w in windows:
        if w.dates is None or w.bh_returns is None:
            continue
        eq = np.concatenate(([1.0], np.cumprod(1.0 + w.returns)))
        bh = np.concatenate(([1.0], np.cumprod(1.0 + w.bh_returns)))
        frames.append(pd.DataFrame({
            "date": w.dates.strftime("%Y-%m-%d"), "split": w.split,
            "position": w.positions if w.has_trades else np.nan,  # held from this bar's close to the next one's
            "return": np.concatenate(([0.0], w.returns)), "equity": eq,
            "bh_return": np.concatenate(([0.0], w.bh_returns)), "bh_equity": bh}))
    if not frames:
        return ""
    return pd.concat(frames, ignore_index=True).to_csv(index=False, float_format="%.8g", lineterminator="\n")


def best_windows(run: Run) -> list[Window]:
    """Train and validation of the best candidate and, after ``final``, the test split as it recorded it."""
    best = run.record(run.best)
    windows = [split_window(run, best, s) for s in ("train", "val")] if best else []
    windows.append(final_window(run))
    return [w for w in windows if w is not None and w.dates is not None]


def analysis_html(run: Run) -> str:
    """The trade-analysis section: trade statistics, monthly returns, rolling Sharpe, worst drawdowns."""
    windows = best_windows(run)
    if not windows:
        return section("analysis", "Trade analysis",
                       note("no daily returns on dates for the best candidate (no accepted candidate, or the frozen "
                            "data is not the run's)", "muted"))
    best = run.record(run.best) or {}
    traded = [w for w in windows if w.has_trades]
    if best.get("universe"):  # the portfolio has no round trips of its own: each instrument's, on validation
        traded = [w for _, w in instrument_windows(run, best)] + traded
    body = trade_stats_html(traded)
    for w in windows:
        if w.split != "train":
            body += monthly_heatmap(w, w.iteration)
    body += rolling_sharpe_html(windows, run.best)
    for w in windows:
        if w.split != "train":
            body += worst_drawdowns_html(w, w.iteration)
    body += note(f"the daily equity of these splits against buy and hold is in {EQUITY_CSV} (written with the "
                 "report)", "muted")
    return section("analysis", f"Trade analysis of the best candidate (iter {run.best})", body,
                   "What backtesting tools show: trade statistics, monthly returns, rolling Sharpe and the worst "
                   "drawdowns, each split named and beside buy and hold.")
