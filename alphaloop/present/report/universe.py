"""Report section of a universe run: each instrument of the best candidate beside its buy and hold, the
portfolio's validation equity against the equal-weight buy and hold, and, after ``final``, each
instrument's test figures and the held-out instruments as ``test_readings.jsonl`` recorded them.

Tickers are shown: the report is for people and never reaches the LLM. With one instrument the
section is absent (``universe_html`` returns "").
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from alphaloop.present.report.charts import date_axis, equity_axes, figure_html
from alphaloop.present.report.data import Run
from alphaloop.present.report.html import cell, metric_label, note, section, table, td

KEYS = ("sharpe", "total_return", "max_drawdown", "exposure", "round_trips")
BH = {"sharpe": "bh_sharpe", "total_return": "bh_total_return", "max_drawdown": "bh_max_drawdown"}


def _rows(names: list[str], figures: list[dict]) -> str:
    """One row per instrument: each figure, with buy and hold's beside those buy and hold has."""
    heads = ["instrument"]
    for k in KEYS:
        heads += [metric_label(k)] + ([f"buy & hold {metric_label(k)}"] if k in BH else [])
    rows = [td(name) + "".join(cell(m.get(k), k) + (cell(m.get(BH[k]), k) if k in BH else "") for k in KEYS)
            for name, m in zip(names, figures, strict=False)]
    return table(heads, rows, "compact")


def _names(run: Run, n: int) -> list[str]:
    listed = list((run.manifest or {}).get("instruments") or [])
    return listed if len(listed) == n else [f"instrument {i + 1}" for i in range(n)]


def _equity(run: Run, best: dict) -> str:
    """The portfolio's validation curve against the universe's equal-weight buy and hold on the same dates."""
    val = (best.get("returns") or {}).get("val")
    if not val:
        return note("no validation returns recorded for the best candidate")
    eq = np.concatenate(([1.0], np.cumprod(1.0 + np.asarray(val, dtype=np.float64))))
    bh_ret = run.universe_bh.get("returns") if run.universe_bh else None
    bh = (np.concatenate(([1.0], np.cumprod(1.0 + bh_ret))) if bh_ret is not None and bh_ret.size == eq.size - 1
          else None)
    dates = run.universe_bh.get("dates") if run.universe_bh and bh is not None else None
    x = dates if dates is not None and len(dates) == eq.size else np.arange(eq.size)
    fig = Figure(figsize=(10.4, 3.6))
    gs = fig.add_gridspec(2, 1, height_ratios=(3, 1.2), hspace=0.06)
    ax, dd = fig.add_subplot(gs[0]), fig.add_subplot(gs[1])
    equity_axes(ax, dd, x, eq, bh, f"validation split, equal-weight portfolio, iter {run.best}")
    if isinstance(x, pd.DatetimeIndex):
        date_axis(dd)
    fig.subplots_adjust(left=0.08, right=0.99, top=0.9, bottom=0.13)
    missing = "" if bh is not None else "; equal-weight buy and hold not drawn (frozen data not readable)"
    return figure_html(fig, "portfolio validation equity",
                       f"validation split: the equal-weight daily-rebalanced portfolio of the per-instrument "
                       f"strategies against the equal-weight buy and hold of the same instruments{missing}")


def _after_final(run: Run) -> str:
    """Each instrument's test figures and the held-out instruments, only as ``final`` recorded them."""
    latest = next((r for r in reversed(run.readings) if r.get("status") == "scored"), None)
    if latest is None:
        return "<h3>Test split per instrument</h3>" + note("test split not read yet (run harness.py final)", "muted")
    out = ""
    if latest.get("instruments"):
        rows = latest["instruments"]
        out += (f"<h3>Test split per instrument (iter {latest.get('iteration')}, read by harness.py final)</h3>"
                + _rows([str(r.get("instrument")) for r in rows], rows))
    held = latest.get("holdout") or []
    if held:
        metric = str(held[0].get("metric") or run.metric)
        splits = ("train", "val", "test")
        body = []
        for h in held:
            if h.get("error"):
                body.append(td(h.get("instrument")) + f'<td colspan="{2 * len(splits)}">{h["error"]}</td>')
                continue
            v, b = h.get("values") or {}, h.get("bh") or {}
            body.append(td(h.get("instrument")) + "".join(cell(v.get(s), metric) + cell(b.get(s), metric)
                                                          for s in splits))
        heads = ["held-out instrument"] + [f"{s} {w}" for s in splits for w in (metric_label(metric), "buy & hold")]
        out += ("<h3>Held-out instruments (never opened by the loop; read by harness.py final)</h3>"
                + table(heads, body, "compact"))
    return out


def universe_html(run: Run) -> str:
    """The universe section of the best candidate; "" for a single-instrument run."""
    best = run.record(run.best)
    uni = (best or {}).get("universe") or {}
    per = uni.get("per_instrument") or []
    if len(per) < 2:
        return ""
    val = [(p.get("splits") or {}).get("val") or {} for p in per]
    body = (f"<h3>Validation split per instrument (iter {run.best})</h3>" + _rows(_names(run, len(per)), val)
            + _equity(run, best or {}) + _after_final(run))
    return section("universe", f"Universe: {len(per)} instruments (best candidate, iter {run.best})", body,
                   "The loop selects on the equal-weight portfolio; each instrument is shown beside its own buy and "
                   "hold, so one lucky instrument cannot hide.")
