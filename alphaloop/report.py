"""One self-contained HTML report of a run: what was tried, what held up, and what did not.

Why a file and not a dashboard: it must open the morning after, offline, from a copied folder.
Everything is inline (CSS, base64 PNG charts drawn with matplotlib's Agg canvas); every text that
came from a file is escaped. Every figure and table names the split it was measured on. The report
never opens the test split: test figures come only from ``test_readings.jsonl`` (``harness.py final``).
"""

from __future__ import annotations

import base64
import io
import json
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.dates import AutoDateLocator, ConciseDateFormatter
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.ticker import MaxNLocator, PercentFormatter

from alphaloop.data import DataError, load_splits, manifest_digest
from alphaloop.forecast.report import write_forecast_report
from alphaloop.records import IterationRecord, RecordError
from alphaloop.rows import describe
from alphaloop.store import read_json
from alphaloop.stress import stress_penalty
from alphaloop.text import MISSING, clip
from alphaloop.text import fmt as fmt_number
from alphaloop.text import html as html_text
from alphaloop.workdir import Workdir

STAGES = ("proposal", "gate", "sandbox", "lookahead", "guards")
STAGE_COLOURS = {"proposal": "#8c564b", "gate": "#d62728", "sandbox": "#9467bd", "lookahead": "#ff7f0e",
                 "guards": "#e377c2", "other": "#7f7f7f"}
STRATEGY, BUY_HOLD, BEST = "#1f5fa8", "#8a8a8a", "#2a9d4b"
PCT_KEYS = {"total_return", "cagr", "max_drawdown", "exposure", "win_rate", "bh_total_return", "bh_max_drawdown"}
METRIC_LABELS = {"total_return": "total return", "cagr": "CAGR", "sharpe": "Sharpe", "sortino": "Sortino",
                 "calmar": "Calmar", "max_drawdown": "max drawdown", "round_trips": "round trips",
                 "exposure": "exposure", "turnover": "turnover (x/yr)", "win_rate": "win rate",
                 "bh_total_return": "B&H return", "bh_sharpe": "B&H Sharpe", "bh_max_drawdown": "B&H max DD"}
SCENARIO_LABELS = {"bootstrap": "block bootstrap", "vol_1.5x": "volatility x1.5", "vol_2x": "volatility x2",
                   "crash_10": "crash gap -10%", "crash_20": "crash gap -20%", "regimes": "calm/turbulent regimes"}


# ----- reading the run -------------------------------------------------------------------------

@dataclass
class Run:
    """Everything the report shows, read once from the workdir and the frozen data."""

    workdir: Path
    records: list[dict]
    state: dict
    manifest: dict | None
    splits: dict[str, pd.DataFrame] | None
    stats: dict | None = None
    cross: dict | None = None
    readings: list[dict] = field(default_factory=list)
    learnings: str = ""
    notes: list[str] = field(default_factory=list)

    @property
    def metric(self) -> str:
        """The selection metric the run ranked by (validation split)."""
        recorded = next((r.get("metric") for r in self.records if r.get("metric")), "sharpe")
        return str(self.state.get("metric") or recorded)

    def record(self, n: int | None) -> dict | None:
        """The iteration record numbered ``n``, or None when there is none."""
        return next((r for r in self.records if r.get("iteration") == n), None)

    @property
    def population(self) -> list[int]:
        """Iteration numbers of the final population, best first."""
        return [int(m["iteration"]) for m in self.state.get("population") or []]

    @property
    def best(self) -> int | None:
        """The best population member (state first; else the best accepted record)."""
        if self.state.get("best_iteration") is not None:
            return int(self.state["best_iteration"])
        if self.population:
            return self.population[0]
        scored = [r for r in self.records if r.get("status") == "accepted" and _value(r) is not None]
        return max(scored, key=_value)["iteration"] if scored else None


def _read(read: Any, name: str, notes: list[str]) -> Any:
    """One workdir reader's result; a file that cannot be read becomes a note and None."""
    try:
        return read()
    except (OSError, RecordError, json.JSONDecodeError) as exc:
        notes.append(f"{name} could not be read ({type(exc).__name__}); its section is left out")
        return None


def load_run(workdir: Path, data_dir: Path) -> Run:
    """Read every file the loop writes (through ``workdir``); a missing or broken one becomes a note."""
    wd, notes = Workdir(workdir), []
    records = [r.to_json() for r in wd.all_records(notes)]
    state = _read(lambda: wd.read_state().to_json() if wd.has_run() else None, wd.state.name, notes) or {}
    frozen_path = Path(data_dir) / "manifest.json"
    frozen = _read(lambda: read_json(frozen_path) if frozen_path.is_file() else None, frozen_path.name, notes)
    manifest = _read(wd.read_manifest, wd.manifest.name, notes) or frozen
    splits = None
    try:
        if frozen and manifest and manifest_digest(manifest) != manifest_digest(frozen):
            notes.append(f"the frozen data in {data_dir} is not the data this run used; curves are drawn against "
                         "trading days, without buy and hold")
        else:
            splits = load_splits(Path(data_dir))
    except (DataError, KeyError, TypeError) as exc:
        notes.append(f"frozen data not readable ({exc}); curves are drawn against trading days, without buy and hold")
    readings = []
    for reading in wd.test_readings():
        if reading.damaged:
            notes.append(f"{wd.readings.name} holds a line that is not JSON; it was skipped")
        else:
            readings.append(reading.to_json())
    stress = _read(wd.read_stress, wd.stress.name, notes)
    for record in records:
        if not record.get("stress") and stress is not None and str(record.get("iteration")) in stress.members:
            record["stress"] = stress.members[str(record["iteration"])].to_json()
    stats = _read(wd.read_stats, wd.stats.name, notes)
    cross = _read(wd.read_cross_market, wd.cross_market.name, notes)
    return Run(workdir=wd.root, records=records, state=state, manifest=manifest, splits=splits,
               stats=stats.to_json() if stats else None, cross=cross.to_json() if cross else None,
               readings=readings, learnings=wd.read_learnings(), notes=notes)


def _value(record: dict) -> float | None:
    """The validation selection metric of a record, or None when it was never scored."""
    splits = (record.get("scores") or {}).get("splits") or {}
    v = (splits.get("val") or {}).get(record.get("metric") or "sharpe")
    return float(v) if isinstance(v, (int, float)) and np.isfinite(v) else None


def _rank_value(record: dict) -> float | None:
    """What the population ranked by: the stress-adjusted value when ``--stress-select`` set one."""
    v = record.get("selection")
    return float(v) if isinstance(v, (int, float)) and np.isfinite(v) else _value(record)


# ----- formatting ------------------------------------------------------------------------------

def esc(value: object) -> str:
    """Every text from a file goes through here: proposals and learnings are untrusted (``text.html``)."""
    return html_text(value)


def fmt(value: object, key: str = "") -> str:
    """A number as the report shows it: percentages for returns and drawdowns, 2 decimals else."""
    if key in PCT_KEYS:
        return fmt_number(value, 1, pct=True, sign=key in ("total_return", "cagr", "bh_total_return"))
    return fmt_number(value, 0 if key in ("round_trips", "bars") else 2)


def cell(value: object, key: str = "") -> str:
    """A numeric table cell, coloured by sign for returns so a column reads at a glance."""
    text = fmt(value, key)
    cls = "num"
    if key in ("total_return", "cagr", "bh_total_return") and isinstance(value, (int, float)) and np.isfinite(value):
        cls += " pos" if value > 0 else " neg" if value < 0 else ""
    return f'<td class="{cls}">{esc(text)}</td>'


def table(headers: list[str], rows: list[str], cls: str = "") -> str:
    """``rows`` are ready-made ``<tr>`` inner HTML strings; headers are escaped here."""
    head = "".join(f"<th>{esc(h)}</th>" for h in headers)
    body = "".join(f"<tr>{r}</tr>" for r in rows)
    return f'<table class="{cls}"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'


def td(text: object, cls: str = "") -> str:
    """A text cell, escaped."""
    return f'<td class="{cls}">{esc(text)}</td>' if cls else f"<td>{esc(text)}</td>"


def note(text: str, cls: str = "note") -> str:
    """A one-line remark (missing file, warning), escaped."""
    return f'<p class="{cls}">{esc(text)}</p>'


def figure_html(fig: Figure, alt: str, caption: str) -> str:
    """Embed a matplotlib figure as a base64 PNG with a caption naming its split."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, metadata={"Software": None})
    data = base64.b64encode(buf.getvalue()).decode("ascii")
    return (f'<figure><img alt="{esc(alt)}" src="data:image/png;base64,{data}">'
            f"<figcaption>{esc(caption)}</figcaption></figure>")


def _style_axes(ax: Any) -> None:
    ax.grid(True, color="#e6e6e6", linewidth=0.8)
    ax.set_axisbelow(True)
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)
    ax.tick_params(labelsize=9)


def _pct_axis(ax: Any, axis: str = "y") -> None:
    (ax.yaxis if axis == "y" else ax.xaxis).set_major_formatter(PercentFormatter(1.0, decimals=0))


def metric_label(metric: str) -> str:
    """How a metric key reads in a heading."""
    return METRIC_LABELS.get(metric, metric)


# ----- sections --------------------------------------------------------------------------------

def section(sid: str, title: str, body: str, lead: str = "") -> str:
    """A titled card with an anchor id the navigation bar links to."""
    lead_html = f'<p class="lead">{esc(lead)}</p>' if lead else ""
    return f'<section id="{sid}"><h2>{esc(title)}</h2>{lead_html}{body}</section>'


def header_html(run: Run) -> str:
    """Title, data source, run size, proposer and model, dates, and the headline numbers."""
    recs, metric = run.records, run.metric
    accepted = [r for r in recs if r.get("status") == "accepted"]
    proposers = sorted({str(r.get("proposer")) for r in recs if r.get("proposer") and r.get("proposer") != "baseline"})
    models = sorted({str(r.get("model")) for r in recs if r.get("model")})
    tokens = run.state.get("tokens") or {}
    stamps = sorted(str(r["created_at"]) for r in recs if r.get("created_at"))
    m = run.manifest or {}
    split_rows = ""
    for name, info in (m.get("splits") or {}).items():
        split_rows += (f"<tr><td>{esc(name)}</td><td>{esc(info.get('start'))} – {esc(info.get('end'))}</td>"
                       f'<td class="num">{esc(info.get("rows"))}</td></tr>')
    best = run.record(run.best)
    facts = [
        ("Data", f"{m.get('ticker', 'unknown')} (source: {m.get('source', '?')})"),
        ("Data hash", manifest_digest(m) if m.get("splits") else MISSING),
        ("Proposer", ", ".join(proposers) or MISSING),
        ("Model", ", ".join(models) or ("none (offline proposer)" if proposers else MISSING)),
        ("Tokens", f"{tokens.get('prompt', 0):,} prompt, {tokens.get('completion', 0):,} completion"),
        ("Run dates", f"{stamps[0][:16].replace('T', ' ')} – {stamps[-1][:16].replace('T', ' ')} UTC"
         if stamps else MISSING),
        ("Stopped", run.state.get("stop_reason") or MISSING),
        ("Workdir", str(run.workdir)),
    ]
    fact_rows = "".join(f"<tr><th>{esc(k)}</th><td>{esc(v)}</td></tr>" for k, v in facts)
    best_val = _value(best) if best else None
    best_scores = (best or {}).get("scores") or {}
    val = (best_scores.get("splits") or {}).get("val", {})
    cards = [
        ("iterations", str(len(recs)), f"{len(accepted)} accepted, {len(recs) - len(accepted)} rejected"),
        ("population", ", ".join(f"#{n}" for n in run.population) or MISSING, "best first"),
        (f"best val {metric_label(metric)}", fmt(best_val, metric),
         f"iter {run.best}" if best else "no accepted candidate"),
        ("best val return", fmt(val.get("total_return"), "total_return"),
         f"buy & hold {fmt(val.get('bh_total_return'), 'bh_total_return')}" if val else "validation split"),
        ("hit rate", _hit_rate(run), "hypotheses that held"),
    ]
    card_html = "".join(f'<div class="card"><div class="k">{esc(k)}</div><div class="v">{esc(v)}</div>'
                        f'<div class="s">{esc(s)}</div></div>' for k, v, s in cards)
    desc = _describe(best) if best else ""
    best_line = (f'<p class="best">Best candidate: <b>iter {esc(run.best)}</b> — {esc(desc)}</p>' if best else "")
    notes = "".join(note(n, "warn") for n in run.notes)
    generated = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    return (f'<header id="summary"><h1>alphaloop run report</h1><p class="sub">generated {esc(generated)} · '
            f"selection metric: validation {esc(metric_label(metric))}</p>"
            f'<div class="cards">{card_html}</div>{best_line}{notes}'
            f'<div class="facts"><table class="kv">{fact_rows}</table>'
            f'<table class="splits"><thead><tr><th>split</th><th>dates</th><th>rows</th></tr></thead>'
            f"<tbody>{split_rows}</tbody></table></div></header>")


def _describe(record: dict, width: int = 160) -> str:
    """The loop's own description of an iteration, else why it was rejected, as one clipped safe line."""
    return clip(describe(IterationRecord.from_json(record), 10 * width) or record.get("reason") or "", width)


def _hit_rate(run: Run) -> str:
    """Hypotheses that held over those graded: the loop's own tally, else counted from the records."""
    graded = [r.get("hypothesis_held") for r in run.records if r.get("hypothesis_held") is not None]
    tally = run.state.get("learnings") if isinstance(run.state.get("learnings"), dict) else {}
    hits = int(tally.get("hits", sum(bool(h) for h in graded)))
    total = int(tally.get("graded", len(graded)))
    return f"{hits}/{total} ({hits / total:.0%})" if total else MISSING


def progress_html(run: Run) -> str:
    """Selection metric over iterations: accepted points, rejections by stage, running best."""
    metric = run.metric
    recs = run.records
    if not recs:
        return section("progress", "Selection metric over iterations", note("no iteration has been recorded yet"))
    fig = Figure(figsize=(10.4, 4.6))
    gs = fig.add_gridspec(2, 1, height_ratios=(4, 1.25), hspace=0.08)
    ax, strip = fig.add_subplot(gs[0]), fig.add_subplot(gs[1])
    xs = np.array([r["iteration"] for r in recs])
    acc = [r for r in recs if r.get("status") == "accepted" and _value(r) is not None]
    top = [r for r in acc if r.get("in_population")]
    rest = [r for r in acc if not r.get("in_population")]
    if rest:
        ax.scatter([r["iteration"] for r in rest], [_value(r) for r in rest], s=30, facecolors="white",
                   edgecolors=STRATEGY, linewidths=1.3, label="accepted, not in top-K", zorder=3)
    if top:
        ax.scatter([r["iteration"] for r in top], [_value(r) for r in top], s=38, color=STRATEGY,
                   label="accepted, entered the population", zorder=4)
    scored_rej = [r for r in recs if r.get("status") != "accepted" and _value(r) is not None]
    for stage in sorted({r.get("stage", "other") for r in scored_rej}):
        pts = [r for r in scored_rej if r.get("stage", "other") == stage]
        ax.scatter([r["iteration"] for r in pts], [_value(r) for r in pts], marker="x", s=34,
                   color=STAGE_COLOURS.get(stage, STAGE_COLOURS["other"]), label=f"scored, rejected at {stage}",
                   zorder=3)
    running, best_rank, best_val = [], -np.inf, np.nan
    for r in recs:
        rank = _rank_value(r)
        if r.get("status") == "accepted" and rank is not None and rank > best_rank:
            best_rank, best_val = rank, _value(r)
        running.append(best_val)
    ax.step(xs, running, where="post", color=BEST, linewidth=2, label="population best", zorder=2)
    base = run.record(0)
    if base and _value(base) is not None:
        ax.axhline(_value(base), color="#555", linestyle=":", linewidth=1, label="baseline (iter 0)")
    ax.set_ylabel(f"val {metric_label(metric)}")
    ax.set_title(f"Selection metric ({metric_label(metric)}) on the validation split, per iteration", fontsize=11,
                 loc="left")
    if metric in ("total_return", "cagr"):
        _pct_axis(ax)
    _style_axes(ax)
    ax.legend(fontsize=8, loc="best", frameon=False, ncol=2)
    ax.tick_params(labelbottom=False)
    rejected = [r for r in recs if r.get("status") != "accepted"]
    stages = [s for s in STAGES if any(r.get("stage") == s for r in rejected)]
    stages += sorted({str(r.get("stage")) for r in rejected} - set(STAGES))
    for i, stage in enumerate(stages):
        pts = [r["iteration"] for r in rejected if r.get("stage") == stage]
        strip.scatter(pts, [i] * len(pts), marker="|", s=140, linewidths=2,
                      color=STAGE_COLOURS.get(stage, STAGE_COLOURS["other"]))
    strip.set_yticks(range(len(stages)), [f"{s} ({sum(r.get('stage') == s for r in rejected)})" for s in stages])
    strip.set_ylim(-0.7, max(len(stages), 1) - 0.3)
    strip.set_xlabel("iteration")
    strip.xaxis.set_major_locator(MaxNLocator(integer=True))
    strip.set_ylabel("rejected", fontsize=9)
    _style_axes(strip)
    lo, hi = xs.min(), xs.max()
    for a in (ax, strip):
        a.set_xlim(lo - 0.6, hi + 0.6)
    if not stages:
        strip.text(0.5, 0.5, "no rejections", transform=strip.transAxes, ha="center", va="center", color="#777")
        strip.set_yticks([])
    fig.subplots_adjust(left=0.12, right=0.98, top=0.92, bottom=0.12)
    chart = figure_html(fig, "selection metric per iteration", f"validation split; {len(acc)} accepted, "
                        f"{len(rejected)} rejected; the green step is the best population member so far")
    return section("progress", "Selection metric over iterations", chart + iterations_table(run),
                   "Every iteration's validation score; rejected ones sit in the strip below by the stage that "
                   "stopped them.")


def iterations_table(run: Run) -> str:
    """Every iteration in one collapsible table, for tracing a failure to its stage."""
    metric = run.metric
    rows = []
    for r in run.records:
        s = r.get("scores") or {}
        splits = s.get("splits") or {}
        status = r.get("status", "?")
        badge = "top" if r.get("in_population") else status
        state_txt = (f"{status} at {r.get('stage')}" if status != "accepted"
                     else "accepted, entered top-K" if r.get("in_population") else "accepted")
        what = _describe(r, 220) if status == "accepted" else clip(f"{_describe(r, 220)} — {r.get('reason', '')}", 220)
        rows.append(
            td(r.get("iteration"), "num") + td("" if r.get("parent") is None else r["parent"], "num")
            + f'<td><span class="badge {esc(badge)}">{esc(state_txt)}</span></td>'
            + cell(splits.get("val", {}).get(metric), metric) + cell(splits.get("train", {}).get(metric), metric)
            + cell(splits.get("val", {}).get("round_trips"), "round_trips") + td(what, "text"))
    return ('<details><summary>All iterations (table)</summary><div class="scroll">'
            + table(["iter", "parent", "status", f"val {metric_label(metric)}", f"train {metric_label(metric)}",
                     "val trades", "what it tried"], rows) + "</div></details>")


def _curves(returns: list[float], closes: np.ndarray | None) -> tuple[np.ndarray, np.ndarray | None]:
    eq = np.concatenate(([1.0], np.cumprod(1.0 + np.asarray(returns, dtype=np.float64))))
    bh = closes / closes[0] if closes is not None and closes.size == eq.size else None
    return eq, bh


def _drawdown(eq: np.ndarray) -> np.ndarray:
    return eq / np.maximum.accumulate(eq) - 1.0


def _equity_axes(ax: Any, dd: Any, x: Any, eq: np.ndarray, bh: np.ndarray | None, title: str) -> None:
    ax.plot(x, eq, color=STRATEGY, linewidth=1.4, label="candidate")
    if bh is not None:
        ax.plot(x, bh, color=BUY_HOLD, linewidth=1.1, label="buy & hold")
    ax.axhline(1.0, color="#999", linewidth=0.7)
    ax.set_title(title, fontsize=10, loc="left")
    ax.set_ylabel("growth of 1")
    ax.legend(fontsize=8, frameon=False, loc="upper left")
    ax.tick_params(labelbottom=False)
    dd.fill_between(x, _drawdown(eq), 0, color=STRATEGY, alpha=0.35, linewidth=0, label="candidate")
    if bh is not None:
        dd.plot(x, _drawdown(bh), color=BUY_HOLD, linewidth=0.9, label="buy & hold")
    dd.set_ylabel("drawdown")
    _pct_axis(dd)
    for a in (ax, dd):
        _style_axes(a)


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
        frame = (run.splits or {}).get(name)
        closes = frame["Close"].to_numpy(dtype=np.float64) if frame is not None else None
        eq, bh = _curves(best["returns"][name], closes)
        x = frame.index if frame is not None and len(frame) == eq.size else np.arange(eq.size)
        span = f"{x[0].date()} – {x[-1].date()}" if isinstance(x, pd.DatetimeIndex) else f"{eq.size} bars"
        _equity_axes(ax, dd, x, eq, bh, f"{name} split ({span})")
        if isinstance(x, pd.DatetimeIndex):
            locator = AutoDateLocator()
            dd.xaxis.set_major_locator(locator)
            dd.xaxis.set_major_formatter(ConciseDateFormatter(locator))
    fig.subplots_adjust(left=0.08, right=0.99, top=0.93, bottom=0.07)
    chart = figure_html(fig, "equity and drawdown per split",
                        f"iter {run.best} vs buy and hold; left: train split, right: validation split; "
                        "net of costs, signal at a bar's close earns close to next close")
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
                       + cell(r.get("degradation"), metric)))
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
        _equity_axes(ax, dd, np.arange(eq.size), eq, bh, f"test split ({span}), iter {latest.get('iteration')}")
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
    fold_table = table(["fold", "dates (train+val)"] + [metric_label(k) for k in keys], rows, "compact")
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
    _style_axes(ax)
    fig.subplots_adjust(left=0.08, right=0.99, top=0.95, bottom=0.25)
    chart = figure_html(fig, "walk-forward folds",
                        f"walk-forward folds over train+validation, {metric_label(metric)} per fold")
    return section("folds", "Walk-forward folds",
                   chart + fold_table + "<h3>Fold spread of the population</h3>" + spread,
                   f"Chronological folds over train+validation (best: iter {run.best}); the spread matters more than "
                   "the mean.")


def _stress_chart(stress: dict, iteration: int) -> str:
    scen = list((stress.get("scenarios") or {}).items())
    fig = Figure(figsize=(10.4, 0.5 * len(scen) + 1.5))
    axes = [fig.add_subplot(1, 2, i + 1) for i in range(2)]
    ys = np.arange(len(scen))[::-1]
    for ax, key, title in zip(axes, ("total_return", "max_drawdown"), ("total return", "max drawdown"), strict=True):
        for y, (_, s) in zip(ys, scen, strict=True):
            for off, side, colour in ((0.14, "strategy", STRATEGY), (-0.14, "buy_hold", BUY_HOLD)):
                q = s[side][key]
                ax.plot([q["p5"], q["p95"]], [y + off] * 2, color=colour, linewidth=4, alpha=0.55,
                        solid_capstyle="butt")
                ax.plot([q["p50"]], [y + off], marker="o", color=colour, markersize=5)
        ax.set_yticks(ys, [SCENARIO_LABELS.get(n, n) for n, _ in scen] if ax is axes[0] else [""] * len(scen))
        ax.axvline(0, color="#666", linewidth=0.8)
        ax.set_title(f"{title}: 5th–95th percentile, dot = median", fontsize=10, loc="left")
        _pct_axis(ax, "x")
        _style_axes(ax)
    fig.legend([Line2D([], [], color=STRATEGY, linewidth=4), Line2D([], [], color=BUY_HOLD, linewidth=4)],
               [f"iter {iteration} (upper bar)", "buy & hold (lower bar)"], fontsize=9, frameon=False,
               loc="upper center", ncol=2)
    fig.subplots_adjust(left=0.17, right=0.99, top=0.84, bottom=0.12, wspace=0.06)
    split = stress.get("split", "val")
    return figure_html(fig, "stress percentiles",
                       f"synthetic paths built from the {split} split: {stress.get('n_paths')} "
                       f"per scenario, {stress.get('window_bars')} bars each after {stress.get('warmup_bars')} real "
                       f"warm-up bars; candidate and buy and hold on the same paths")


def _penalty_cell(stress: dict | None) -> str:
    """The stress penalty (worst scenario's p5 drawdown), or why there is none."""
    if not stress:
        return td(MISSING, "num")
    if stress.get("status") != "ok":
        return td("failed", "num neg")
    return cell(stress_penalty(stress), "max_drawdown")


def stress_html(run: Run) -> str:
    """Stress percentiles of the best candidate, cost multiples, and every member's worst case."""
    best = run.record(run.best) or {}
    stress = best.get("stress")
    body = ""
    if stress and stress.get("status") == "ok" and stress.get("scenarios"):
        body += _stress_chart(stress, run.best)
        rows = []
        for name, s in stress["scenarios"].items():
            st, bh = s["strategy"], s["buy_hold"]
            rows.append(td(SCENARIO_LABELS.get(name, name))
                        + "".join(cell(st["total_return"][q], "total_return") for q in ("p5", "p50", "p95"))
                        + "".join(cell(bh["total_return"][q], "total_return") for q in ("p5", "p50", "p95"))
                        + cell(st["max_drawdown"]["p5"], "max_drawdown")
                        + cell(bh["max_drawdown"]["p5"], "max_drawdown")
                        + td(f"{s.get('beat_buy_hold', float('nan')):.0%}", "num"))
        body += table(["scenario", "return p5", "return p50", "return p95", "B&H p5", "B&H p50", "B&H p95",
                       "max DD p5", "B&H max DD p5", "beats B&H"], rows, "compact")
        costs = stress.get("costs") or {}
        if costs:
            keys = ["total_return", "sharpe", "max_drawdown", "round_trips"]
            crow = [td(f"{k} costs ({stress.get('cost_bps', 0) * float(k.rstrip('x')):g} bp)")
                    + "".join(cell(v.get(kk), kk) for kk in keys) for k, v in costs.items()]
            body += (f"<h3>Costs on the real {esc(stress.get('split', 'val'))} split</h3>"
                     + table(["costs"] + [f"{stress.get('split', 'val')} {metric_label(k)}" for k in keys], crow,
                             "compact"))
    elif stress:
        body += note(f"the stress run of iter {run.best} failed: {stress.get('reason')}", "warn")
    else:
        which = f" (iter {run.best})" if run.best is not None else ""
        body += note("no stress results for the best candidate" + which,
                     "muted")
    rows = []
    scen_names: list[str] = []
    for n in run.population:
        st = (run.record(n) or {}).get("stress") or {}
        scen_names = scen_names or list((st.get("scenarios") or {}).keys())
    for n in run.population:
        st = (run.record(n) or {}).get("stress") or {}
        sc = st.get("scenarios") or {}
        cells = "".join(
            f'<td class="num">{esc(fmt(sc[k]["strategy"]["total_return"]["p50"], "total_return"))}'
            f'<span class="dim"> / {esc(fmt(sc[k]["strategy"]["max_drawdown"]["p5"], "max_drawdown"))}</span></td>'
            if k in sc else td(MISSING, "num") for k in scen_names)
        rows.append(td(f"iter {n}") + cells + _penalty_cell(st))
    if rows and scen_names:
        body += ("<h3>Population: median return / 5th-percentile max drawdown per scenario</h3>"
                 + table(["member"] + [SCENARIO_LABELS.get(k, k) for k in scen_names] + ["worst p5 DD (penalty)"],
                         rows, "compact"))
    return section("stress", "Stress scenarios", body,
                   "Synthetic paths that are not copies of history: block bootstrap, volatility shocks, crash gaps "
                   "and regime switches, each beside buy and hold on the same path.")


def cross_html(run: Run) -> str:
    """The population on a second instrument over the primary's train and validation dates."""
    metric = run.metric
    cross = run.cross
    members = (cross or {}).get("members") or {}
    if not members:
        return section("cross", "Second market",
                       note("no second-market results yet (written at the end of a loop run)", "muted"))
    label = (cross or {}).get("label", "second market")
    rows = []
    for it, m in members.items():
        primary = (((run.record(int(it)) or {}).get("scores") or {}).get("splits") or {}).get("val", {})
        if "error" in m:
            rows.append(td(f"iter {it}") + cell(primary.get(metric), metric)
                        + f'<td colspan="6" class="warn">failed: {esc(clip(m["error"], 300))}</td>')
            continue
        tr, va = m.get("train", {}), m.get("val", {})
        rows.append(td(f"iter {it}") + cell(primary.get(metric), metric) + cell(tr.get(metric), metric)
                    + cell(va.get(metric), metric) + cell(va.get("total_return"), "total_return")
                    + cell(va.get("bh_total_return"), "bh_total_return") + cell(va.get("max_drawdown"), "max_drawdown")
                    + cell(va.get("bh_max_drawdown"), "bh_max_drawdown"))
    first = next((m for m in members.values() if "val" in m), {})
    dates = (f"train {first['train'].get('start')} – {first['train'].get('end')}, val {first['val'].get('start')} – "
             f"{first['val'].get('end')}" if first and "start" in first.get("val", {}) else "the primary's split dates")
    ml = metric_label(metric)
    return section("cross", "Second market",
                   table(["member", f"primary val {ml}", f"second: train {ml}", f"second: val {ml}",
                          "second: val return", "second: B&H val return", "second: val max DD",
                          "second: B&H val max DD"], rows, "compact")
                   + note(f"{label}; {dates}; its test period is never read", "muted"),
                   f"The population on {label}, split on the same dates as the primary data.")


def stats_html(run: Run) -> str:
    """Deflated Sharpe and SPA with their verdicts, as measured on the validation split."""
    s = run.stats
    if not s:
        return section("stats", "Statistics over all trials",
                       note("no stats.json yet (written at the end of a loop run)", "muted"))
    spa = s.get("spa_pvalues") or {}
    dsr_ok = isinstance(s.get("dsr_pvalue"), (int, float)) and s["dsr_pvalue"] < 0.05
    spa_ok = isinstance(spa.get("consistent"), (int, float)) and spa["consistent"] < 0.05
    trials = s.get("trials")
    rows = [
        td("trials counted") + td(trials, "num")
        + td(f"{s.get('scored_trials', MISSING)} scored, {s.get('accepted', MISSING)} accepted"),
        td("deflated Sharpe ratio") + cell(s.get("dsr")) + td(f"p = {fmt(s.get('dsr_pvalue'))}"),
        td("best Sharpe (annualised)") + cell(s.get("best_sharpe"))
        + td(f"expected max of {trials} skill-less trials: {fmt(s.get('expected_max_sharpe'))}"),
        td("SPA p-value vs buy & hold") + cell(spa.get("consistent"))
        + td(f"lower {fmt(spa.get('lower'))}, upper {fmt(spa.get('upper'))}"),
    ]
    verdicts = "".join(
        f'<div class="verdict {"ok" if ok else "no"}"><b>{esc(name)}:</b> {esc(s.get(key, MISSING))}</div>'
        for name, key, ok in (("Deflated Sharpe", "verdict_dsr", dsr_ok), ("SPA", "verdict_spa", spa_ok)))
    return section("stats", "Statistics over all trials",
                   verdicts + table(["statistic", "value", "detail"], rows, "compact kvt"),
                   f"Data-snooping checks on the {s.get('split', 'val')} split"
                   + (f", best candidate iter {s['best_iteration']}" if s.get("best_iteration") is not None else "")
                   + ".")


def hypotheses_html(run: Run) -> str:
    """Each proposal's hypothesis, what it expected, and whether the result bore it out."""
    text = _hit_rate(run)
    rows = []
    for r in run.records:
        p = r.get("proposal") or {}
        if not r.get("iteration") or not (p.get("hypothesis") or p.get("expected")):
            continue
        held = r.get("hypothesis_held")
        mark, cls = {True: ("held", "held"), False: ("did not hold", "nothold"), None: ("ungraded", "ungraded")}[held]
        rows.append(td(r["iteration"], "num") + td(clip(p.get("hypothesis", ""), 300), "text")
                    + td(clip(p.get("expected", ""), 160), "text")
                    + f'<td><span class="badge {cls}">{esc(mark)}</span></td>'
                    + td(clip(r.get("grading", ""), 160), "text"))
    body = (f'<p class="hit"><span class="big">{esc(text)}</span> hypotheses held '
            "(graded on the validation split against the parent)</p>")
    body += ('<div class="scroll">' + table(["iter", "hypothesis", "expected", "outcome", "grading"], rows) + "</div>"
             if rows else note("no hypotheses recorded yet", "muted"))
    return section("hypotheses", "Hypotheses and hit rate", body,
                   "Reasoning that holds up counts more than a lucky result.")


_INLINE = [(re.compile(r"`([^`]+)`"), r"<code>\1</code>"), (re.compile(r"\*\*([^*]+)\*\*"), r"<b>\1</b>")]


def markdown_html(text: str) -> str:
    """A small markdown subset (headings, bullet lists, paragraphs, code and bold) on escaped text."""
    out: list[str] = []
    para: list[str] = []
    in_list = False

    def inline(s: str) -> str:
        s = esc(s)
        for pattern, repl in _INLINE:
            s = pattern.sub(repl, s)
        return s

    def flush() -> None:
        nonlocal in_list
        if para:
            out.append(f"<p>{inline(' '.join(para))}</p>")
            para.clear()
        if in_list:
            out.append("</ul>")
            in_list = False

    for line in text.splitlines():
        stripped = line.strip()
        heading = re.match(r"^(#{1,6})\s+(.*)$", stripped)
        bullet = re.match(r"^[-*]\s+(.*)$", stripped)
        if heading:
            flush()
            level = min(len(heading.group(1)) + 2, 6)
            out.append(f"<h{level}>{inline(heading.group(2))}</h{level}>")
        elif bullet:
            if para:
                out.append(f"<p>{inline(' '.join(para))}</p>")
                para.clear()
            if not in_list:
                out.append("<ul>")
                in_list = True
            out.append(f"<li>{inline(bullet.group(1))}</li>")
        elif not stripped:
            flush()
        else:
            if in_list:
                out.append("</ul>")
                in_list = False
            para.append(stripped)
    flush()
    return "\n".join(out)


def learnings_html(run: Run) -> str:
    text = re.sub(r"\A\s*#\s+Learnings\s*\n", "", run.learnings)  # the section already says so
    body = (f'<div class="md">{markdown_html(text)}</div>' if text.strip()
            else note("no learnings.md yet", "muted"))
    return section("learnings", "Learnings", body, "The loop's compacted memory, as the proposer reads it.")


def population_html(run: Run) -> str:
    """The final population side by side: validation, train, folds, stress and second market."""
    metric = run.metric
    cross = ((run.cross or {}).get("members")) or {}
    rows = []
    for rank, n in enumerate(run.population, 1):
        r = run.record(n) or {}
        sc = r.get("scores") or {}
        sp = sc.get("splits") or {}
        folds = sc.get("fold_spread") or {}
        cm = cross.get(str(n), {}).get("val", {})
        st = r.get("stress")
        rows.append(td(rank, "num") + td(f"iter {n}") + cell(sp.get("val", {}).get(metric), metric)
                    + cell(sp.get("train", {}).get(metric), metric) + cell(folds.get("min"), metric)
                    + cell(sp.get("val", {}).get("max_drawdown"), "max_drawdown")
                    + cell(sp.get("val", {}).get("round_trips"), "round_trips")
                    + _penalty_cell(st)
                    + cell(cm.get(metric), metric) + td(_describe(r, 120), "text"))
    if not rows:
        return section("population", "Population", note("the population is empty", "muted"))
    ml = metric_label(metric)
    return section("population", "Population", table(
        ["rank", "member", f"val {ml}", f"train {ml}", f"worst fold {ml}", "val max DD", "val trades",
         "stress p5 DD", f"2nd market val {ml}", "what it is"], rows),
        "The top-K kept at the end of the run; a large gap between train and validation, or a bad worst fold, "
        "is a warning sign.")


CSS = """
*{box-sizing:border-box}
body{margin:0;background:#f4f5f7;color:#1d2330;
font:14px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,"Helvetica Neue",Arial,sans-serif}
main{max-width:1160px;margin:0 auto;padding:20px 24px 60px}
header,section{background:#fff;border:1px solid #e1e4ea;border-radius:10px;padding:18px 22px;margin:16px 0}
h1{margin:0;font-size:24px}h2{margin:0 0 6px;font-size:19px}h3{font-size:15px;margin:18px 0 6px}
.sub,.lead{color:#5b6475;margin:2px 0 12px}
nav{position:sticky;top:0;z-index:2;background:#1d2330;padding:8px 24px;display:flex;flex-wrap:wrap;gap:4px 16px}
nav a{color:#dfe6f3;text-decoration:none;font-size:13px}nav a:hover{color:#fff;text-decoration:underline}
.cards{display:grid;grid-template-columns:repeat(5,1fr);gap:10px;margin:14px 0}
.card{border:1px solid #e1e4ea;border-radius:8px;padding:10px 12px;background:#fafbfc}
.card .k{font-size:12px;color:#5b6475;text-transform:uppercase;letter-spacing:.03em}
.card .v{font-size:22px;font-weight:600;margin:2px 0}.card .s{font-size:12px;color:#5b6475}
.best{margin:6px 0 12px}
.facts{display:grid;grid-template-columns:3fr 2fr;gap:18px;align-items:start}
table{border-collapse:collapse;width:100%;margin:8px 0;font-size:13px}
th,td{padding:5px 8px;border-bottom:1px solid #eceef2;text-align:left;vertical-align:top}
thead th{background:#f0f2f6;font-weight:600;position:sticky;top:0}
table.compact td,table.compact th{padding:4px 7px}
table.kv th{width:110px;color:#5b6475;font-weight:500;background:none}
td.num{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
td.text{max-width:520px}td.mono{font-family:ui-monospace,Menlo,Consolas,monospace}
.pos{color:#18794e}.neg{color:#c0392b}.dim{color:#8a93a3}
.badge{display:inline-block;padding:1px 7px;border-radius:10px;font-size:12px;background:#eef0f4;white-space:nowrap}
.badge.top{background:#d8f0e0;color:#18794e}.badge.accepted{background:#e3ecf9;color:#1f5fa8}
.badge.rejected{background:#fbe4e1;color:#a93226}.badge.held{background:#d8f0e0;color:#18794e}
.badge.nothold{background:#fbe4e1;color:#a93226}.badge.ungraded{background:#eef0f4;color:#5b6475}
figure{margin:10px 0}figure img{max-width:100%;height:auto;display:block;margin:0 auto}
figcaption{font-size:12px;color:#5b6475;text-align:center;margin-top:2px}
.note,.muted{color:#5b6475;font-style:italic}.warn{color:#8a5a00;background:#fff6e0;padding:6px 10px;border-radius:6px}
.verdict{padding:8px 12px;border-radius:8px;margin:6px 0}.verdict.ok{background:#e4f5ea}.verdict.no{background:#fff3dc}
.scroll{max-height:460px;overflow:auto;border:1px solid #eceef2;border-radius:6px}
.scroll table{margin:0}
details summary{cursor:pointer;color:#1f5fa8;margin:8px 0}
.hit .big{font-size:22px;font-weight:600;margin-right:6px}
.md{background:#fafbfc;border:1px solid #eceef2;border-radius:8px;padding:4px 16px;max-height:640px;overflow:auto}
.md h3{font-size:16px}.md h4{font-size:14px;margin:14px 0 4px}.md h5{font-size:13px;margin:10px 0 2px}
.md ul{margin:2px 0 8px;padding-left:20px}
code{font-family:ui-monospace,Menlo,Consolas,monospace;background:#eef0f4;padding:0 3px;border-radius:3px}
footer{color:#8a93a3;font-size:12px;text-align:center}
@media (max-width:900px){.cards{grid-template-columns:repeat(2,1fr)}.facts{grid-template-columns:1fr}}
"""

NAV = (("summary", "Summary"), ("progress", "Progress"), ("population", "Population"), ("equity", "Equity"),
       ("folds", "Walk-forward"), ("stress", "Stress"), ("cross", "Second market"), ("stats", "Statistics"),
       ("hypotheses", "Hypotheses"), ("learnings", "Learnings"))


def render_report(run: Run) -> str:
    """The whole HTML document as a string (no file, network or test-split access)."""
    nav = "".join(f'<a href="#{sid}">{esc(label)}</a>' for sid, label in NAV)
    parts = [header_html(run), progress_html(run), population_html(run), equity_html(run), folds_html(run),
             stress_html(run), cross_html(run), stats_html(run), hypotheses_html(run), learnings_html(run)]
    title = f"alphaloop report — {run.workdir.name}"
    return (f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
            f'<meta name="viewport" content="width=device-width, initial-scale=1"><title>{esc(title)}</title>'
            f"<style>{CSS}</style></head><body><nav>{nav}</nav><main>{''.join(parts)}"
            f"<footer>alphaloop report · self-contained: no network, no external files · the test split is shown "
            f"only as recorded by harness.py final</footer></main></body></html>\n")


def write_report(workdir: Path, data_dir: Path) -> Path:
    """Write ``report.html`` into the workdir (atomically) and return its path."""
    wd = Workdir(workdir)
    if wd.has_run() and wd.read_state().task == "forecast":  # a forecast run has its own report
        return write_forecast_report(Path(workdir))
    return wd.write_report(render_report(load_run(Path(workdir), Path(data_dir))))
