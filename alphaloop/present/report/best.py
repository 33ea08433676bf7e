"""Report sections about the best candidate itself: its code, its trades over the price, its returns per year.

Trades come from the record's ``trades`` (round trips as [entry bar, exit bar] within a split, written by the
loop) and, for the test split, from the latest ``harness.py final`` reading; the report never opens test.csv.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from alphaloop.data.frozen import return_column
from alphaloop.evaluate.backtest import positions_from_trips, round_trip_returns
from alphaloop.present.report.charts import BUY_HOLD, STRATEGY, date_axis, figure_html, pct_axis, style_axes
from alphaloop.present.report.data import Run
from alphaloop.present.report.html import cell, code_block, esc, note, section, table, td
from alphaloop.present.text import MISSING
from alphaloop.run.workdir import Workdir

ENTRY, EXIT = "#18794e", "#c0392b"


@dataclass
class Window:
    """One split of the best candidate as the report draws it: dates, a price line, returns and positions."""

    split: str
    dates: pd.DatetimeIndex | None
    price: np.ndarray
    price_label: str
    returns: np.ndarray
    bh_returns: np.ndarray | None
    trips: np.ndarray  # round trips as (entry bar, exit bar)
    iteration: object = None
    has_trades: bool = True  # False for records and readings written before trades were recorded
    instrument: str = ""  # a universe: the instrument this window is one leg of ("" for the run's own series)
    positions: np.ndarray = field(init=False)

    @property
    def where(self) -> str:
        """The split, and the instrument when the window is one instrument of a universe."""
        return f"{self.instrument}, {self.split}" if self.instrument else self.split

    def __post_init__(self) -> None:
        self.trips = np.asarray(self.trips, dtype=np.int64).reshape(-1, 2)
        self.positions = positions_from_trips(self.trips, self.price.size)

    def day(self, bar: int) -> str:
        return str(self.dates[bar].date()) if self.dates is not None else f"bar {bar}"


def _bh(price: np.ndarray) -> np.ndarray:
    return price[1:] / price[:-1] - 1.0


def portfolio_window(run: Run, record: dict, split: str) -> Window | None:
    """A universe's equal-weight portfolio on one split against the equal-weight buy and hold of the same
    instruments, on the portfolio's dates; its trades are per instrument (``instrument_windows``)."""
    returns = (record.get("returns") or {}).get(split)
    bh = run.portfolio_bh.get(split)
    if returns is None or bh is None or len(bh["returns"]) != len(returns) or len(bh["dates"]) != len(returns) + 1:
        return None
    bh_returns = np.asarray(bh["returns"], dtype=np.float64)
    price = np.concatenate(([1.0], np.cumprod(1.0 + bh_returns)))
    return Window(split, pd.DatetimeIndex(bh["dates"]), price, "equal-weight buy and hold, growth of 1",
                  np.asarray(returns, dtype=np.float64), bh_returns, np.zeros((0, 2), dtype=np.int64),
                  record.get("iteration"), False)


def instrument_windows(run: Run, record: dict) -> list[tuple[str, Window]]:
    """Each instrument of a universe record on validation, with its own price, net returns, buy and hold and
    round trips (the record keeps each instrument's validation returns and trips, not train's)."""
    per = ((record.get("universe") or {}).get("per_instrument")) or []
    every = record.get("instrument_returns") or []
    out = []
    for name, item, returns in zip(run.instrument_splits, per, every, strict=False):
        trips = (item.get("trades") or {}).get("val")
        frame = run.instrument_splits[name].get("val")
        if trips is None or frame is None or len(frame) != len(returns) + 1:
            continue
        bh = _bh(frame[return_column([frame])].to_numpy(dtype=np.float64))
        out.append((name, Window("val", pd.DatetimeIndex(frame.index), frame["Close"].to_numpy(dtype=np.float64),
                                 "Close", np.asarray(returns, dtype=np.float64), bh,
                                 np.asarray(trips, dtype=np.int64), record.get("iteration"), True, name)))
    return out


def split_window(run: Run, record: dict, split: str) -> Window | None:
    """Train or validation of ``record`` against the frozen split it was scored on; None when anything is missing.
    A universe's record is its equal-weight portfolio (``portfolio_window``)."""
    if record.get("universe") and run.portfolio_bh:
        return portfolio_window(run, record, split)
    returns = (record.get("returns") or {}).get(split)
    trips = (record.get("trades") or {}).get(split)
    frame = (run.splits or {}).get(split)
    if returns is None or frame is None or len(frame) != len(returns) + 1:
        return None
    price = frame["Close"].to_numpy(dtype=np.float64)  # the price as traded; returns rest on run.prices
    return Window(split, pd.DatetimeIndex(frame.index), price, "Close", np.asarray(returns, dtype=np.float64),
                  _bh(frame[run.prices].to_numpy(dtype=np.float64)), np.asarray(trips or [], dtype=np.int64),
                  record.get("iteration"), trips is not None)


def final_window(run: Run) -> Window | None:
    """The test split as the latest scored ``final`` reading recorded it (its dates, returns and trades)."""
    scored = [r for r in run.readings if r.get("returns")]
    if not scored:
        return None
    r = scored[-1]
    returns = np.asarray(r["returns"], dtype=np.float64)
    bh = np.asarray(r["bh_returns"], dtype=np.float64) if len(r.get("bh_returns") or []) == returns.size else None
    dates = pd.DatetimeIndex(pd.to_datetime(r["dates"])) if len(r.get("dates") or []) == returns.size + 1 else None
    if bh is None:
        return None
    price = np.concatenate(([1.0], np.cumprod(1.0 + bh)))
    return Window("test", dates, price, "buy and hold growth of 1", returns, bh,
                  np.asarray(r.get("trades") or [], dtype=np.int64), r.get("iteration"), r.get("trades") is not None)


def code_html(run: Run) -> str:
    """The best candidate's region, as the loop saved it (escaped; it is model-written text)."""
    if not run.best_code:
        return note(f"the code of iter {run.best} was not found in the workdir", "muted")
    return (f"<h3>Code (the region of {esc(Workdir(run.workdir).trade(run.best).name)})</h3>"
            + code_block(run.best_code))


def positions_chart(w: Window, iteration: int | None) -> str:
    """The price with the periods held long shaded and each entry and exit marked."""
    fig = Figure(figsize=(10.4, 3.4))
    ax = fig.add_subplot(1, 1, 1)
    x = w.dates if w.dates is not None else np.arange(w.price.size)
    ax.plot(x, w.price, color=BUY_HOLD, linewidth=1.0, label=w.price_label)
    held = np.where(w.positions[:-1] == 1, w.price[1:], np.nan)  # period k is held from bar k to bar k+1
    ax.plot(x[1:], held, color=STRATEGY, linewidth=1.4, label="held long")
    if w.trips.size:
        ax.scatter(x[w.trips[:, 0]], w.price[w.trips[:, 0]], marker="^", s=28, color=ENTRY, zorder=4, label="entry")
        ax.scatter(x[w.trips[:, 1]], w.price[w.trips[:, 1]], marker="v", s=28, color=EXIT, zorder=4, label="exit")
    ax.set_ylabel(w.price_label)
    ax.set_title(f"{w.where} split: positions of iter {iteration} over the price", fontsize=10, loc="left")
    ax.legend(fontsize=8, frameon=False, loc="upper left", ncol=4)
    if w.dates is not None:
        date_axis(ax)
    else:
        ax.set_xlabel(f"trading days into the {w.split} split")
    style_axes(ax)
    fig.subplots_adjust(left=0.08, right=0.99, top=0.9, bottom=0.12)
    exposure = float(np.mean(w.positions[:-1])) if w.positions.size > 1 else 0.0
    return figure_html(fig, f"positions over the price, {w.where} split",
                       f"{w.where} split; {len(w.trips)} round trips, long {exposure:.0%} of the days; a signal at a "
                       "bar's close enters or exits at that close")


def trades_table(w: Window) -> str:
    """Every round trip of one split: dates, prices, days held and the net return (costs included)."""
    if not w.trips.size:
        return note(f"no trades on the {w.where} split", "muted")
    trip_returns = round_trip_returns(w.returns, w.positions)
    rows = [td(i + 1, "num") + td(w.day(a)) + cell(w.price[a]) + td(w.day(b)) + cell(w.price[b])
            + td(b - a, "num") + cell(ret, "total_return")
            for i, ((a, b), ret) in enumerate(zip(w.trips.tolist(), trip_returns, strict=True))]
    wins = int(np.sum(trip_returns > 0))
    return (f"<details><summary>Trade list, {esc(w.where)} split ({len(rows)} round trips, {wins} won)</summary>"
            '<div class="scroll">'
            + table(["#", "entry", f"entry {w.price_label}", "exit", f"exit {w.price_label}", "days held",
                     "net return"], rows, "compact")
            + "</div></details>")


def best_html(run: Run) -> str:
    """The best candidate's code, and its trades over the price on validation (and on test after ``final``)."""
    best = run.record(run.best)
    if not best:
        return section("best", "Best candidate", note("no accepted candidate yet", "muted"))
    body = code_html(run)
    val = split_window(run, best, "val")
    legs = instrument_windows(run, best) if best.get("universe") else []
    if legs:
        body += (f"<h3>Trades on the validation split, per instrument ({len(legs)})</h3>"
                 + "".join(positions_chart(w, run.best) + trades_table(w) for _, w in legs))
    elif val is not None and val.has_trades:
        body += "<h3>Trades on the validation split</h3>" + positions_chart(val, run.best) + trades_table(val)
    else:
        body += note("no trade list for the validation split (the record has no trades, or the frozen data is not "
                     "the run's)", "muted")
    test = final_window(run)
    if test is not None and test.has_trades:
        body += (f"<h3>Trades on the test split (read by harness.py final, iter {esc(test.iteration)})</h3>"
                 + positions_chart(test, test.iteration) + trades_table(test))
    elif not run.readings:
        body += note("test split not read yet: its trades appear here after harness.py final", "muted")
    return section("best", f"Best candidate (iter {run.best})", body,
                   "What the best candidate is and what it did: its code and every round trip on validation.")


def bh_words(run: Run) -> str:
    """What buy and hold is on this run: the instrument's, or a universe's equal-weight one."""
    return "equal-weight buy & hold" if run.portfolio_bh else "buy & hold"


def yearly(w: Window) -> pd.DataFrame:
    """Compounded returns per calendar year of one split, strategy and buy and hold, with the days counted."""
    years = w.dates[1:].year  # period k ends at bar k+1's close
    log = pd.DataFrame({"strategy": np.log1p(w.returns),
                        "buy_hold": np.log1p(w.bh_returns) if w.bh_returns is not None else np.nan}, index=years)
    out = np.expm1(log.groupby(level=0).sum(min_count=1))
    out["days"] = log.groupby(level=0).size()
    return out


def years_html(run: Run) -> str:
    """Returns per year of the best candidate beside buy and hold, each row naming its split."""
    best = run.record(run.best)
    windows = [split_window(run, best, s) for s in ("train", "val")] if best else []
    windows.append(final_window(run))
    windows = [w for w in windows if w is not None and w.dates is not None]
    if not windows:
        return section("years", "Returns per year",
                       note("no daily returns on dates to group by year (no accepted candidate, or the frozen data is "
                            "not the run's)", "muted"))
    rows, labels, strat, bh = [], [], [], []
    for w in windows:
        table_ = yearly(w)
        for year, r in table_.iterrows():
            split = w.split + (f" (iter {w.iteration})" if w.split == "test" else "")
            rows.append(td(year, "num") + td(split) + td(int(r["days"]), "num") + cell(r["strategy"], "total_return")
                        + cell(r["buy_hold"], "bh_total_return")
                        + cell(r["strategy"] - r["buy_hold"], "total_return"))
            labels.append(f"{year}\n{w.split}")
            strat.append(r["strategy"])
            bh.append(r["buy_hold"])
    fig = Figure(figsize=(10.4, 3.0))
    ax = fig.add_subplot(1, 1, 1)
    xs = np.arange(len(labels))
    ax.bar(xs - 0.2, strat, width=0.4, color=STRATEGY, label=f"iter {run.best}")
    ax.bar(xs + 0.2, bh, width=0.4, color=BUY_HOLD, label=bh_words(run))
    ax.set_xticks(xs, labels, fontsize=7)
    ax.axhline(0, color="#666", linewidth=0.8)
    pct_axis(ax)
    ax.legend(fontsize=8, frameon=False)
    style_axes(ax)
    fig.subplots_adjust(left=0.07, right=0.99, top=0.95, bottom=0.2)
    names = ", ".join(dict.fromkeys(w.split for w in windows))
    chart = figure_html(fig, "returns per year", f"calendar-year returns on the {names} split(s), net of costs, beside "
                        "buy and hold; a year cut by a split boundary appears once per split")
    return section("years", "Returns per year", chart + table(
        ["year", "split", "days", "strategy", bh_words(run), "strategy − B&H"], rows, "compact"),
        f"Best candidate (iter {run.best}) per calendar year; the test rows appear only after harness.py final."
        if run.best is not None else MISSING)
