"""``report.html`` for a forecast run: skill over iterations, the population, and the best forecaster's
reliability diagrams, grades, actual-against-predicted chart and best and worst days, per split.

Validation figures come from the run's records and ``forecasts_val.csv`` (written at the end of the
loop); test figures appear only once ``final`` has read the test split (``forecasts_test.csv``).
Everything is inline (CSS, base64 PNG charts drawn with matplotlib's Agg canvas). The HTML helpers are
this module's own, a handful of lines, so the forecast report does not lean on the trade report's
internals.
"""

from __future__ import annotations

import base64
import html
import io
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from alphaloop.run.records import IterationRecord
from alphaloop.run.rows import describe
from alphaloop.run.workdir import Workdir
from alphaloop.tasks.forecast.buckets import BUCKETS, HORIZONS
from alphaloop.tasks.forecast.rows import BASELINE, grade_counts, scalar_view
from alphaloop.tasks.forecast.scores import EXTREMES, GRADE_REWARD, GRADES, RELIABILITY_BINS, SELECTION_METRIC, rps
from alphaloop.tasks.forecast.stats import forecast_statistics

STYLE = ("body{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;color:#222}"
         "section{border:1px solid #ddd;border-radius:6px;padding:1em 1.5em;margin:1.2em 0}"
         "table{border-collapse:collapse;font-size:0.9em}td,th{border-bottom:1px solid #eee;padding:3px 8px;"
         "text-align:right}th{background:#f6f6f6}td.l{text-align:left}figure{margin:1em 0}img{max-width:100%}"
         "figcaption,.note{color:#666;font-size:0.85em}pre{white-space:pre-wrap;font-size:0.85em}")
GRADE_COLOURS = {"calibrated_correct": "#2a9d4b", "reasonable_miss": "#8ab4d8", "overconfident_wrong": "#d62728",
                 "other": "#bbbbbb"}


def esc(value: object) -> str:
    return html.escape(str(value), quote=True)


def num(value: float | None, spec: str = "+.4f") -> str:
    return "n/a" if value is None or not np.isfinite(value) else format(value, spec)


def table(headers: list[str], rows: list[list[str]], left: int = -1) -> str:
    """An HTML table; column ``left`` (text) is left-aligned. Cells are already escaped."""
    head = "".join(f"<th>{esc(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f'<td{" class=l" if i == left else ""}>{c}</td>' for i, c in enumerate(r))
                   + "</tr>" for r in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def figure(fig: Figure, alt: str, caption: str) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100, metadata={"Software": None})
    data = base64.b64encode(buf.getvalue()).decode("ascii")
    return (f'<figure><img alt="{esc(alt)}" src="data:image/png;base64,{data}">'
            f"<figcaption>{esc(caption)}</figcaption></figure>")


def section(title: str, body: str) -> str:
    return f"<section><h2>{esc(title)}</h2>{body}</section>"


def skill_chart(records: list[IterationRecord]) -> str:
    """Validation and train mean RPS skill per iteration, climatology's 0 as the line to beat."""
    fig = Figure(figsize=(10, 3.4))
    ax = fig.add_subplot()
    ok = [r for r in records if r.accepted and r.val_metric is not None]
    ax.axhline(0.0, color="#8a8a8a", linewidth=1, label="climatology (skill 0)")
    ax.plot([r.iteration for r in ok], [r.val_metric for r in ok], "o-", color="#1f5fa8", label="validation")
    ax.plot([r.iteration for r in ok], [(r.split("train") or {}).get(SELECTION_METRIC) for r in ok], "s",
            color="#ff7f0e", alpha=0.6, label="train")
    bad = [r.iteration for r in records if not r.accepted]
    if bad:
        ax.plot(bad, [0.0] * len(bad), "x", color="#d62728", label="rejected")
    ax.set_xlabel("iteration")
    ax.set_ylabel("mean RPS skill")
    ax.legend(fontsize=8)
    ax.grid(True, color="#eee")
    return figure(fig, "skill over iterations", "mean RPS skill over horizons 1, 3, 5, 10 per iteration: validation "
                  "(selection) and train, climatology = 0; rejected candidates marked at 0")


def population_table(records: list[IterationRecord], population: list[int]) -> str:
    rows = []
    for n in population:
        r = next((x for x in records if x.iteration == n), None)
        if r is None:
            continue
        v, t = scalar_view(r.split("val")) or {}, scalar_view(r.split("train")) or {}
        g = grade_counts(r.split("val") or {})
        rows.append([str(n), num(v.get(SELECTION_METRIC)), "+0.0000", num(t.get(SELECTION_METRIC)),
                     num(v.get("ece"), ".3f"), num(v.get("reward"), "+.3f"), str(g["overconfident_wrong"]),
                     esc(describe(r, baseline=BASELINE))])
    return table(["iter", "val skill", "val climatology", "train skill", "val ECE", "val reward",
                  "val overconfident-wrong", "what it tried"], rows, left=7)


def horizon_rows(days: pd.DataFrame, climatology: dict) -> tuple[list[list[str]], np.ndarray, np.ndarray]:
    """Per horizon: skill, RPS beside climatology's, direction accuracy, grades, reward; and per-day losses."""
    rows, losses, clim_losses = [], [], []
    for h in HORIZONS:
        ok = days[f"bucket_{h}"].isin(BUCKETS).to_numpy()
        b = days.loc[ok, f"bucket_{h}"].map(BUCKETS.index).to_numpy(dtype=np.float64)
        p = days.loc[ok, [f"p_{k}_{h}" for k in BUCKETS]].to_numpy(dtype=np.float64)
        clim = np.array([climatology[str(h)][k] for k in BUCKETS])
        s, sc = rps(p, b), rps(np.broadcast_to(clim, p.shape), b)
        full_s, full_c = np.full(len(days), np.nan), np.full(len(days), np.nan)
        full_s[ok], full_c[ok] = s, sc
        losses.append(full_s)
        clim_losses.append(full_c)
        grades = days.loc[ok, f"grade_{h}"].value_counts()
        counts = [int(grades.get(g, 0)) for g in GRADES]
        reward = float(np.dot(counts, [GRADE_REWARD[g] for g in GRADES]) / max(sum(counts), 1))
        r = days.loc[ok, f"return_{h}"].to_numpy(dtype=np.float64)
        called, real = np.sign(p[:, 2] - p[:, 0]), np.sign(r)
        use = (called != 0) & (real != 0)
        acc = float((called[use] == real[use]).mean()) if use.any() else None
        rows.append([str(h), num(1 - s.mean() / sc.mean()), num(s.mean(), ".4f"), num(sc.mean(), ".4f"),
                     "n/a" if acc is None else f"{acc:.1%}", *map(str, counts), num(reward, "+.3f")])
    loss, clim_loss = np.column_stack(losses), np.column_stack(clim_losses)
    full = np.isfinite(loss).all(axis=1)
    return rows, loss[full].mean(axis=1), clim_loss[full].mean(axis=1)


def reliability_chart(days: pd.DataFrame, split: str) -> str:
    """Per horizon: forecast probability (binned, every bucket pooled) against how often the bucket happened."""
    fig = Figure(figsize=(11, 3.2))
    for i, h in enumerate(HORIZONS):
        ax = fig.add_subplot(1, len(HORIZONS), i + 1)
        ok = days[f"bucket_{h}"].isin(BUCKETS).to_numpy()
        p = days.loc[ok, [f"p_{k}_{h}" for k in BUCKETS]].to_numpy(dtype=np.float64).reshape(-1)
        b = days.loc[ok, f"bucket_{h}"].map(BUCKETS.index).to_numpy()
        hit = (np.arange(3)[None, :] == b[:, None]).reshape(-1).astype(np.float64)
        idx = np.minimum((p * RELIABILITY_BINS).astype(np.int64), RELIABILITY_BINS - 1)
        n = np.bincount(idx, minlength=RELIABILITY_BINS)
        used = n > 0
        mean_p = np.bincount(idx, weights=p, minlength=RELIABILITY_BINS)[used] / n[used]
        freq = np.bincount(idx, weights=hit, minlength=RELIABILITY_BINS)[used] / n[used]
        ax.plot([0, 1], [0, 1], color="#8a8a8a", linewidth=1)
        ax.scatter(mean_p, freq, s=10 + 200 * n[used] / max(n.max(), 1), color="#1f5fa8", alpha=0.8)
        ax.set_xlim(0, 1)
        ax.set_ylim(0, 1)
        ax.set_title(f"h = {h}", fontsize=9)
        ax.set_xlabel("forecast probability", fontsize=8)
        if i == 0:
            ax.set_ylabel("observed frequency", fontsize=8)
        ax.tick_params(labelsize=7)
    fig.tight_layout()
    return figure(fig, f"reliability diagrams, {split}", f"reliability per horizon on the {split} split: each "
                  f"bucket's probability pooled in {RELIABILITY_BINS} bins (marker size = count) against how often "
                  "that bucket happened; the diagonal is perfect calibration")


def grades_chart(days: pd.DataFrame, split: str) -> str:
    fig = Figure(figsize=(7, 3))
    ax = fig.add_subplot()
    bottom = np.zeros(len(HORIZONS))
    for g in GRADES:
        counts = np.array([(days[f"grade_{h}"] == g).sum() for h in HORIZONS], dtype=np.float64)
        ax.bar([str(h) for h in HORIZONS], counts, bottom=bottom, color=GRADE_COLOURS[g], label=g)
        bottom += counts
    ax.set_xlabel("horizon (bars)")
    ax.set_ylabel("episodes")
    ax.legend(fontsize=7, loc="lower right")
    return figure(fig, f"grades, {split}", f"episode grades per horizon on the {split} split")


def actual_vs_predicted(days: pd.DataFrame, split: str) -> str:
    """The close, with the up- and down-probabilities at h=1 and h=10 under it and the realised up days."""
    dates = pd.to_datetime(days["date"])
    fig = Figure(figsize=(11, 5))
    top = fig.add_subplot(3, 1, 1)
    top.plot(dates, days["close"], color="#222", linewidth=1)
    top.set_ylabel("close")
    for i, h in enumerate((1, 10)):
        ax = fig.add_subplot(3, 1, 2 + i, sharex=top)
        ax.plot(dates, days[f"p_up_{h}"], color="#2a9d4b", linewidth=0.8, label=f"p(up) at h={h}")
        ax.plot(dates, days[f"p_down_{h}"], color="#d62728", linewidth=0.8, label=f"p(down) at h={h}")
        up = (days[f"bucket_{h}"] == "up").to_numpy()
        ax.scatter(dates[up], np.full(up.sum(), 0.02), marker="|", s=12, color="#2a9d4b", alpha=0.5,
                   label="realised up")
        ax.axhline(1 / 3, color="#8a8a8a", linewidth=0.8)
        ax.set_ylim(0, max(0.7, float(np.nanmax(days[[f"p_up_{h}", f"p_down_{h}"]].to_numpy())) + 0.05))
        ax.legend(fontsize=7, loc="upper left", ncol=3)
    fig.tight_layout()
    return figure(fig, f"actual against predicted, {split}", f"{split} split: the close, and under it the "
                  "forecast probabilities of an up and a down move at h=1 and h=10 (grey: one third), with the days "
                  "whose move was realised up")


def extremes_table(days: pd.DataFrame) -> str:
    rows = []
    for h in HORIZONS:
        ok = days[days[f"bucket_{h}"].isin(BUCKETS)]
        order = ok.sort_values(f"rps_{h}", kind="stable")
        for label, part in (("best", order.head(EXTREMES)), ("worst", order.tail(EXTREMES)[::-1])):
            for _, d in part.iterrows():  # at most 40 rows for the report, not a hot path
                probs = "/".join(f"{d[f'p_{k}_{h}']:.2f}" for k in BUCKETS)
                rows.append([str(h), label, esc(d["date"]), probs, esc(d[f"bucket_{h}"]), f"{d[f'return_{h}']:+.2%}",
                             f"{d[f'rps_{h}']:.3f}", esc(d[f"grade_{h}"])])
    return table(["h", "", "date", "p down/flat/up", "realised", "return", "RPS", "grade"], rows)


def split_section(days: pd.DataFrame, split: str, climatology: dict, test: bool) -> str:
    rows, loss, clim_loss = horizon_rows(days, climatology)
    body = table(["h", "skill", "RPS", "RPS climatology", "direction acc.", *GRADES, "reward"], rows)
    # on validation the run-level SPA (summary) counts the search; the test split saw one forecaster only
    stats = forecast_statistics(1, clim_loss, [loss], [None], split=split) if test and loss.size >= 20 else None
    if stats is not None:
        body += f'<p class="note">{esc(stats["verdict_spa"])} (this forecaster alone against climatology)</p>'
    body += reliability_chart(days, split) + grades_chart(days, split) + actual_vs_predicted(days, split)
    body += "<h3>Best and worst days by RPS</h3>" + extremes_table(days)
    where = ("read once by `final`: figures here were never used to choose a forecaster" if test
             else "where the population was ranked")
    return section(f"The best forecaster on the {split} split ({where})", body)


def render_forecast_report(workdir: Path) -> str:
    wd = Workdir(workdir)
    records = wd.all_records([])
    state = wd.read_state()
    manifest = wd.read_manifest() or {}
    best = state.best
    head = (f"<h1>alphaloop forecast run: {esc(manifest.get('ticker', '?'))}</h1>"
            f'<p class="note">generated {esc(datetime.now(UTC).isoformat(timespec="seconds"))}; workdir '
            f"{esc(wd.root)}</p>")
    climatology = next((r.scores["buckets"]["climatology"] for r in records if r.scores), None)
    cuts = next((r.scores["buckets"]["cut_points"] for r in records if r.scores), None)
    summary = [f"{len(records)} iterations, {state.trials} forecasters tried, {state.accepted} accepted; selection "
               f"by {SELECTION_METRIC} on the validation split (climatology = 0)."]
    if best is not None:
        summary.append(f"Best: iter {best.iteration}, validation {SELECTION_METRIC} {best.val_metric:+.4f} "
                       f"(train {best.train_metric:+.4f}; climatology +0.0000).")
    if cuts:
        summary.append("Buckets, from the train split's terciles of h-bar returns: " + "; ".join(
            f"h={h}: down &lt; {c['lower']:+.2%}, up &gt; {c['upper']:+.2%}" for h, c in cuts.items()) + ".")
    stats = wd.read_forecast_stats()
    if stats:
        summary.append(esc(stats.get("verdict_spa", "")))
    readings = [r for r in wd.test_readings() if not r.damaged]
    summary.append(f"The test split was read {len(readings)} time(s) by `final`." if readings
                   else "The test split is untouched (run `python harness.py final`).")
    parts = [head, section("Summary", "".join(f"<p>{s}</p>" for s in summary)),
             section("Skill over iterations", skill_chart(records)),
             section("Population (best first)", population_table(records, [m.iteration for m in state.population]))]
    for split, test in (("val", False), ("test", True)):
        path = wd.forecasts(split)
        if path.is_file() and climatology:
            parts.append(split_section(pd.read_csv(path, keep_default_na=False, na_values=[""]), split, climatology,
                                       test))
    parts.append(section("Learnings", f"<pre>{esc(wd.read_learnings())}</pre>"))
    return (f'<!doctype html><html><head><meta charset="utf-8"><title>alphaloop forecast report</title>'
            f"<style>{STYLE}</style></head><body>{''.join(parts)}</body></html>")


def write_forecast_report(workdir: Path) -> Path:
    return Workdir(workdir).write_report(render_forecast_report(workdir))
