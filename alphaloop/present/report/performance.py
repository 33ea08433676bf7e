"""Report sections about the best candidate's returns: equity per split, the test split, folds."""

from __future__ import annotations

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from alphaloop.evaluate.scoring import FOLDS_START, FOLDS_WORDS
from alphaloop.present.report.best import split_window
from alphaloop.present.report.charts import BUY_HOLD, STRATEGY, curves, date_axis, equity_axes, figure_html, style_axes
from alphaloop.present.report.data import Run
from alphaloop.present.report.html import cell, fmt, metric_label, note, section, table, td
from alphaloop.present.text import MISSING, clip


def equity_html(run: Run) -> str:
    """Best candidate against buy and hold on train and validation, and the test split if read."""
    best = run.record(run.best)
    if not best or not best.get("returns"):
        return section("equity", "Equity and drawdown of the best candidate",
                       note("no accepted candidate with daily returns yet") + locked_split_html(run))
    names = [s for s in ("train", "val") if s in best["returns"]]
    fig = Figure(figsize=(10.4, 5.0))
    gs = fig.add_gridspec(2, len(names), height_ratios=(3, 1.2), hspace=0.06, wspace=0.18)
    for j, name in enumerate(names):
        ax, dd = fig.add_subplot(gs[0, j]), fig.add_subplot(gs[1, j])
        w = split_window(run, best, name)  # a universe's is the portfolio against the equal-weight buy and hold
        if w is not None:
            x, eq = w.dates, np.concatenate(([1.0], np.cumprod(1.0 + w.returns)))
            bh = np.concatenate(([1.0], np.cumprod(1.0 + w.bh_returns))) if w.bh_returns is not None else None
        else:
            frame = None if best.get("universe") else (run.splits or {}).get(name)
            closes = frame[run.prices].to_numpy(dtype=np.float64) if frame is not None else None
            eq, bh = curves(best["returns"][name], closes)
            x = frame.index if frame is not None and len(frame) == eq.size else np.arange(eq.size)
        span = f"{x[0].date()} – {x[-1].date()}" if isinstance(x, pd.DatetimeIndex) else f"{eq.size} bars"
        equity_axes(ax, dd, x, eq, bh, f"{name} split ({span})")
        if isinstance(x, pd.DatetimeIndex):
            date_axis(dd)
    fig.subplots_adjust(left=0.08, right=0.99, top=0.93, bottom=0.07)
    chart = figure_html(fig, "equity and drawdown per split",
                        f"iter {run.best} vs buy and hold; left: train split, right: validation split; "
                        f"net of costs, signal at a bar's close earns close to next close; returns on {run.prices}"
                        + ("; a universe: the equal-weight portfolio of its instruments against their equal-weight "
                           "buy and hold" if best.get("universe") else ""))
    metric_rows = metrics_rows(best)
    return section("equity", f"Equity and drawdown of the best candidate (iter {run.best})",
                   chart + metric_rows + locked_split_html(run),
                   "Growth of 1 and drawdown from the running peak, beside buy and hold on the same bars.")


def metrics_rows(record: dict) -> str:
    """Compact per-split metrics table (train, validation) for one record."""
    splits = ((record.get("scores") or {}).get("splits")) or {}
    keys = ["total_return", "cagr", "sharpe", "sortino", "max_drawdown", "calmar", "round_trips", "exposure",
            "win_rate", "bh_total_return", "bh_sharpe", "bh_max_drawdown"]
    rows = [td(f"{name} split") + "".join(cell(m.get(k), k) for k in keys) for name, m in splits.items()]
    return table(["measured on"] + [metric_label(k) for k in keys], rows, "compact")


def locked_split_html(run: Run) -> str:
    """The locked test split, only as ``harness.py final`` recorded it; the report never reads it."""
    if not run.readings:
        return ('<h3 id="test">Test split</h3>' + note("test split not read yet (run harness.py final)", "muted"))
    latest = run.readings[-1]
    m = _reading_metrics(latest)
    metric = run.metric
    keys = list(dict.fromkeys([metric, "total_return", "max_drawdown", "round_trips", "bh_total_return", "bh_sharpe",
                               "bh_max_drawdown"]))
    rows = []
    for r in run.readings:
        rm = _reading_metrics(r)
        status = r.get("status", "scored" if rm else "?")
        rows.append(td(str(r.get("time", ""))[:19].replace("T", " ")) + td(r.get("iteration"), "num")
                    + td(str(r.get("sha256", ""))[:12], "mono")
                    + td(r.get("earlier_readings", MISSING), "num")
                    + (td(clip(f"rejected at {r.get('stage')}: {r.get('reason', '')}", 160), "text warn")
                       + f'<td colspan="{len(keys) + 1}"></td>' if status == "rejected" else
                       "".join(cell(rm.get(k), k) for k in keys) + cell(r.get("val_metric"), metric)
                       + cell(r.get("test_minus_validation"), metric)))
    count = len(run.readings)
    warn = ("" if count == 1 else note(f"the test split has been read {count} times; every reading after the "
                                       "first is a selection on the test split and weakens it", "warn"))
    out = '<h3 id="test">Test split (locked; read by harness.py final)</h3>' + warn
    out += table(["time (UTC)", "iter", "sha256", "earlier readings"] + [f"test {metric_label(k)}" for k in keys]
                 + [f"val {metric_label(metric)}", "test − val"], rows, "compact")
    if latest.get("returns"):
        eq = np.concatenate(([1.0], np.cumprod(1.0 + np.asarray(latest["returns"], dtype=np.float64))))
        bh = (np.concatenate(([1.0], np.cumprod(1.0 + np.asarray(latest["bh_returns"], dtype=np.float64))))
              if latest.get("bh_returns") and len(latest["bh_returns"]) == len(latest["returns"]) else None)
        info = ((run.manifest or {}).get("splits") or {}).get("test", {})
        span = f"{info.get('start', '?')} – {info.get('end', '?')}"
        fig = Figure(figsize=(10.4, 3.6))
        gs = fig.add_gridspec(2, 1, height_ratios=(3, 1.2), hspace=0.06)
        ax, dd = fig.add_subplot(gs[0]), fig.add_subplot(gs[1])
        dates = latest.get("dates") or []
        x = pd.DatetimeIndex(pd.to_datetime(dates)) if len(dates) == eq.size else np.arange(eq.size)
        equity_axes(ax, dd, x, eq, bh, f"test split ({span}), iter {latest.get('iteration')}")
        if isinstance(x, pd.DatetimeIndex):
            date_axis(dd)
        else:  # a reading written before final recorded the test dates
            dd.set_xlabel("trading days into the test split")
        fig.subplots_adjust(left=0.08, right=0.99, top=0.9, bottom=0.13)
        bh_note = ("" if bh is not None else f"; buy and hold not drawn (the report never opens the test split), "
                   f"its return was {fmt(m.get('bh_total_return'), 'bh_total_return')}")
        out += figure_html(fig, "test split equity", f"test split, latest reading{bh_note}")
    return out


def _reading_metrics(reading: dict) -> dict:
    """Test metrics of one reading (``metrics`` in the documented format, ``test`` as final writes)."""
    m = reading.get("test")
    return m if isinstance(m, dict) else {}


def folds_html(run: Run) -> str:
    """Walk-forward folds of the best candidate, and the spread of every population member."""
    metric = run.metric
    best = run.record(run.best)
    scores = (best or {}).get("scores") or {}
    folds = scores.get("folds") or []
    if not folds:
        return section("folds", "Walk-forward folds", note("no walk-forward folds recorded for the best candidate"))
    keys = [metric, "total_return", "max_drawdown", "round_trips", "bh_total_return", "bh_sharpe"]
    keys = list(dict.fromkeys(keys))
    rows = [td(i + 1, "num") + td(f"{f.get('start', '?')} – {f.get('end', '?')}")
            + "".join(cell(f.get(k), k) for k in keys) for i, f in enumerate(folds)]
    fold_table = table(["fold", "dates (sub-period of train)"] + [metric_label(k) for k in keys], rows, "compact")
    spread_rows = []
    for n in run.population:
        r = run.record(n) or {}
        sp = ((r.get("scores") or {}).get("fold_spread")) or {}
        fm = [f.get(metric) for f in ((r.get("scores") or {}).get("folds") or [])]
        pos = sum(1 for v in fm if isinstance(v, (int, float)) and v > 0)
        spread_rows.append(td(f"iter {n}") + cell(sp.get("min"), metric) + cell(sp.get("median"), metric)
                           + cell(sp.get("max"), metric) + td(f"{pos}/{len(fm)}", "num"))
    spread = table(["population member", f"min {metric_label(metric)}", "median", "max", "folds > 0"], spread_rows,
                   "compact")
    fig = Figure(figsize=(10.4, 2.6))
    ax = fig.add_subplot(1, 1, 1)
    xs = np.arange(len(folds))
    vals = np.array([float(f.get(metric, np.nan)) for f in folds])
    bh_key = {"sharpe": "bh_sharpe", "total_return": "bh_total_return"}.get(metric)
    ax.bar(xs - 0.18 if bh_key else xs, vals, width=0.36 if bh_key else 0.6, color=STRATEGY, label=f"iter {run.best}")
    if bh_key:
        ax.bar(xs + 0.18, [float(f.get(bh_key, np.nan)) for f in folds], width=0.36, color=BUY_HOLD, label="buy & hold")
    ax.set_xticks(xs, [f"fold {i + 1}\n{f.get('start', '')[:7]} – {f.get('end', '')[:7]}" for i, f in enumerate(folds)])
    ax.axhline(0, color="#666", linewidth=0.8)
    ax.set_ylabel(metric_label(metric))
    ax.legend(fontsize=8, frameon=False)
    style_axes(ax)
    fig.subplots_adjust(left=0.08, right=0.99, top=0.95, bottom=0.25)
    chart = figure_html(fig, "walk-forward folds",
                        f"train split in {len(folds)} sub-periods, {metric_label(metric)} per fold beside buy and hold")
    return section("folds", "Walk-forward folds (sub-periods of train)",
                   chart + fold_table + note(f"{FOLDS_START}.", "muted")
                   + "<h3>Fold spread of the population</h3>" + spread,
                   f"{FOLDS_WORDS[0].upper()}{FOLDS_WORDS[1:]}: the same strategy (best: iter {run.best}) scored on "
                   "each, so the spread shows how much its result depends on the period; it matters more than the "
                   "mean.")
