"""The portfolio task's report sections, built from the report's shared blocks (``present/report``); they
replace the shared sections that read positions and round trips (``PortfolioTask.report_omits``):

- **Population**: each member's validation and train figures, worst fold, exposures, beta and information
  ratio beside the equal-weight buy and hold (and cash, 0);
- **Best**: the pick's code, its train, fold and validation figures beside both benchmarks, growth of 1
  on train and validation against the equal-weight buy and hold and cash, and its contributions;
- **Portfolio**: what ``final`` recorded (``test_readings.jsonl``): test and held-out figures, the
  weights over time (a heatmap), gross and net exposure with the legs, turnover, contributions."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from alphaloop.present.report.charts import BUY_HOLD, STRATEGY, date_axis, figure_html, pct_axis, style_axes
from alphaloop.present.report.html import cell, code_block, esc, metric_label, note, section, table, td

FIGURES = (("sharpe", "bh_sharpe"), ("total_return", "bh_total_return"), ("max_drawdown", "bh_max_drawdown"))
EXTRA = ("gross_exposure", "net_exposure", "turnover", "long_count", "short_count", "beta", "information_ratio")


def figures_table(rows: Sequence[tuple[str, Mapping]]) -> str:
    """One row per (label, split figures): each figure beside the equal-weight buy and hold's and cash's."""
    heads = ["window"]
    for k, _ in FIGURES:
        heads += [k.replace("_", " "), f"EW B&H {k.replace('_', ' ')}", f"cash {k.replace('_', ' ')}"]
    heads += [k.replace("_", " ") for k in EXTRA]
    body = []
    for label, m in rows:
        cells = [td(label)]
        for k, b in FIGURES:
            cells += [cell(m.get(k), k), cell(m.get(b), b), cell(0.0, k)]
        cells += [cell(m.get(k), k) for k in EXTRA]
        body.append("".join(cells))
    return table(heads, body, "compact")


def weights_heatmap(dates: pd.DatetimeIndex, weights: np.ndarray, split: str) -> str:
    """Each instrument's weight over time, short in red, long in blue."""
    w = np.nan_to_num(np.asarray(weights, dtype=np.float64))
    fig = Figure(figsize=(10.4, 0.25 * w.shape[1] + 1.6))
    ax = fig.add_subplot(1, 1, 1)
    lim = max(float(np.abs(w).max(initial=0.0)), 1e-6)
    x = np.arange(len(dates) + 1)
    im = ax.pcolormesh(x, np.arange(w.shape[1] + 1) + 0.5, w.T, cmap="RdBu", vmin=-lim, vmax=lim, shading="flat")
    ticks = np.linspace(0, len(dates) - 1, min(6, len(dates))).astype(int) if len(dates) else []
    ax.set_xticks(ticks, [str(dates[t].date()) for t in ticks])
    ax.set_yticks(np.arange(1, w.shape[1] + 1))
    ax.set_ylabel("instrument")
    fig.colorbar(im, ax=ax, fraction=0.025, pad=0.01, label="weight")
    ax.tick_params(labelsize=8)
    return figure_html(fig, "weights heatmap", f"weights held on each {split}-split date, by instrument number "
                                                "(blue long, red short)")


def exposure_chart(dates: pd.DatetimeIndex, weights: np.ndarray, split: str) -> str:
    """Gross and net exposure, the long and short legs, and turnover (summed absolute weight changes, 21-day sum)."""
    w = np.nan_to_num(np.asarray(weights, dtype=np.float64))
    long_leg, short_leg = np.clip(w, 0, None).sum(axis=1), np.clip(w, None, 0).sum(axis=1)
    change = np.abs(np.diff(w, axis=0, prepend=w[:1])).sum(axis=1)
    turnover = pd.Series(change).rolling(21, min_periods=1).sum().to_numpy()
    fig = Figure(figsize=(10.4, 4.2))
    gs = fig.add_gridspec(2, 1, height_ratios=(3, 1.3), hspace=0.08)
    ax, tv = fig.add_subplot(gs[0]), fig.add_subplot(gs[1])
    ax.fill_between(dates, 0, long_leg, color=STRATEGY, alpha=0.25, linewidth=0, label="long leg")
    ax.fill_between(dates, short_leg, 0, color="#c0392b", alpha=0.25, linewidth=0, label="short leg")
    ax.plot(dates, long_leg - short_leg, color=STRATEGY, linewidth=1.1, label="gross")
    ax.plot(dates, long_leg + short_leg, color="#222", linewidth=1.1, label="net")
    ax.axhline(1.0, color=BUY_HOLD, linewidth=0.8, linestyle="--", label="equal-weight buy and hold (net 1)")
    ax.axhline(0.0, color="#999", linewidth=0.7)
    ax.set_ylabel("exposure")
    pct_axis(ax)
    ax.legend(fontsize=8, frameon=False, loc="upper left", ncol=5)
    ax.tick_params(labelbottom=False)
    tv.plot(dates, turnover, color="#8c564b", linewidth=1.0)
    tv.set_ylabel("turnover 21d")
    for a in (ax, tv):
        style_axes(a)
    date_axis(tv)
    return figure_html(fig, "exposure", f"{split} split: gross and net exposure, long and short legs; turnover is "
                                        "the summed absolute weight changes over the last 21 dates")


def contributions_chart(contributions: Sequence[float], names: Sequence[str], split: str) -> str:
    """Each instrument's summed daily contribution to the split's return."""
    c = np.asarray(contributions, dtype=np.float64)
    fig = Figure(figsize=(10.4, 0.28 * c.size + 1.2))
    ax = fig.add_subplot(1, 1, 1)
    ys = np.arange(c.size)[::-1]
    ax.barh(ys, c, color=[STRATEGY if v >= 0 else "#c0392b" for v in c])
    ax.set_yticks(ys, list(names))
    ax.axvline(0, color="#666", linewidth=0.8)
    pct_axis(ax, "x")
    style_axes(ax)
    fig.subplots_adjust(left=0.18, right=0.98)
    return figure_html(fig, "contributions", f"each instrument's contribution to the {split} return (summed daily)")


def portfolio_html(reading: Mapping | None, names: Sequence[str], region: str | None = None) -> str:
    """The task's section after ``final``: its test (and held-out) figures and charts (and ``region``, the
    code ``final`` read, when given)."""
    if not reading or reading.get("status") != "scored" or not reading.get("portfolio"):
        body = note("no test reading yet: run `python harness.py final` to read the locked test split once")
        return section("portfolio", "Portfolio (test split)", body + (code_block(region) if region else ""))
    p = reading["portfolio"]
    rows = [("test", reading.get("test") or {})]
    if p.get("val"):
        rows.insert(0, ("validation", p["val"]))
    for h in p.get("holdout") or []:
        rows.append((f"held-out instruments ({h.get('instruments', '?')}), test", h.get("test") or {}))
    dates = pd.DatetimeIndex(p.get("dates") or [])
    weights = np.asarray(p.get("weights") or [], dtype=np.float64)
    n = weights.shape[-1]
    labels = list(names) if len(names) == n else [f"instrument {k + 1}" for k in range(n)]
    parts = [figures_table(rows)]
    if weights.size and len(dates) == weights.shape[0]:
        parts += [weights_heatmap(dates, weights, "test"), exposure_chart(dates, weights, "test")]
    if p.get("contributions"):
        parts.append(contributions_chart(p["contributions"], labels, "test"))
    if region:
        parts.append(code_block(region))
    return section("portfolio", "Portfolio (test split, read by final)", "".join(parts),
                   "every figure beside the equal-weight buy and hold of the same instruments and cash (0)")


def _splits(record: Mapping | None) -> dict:
    return (((record or {}).get("scores") or {}).get("splits")) or {}


def population_html(run: Any, metric: str) -> str:
    """The members, best first, each figure beside the equal-weight buy and hold's (cash is 0 on all)."""
    from alphaloop.present.report.members import what_it_is

    rows = []
    for rank, n in enumerate(run.population, 1):
        rec = run.record(n) or {}
        val, train = _splits(rec).get("val") or {}, _splits(rec).get("train") or {}
        folds = [f.get(metric) for f in ((rec.get("scores") or {}).get("folds") or []) if f.get(metric) is not None]
        rows.append(td(rank, "num") + td(f"iter {n}") + cell(val.get(metric), metric)
                    + cell(val.get(f"bh_{metric}"), metric) + cell(train.get(metric), metric)
                    + cell(train.get(f"bh_{metric}"), metric) + cell(min(folds) if folds else None, metric)
                    + cell(val.get("max_drawdown"), "max_drawdown") + cell(val.get("bh_max_drawdown"), "max_drawdown")
                    + "".join(cell(val.get(k), k) for k in ("gross_exposure", "net_exposure", "beta",
                                                             "information_ratio"))
                    + td(what_it_is(run, n), "text"))
    label = metric_label(metric)
    heads = ["rank", "member", f"val {label}", f"val EW B&H {label}", f"train {label}", f"train EW B&H {label}",
             f"worst fold {label}", "val max DD", "val EW B&H max DD", "val gross", "val net", "val beta",
             "val IR", "what it is"]
    body = table(heads, rows) if rows else note("no accepted portfolio: the population is empty")
    return section("population", "Population", body,
                   "The top-K kept at the end of the run, each beside the equal-weight buy and hold of the same "
                   "instruments on the same split (cash: 0 on every figure); a large gap between train and "
                   "validation, or a bad worst fold, is a warning sign.")


def growth_chart(series: Sequence[tuple[str, np.ndarray, np.ndarray | None, pd.DatetimeIndex | None]]) -> str:
    """Growth of 1 per split: the portfolio beside the equal-weight buy and hold and cash (flat at 1); ``dates``
    (one more than the returns: the curve's start) label the axis when known."""
    fig = Figure(figsize=(10.4, 3.6))
    axes = [fig.add_subplot(1, len(series), k + 1) for k in range(len(series))]
    for ax, (split, r, bh, dates) in zip(axes, series, strict=True):
        x = dates if dates is not None else np.arange(len(r) + 1)  # the curve starts at 1 on the split's first date
        ax.plot(x, np.r_[1.0, np.cumprod(1 + r)], color=STRATEGY, linewidth=1.2, label="portfolio")
        if bh is not None:
            ax.plot(x, np.r_[1.0, np.cumprod(1 + bh)], color=BUY_HOLD, linewidth=1.1, label="equal-weight buy and hold")
        ax.axhline(1.0, color="#999", linewidth=0.8, linestyle=":", label="cash")
        ax.set_title(f"{split} split", fontsize=10, loc="left")
        style_axes(ax)
        if dates is not None:
            date_axis(ax)
    axes[0].set_ylabel("growth of 1")
    axes[0].legend(fontsize=8, frameon=False, loc="upper left")
    return figure_html(fig, "growth of 1", "growth of 1, net of costs, beside the equal-weight buy and hold of the "
                                           "same instruments and cash, by split")


def best_html(run: Any, metric: str) -> str:
    """The pick: its code, its figures on train, each fold and validation beside both benchmarks, growth of 1,
    its validation contributions."""
    from alphaloop.run.workdir import Workdir

    rec = run.record(run.best)
    if rec is None:
        return section("best", "Best portfolio", note("no accepted portfolio yet"))
    splits = _splits(rec)
    rows = [("train", splits.get("train") or {})]
    rows += [(f"train fold {k + 1} ({f.get('start', '?')} – {f.get('end', '?')})", f)
             for k, f in enumerate((rec.get("scores") or {}).get("folds") or [])]
    rows.append(("validation", splits.get("val") or {}))
    parts = [figures_table(rows)]
    series = []
    for split in ("train", "val"):
        try:
            r = Workdir(run.workdir).split_returns(int(run.best), split)
        except (OSError, ValueError):
            r = None
        if r is None or not len(r):
            continue
        bh = run.portfolio_bh.get(split) or {}
        b = np.asarray(bh.get("returns") if bh.get("returns") is not None else [], dtype=np.float64)
        same = b.size == len(r)
        dates = pd.DatetimeIndex(bh["dates"]) if same and bh.get("dates") is not None else None
        series.append((split if split == "train" else "validation", np.asarray(r), b if same else None,
                       dates if dates is not None and len(dates) == len(r) + 1 else None))
    if series:
        parts.append(growth_chart(series))
    contributions = ((rec.get("scores") or {}).get("contributions") or {}).get("val")
    names = list((run.manifest or {}).get("instruments") or [])
    if contributions:
        labels = (names if len(names) == len(contributions)
                  else [f"instrument {k + 1}" for k in range(len(contributions))])
        parts.append(contributions_chart(contributions, labels, "validation"))
    if run.best_code:
        parts.append(code_block(run.best_code))
    parts.append(stress_table(run))
    cash = (((run.stats or {}).get("universe") or {}).get("cash")) or {}
    if cash.get("verdict"):
        parts.append(note(f"against cash (the pick is market-neutral, mean validation net exposure "
                          f"{cash.get('net_exposure', 0):+.2f}): {cash['verdict']}"))
    parts.append(note("no second market for portfolios: the held-out instruments play that part, read once by "
                      "harness.py final with the test split (the Portfolio section)", "muted"))
    return section("best", f"Best portfolio (iter {esc(run.best)})", "".join(parts),
                   f"Selected on validation {esc(metric_label(metric))}; every figure beside the equal-weight buy and "
                   "hold of the same instruments and cash (0); folds are sub-periods of train.")


def stress_table(run: Any) -> str:
    """The best's stress scenarios (``stress.json``): percentiles of its return and drawdown beside the
    equal-weight buy and hold's on the same synthetic panels, and the share of paths on which it beat it."""
    from alphaloop.run.records import RecordError
    from alphaloop.run.workdir import Workdir

    try:
        cache = Workdir(run.workdir).read_stress()
    except (OSError, ValueError, RecordError):
        return note("stress.json could not be read", "muted")
    st = cache.members.get(str(run.best))
    if st is None:
        return note("no stress results for the best portfolio (the end of run stresses the population; "
                    "--stress-paths 0 turns it off)", "muted")
    if not st.ok or not st.scenarios:
        return note(f"stress failed: {st.reason}", "warn")
    heads = ["scenario (validation split, synthetic panels)", "paths", "return p5", "p50", "EW B&H return p50",
             "max DD p5", "EW B&H max DD p5", "beat EW B&H"]
    rows = []
    for name, sc in st.scenarios.items():
        strat, bh = sc["strategy"], sc["buy_hold"]
        rows.append(td(name) + td(sc.get("paths", "-"), "num") + cell(strat["total_return"]["p5"], "total_return")
                    + cell(strat["total_return"]["p50"], "total_return")
                    + cell(bh["total_return"]["p50"], "total_return")
                    + cell(strat["max_drawdown"]["p5"], "max_drawdown") + cell(bh["max_drawdown"]["p5"], "max_drawdown")
                    + td(f"{sc.get('beat_buy_hold', 0):.0%}", "num"))
    for k, m in (st.costs or {}).items():
        rows.append(td(f"real validation, costs {k}") + td("-") + td("-") + cell(m.get("total_return"), "total_return")
                    + cell(m.get("bh_total_return"), "total_return") + cell(m.get("max_drawdown"), "max_drawdown")
                    + cell(m.get("bh_max_drawdown"), "max_drawdown") + td("-"))
    return table(heads, rows, "compact") + note(
        "the validation split's dates resampled jointly for every instrument (stationary blocks), so each "
        "synthetic date keeps one real date's cross-section; vol_2x doubles every instrument's volatility, "
        "crash_20 gaps every instrument -20% on one date; percentiles over paths", "muted")
