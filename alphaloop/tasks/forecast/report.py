"""``report.html`` for a forecast run: skill over iterations, the population, and the best forecaster's
reliability diagrams, grades, actual-against-predicted chart and best and worst days, per split.

Validation figures come from the run's index (``index.jsonl``: the skill chart and the counts), the
population's records and ``forecasts_val.csv`` (written at the end of the loop); test figures appear
only once ``final`` has read the test split (``forecasts_test.csv``).
It is built from the trade report's blocks (``alphaloop.present.report``: escaping, tables, sections,
figures, style, navigation), so both reports read alike and escape alike.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from alphaloop.present.report.charts import date_axis, figure_html, style_axes
from alphaloop.present.report.html import esc, note, section
from alphaloop.present.report.html import table as html_table
from alphaloop.present.report.markdown import markdown_html
from alphaloop.present.report.style import CSS
from alphaloop.present.report.thin import by_rank, strip_marks, thinned_words
from alphaloop.run.records import IterationRecord
from alphaloop.run.rows import describe
from alphaloop.run.workdir import Workdir
from alphaloop.tasks.forecast.buckets import BUCKETS, HORIZONS
from alphaloop.tasks.forecast.rows import grade_counts, scalar_view
from alphaloop.tasks.forecast.scores import (
    CALL_MARGIN,
    EXTREMES,
    GRADE_REWARD,
    GRADES,
    RELIABILITY_BINS,
    SELECTION_METRIC,
    direction_accuracy,
    rps,
    spread_picks,
)
from alphaloop.tasks.forecast.stats import forecast_statistics
from alphaloop.tasks.forecast.text import fnum

GRADE_COLOURS = {"calibrated_correct": "#2a9d4b", "reasonable_miss": "#8ab4d8", "overconfident_wrong": "#d62728",
                 "other": "#bbbbbb"}
BUCKET_COLOURS = {"down": "#d62728", "flat": "#8a8a8a", "up": "#2a9d4b"}
NAV = (("summary", "Summary"), ("progress", "Skill"), ("population", "Population"), ("val", "Validation"),
       ("test", "Test"), ("learnings", "Learnings"))


def table(headers: list[str], rows: list[list[str]], left: int = -1) -> str:
    """The shared table with numeric cells right-aligned; column ``left`` (text) is left-aligned. Cells are
    already escaped."""
    body = ["".join(f'<td class="{"text" if i == left else "num"}">{c}</td>' for i, c in enumerate(r))
            for r in rows]
    return html_table(headers, body, "compact")


def entry_metric(entry: dict, split: str) -> float:
    """An index entry's selection metric on ``split`` (NaN when never scored)."""
    scores = ((entry.get("scores") or {}).get("splits") or {}).get(split) or {}
    v = scores.get(entry.get("metric") or SELECTION_METRIC)
    return float(v) if isinstance(v, (int, float)) else np.nan


def skill_chart(entries: list[dict], population: list[int]) -> str:
    """Validation and train mean RPS skill per iteration, climatology's 0 as the line to beat; a long run's
    series downsampled as the trade report's progress chart is (``present.report.thin``), the population kept."""
    fig = Figure(figsize=(10, 3.4))
    ax = fig.add_subplot()
    x = np.array([e["iteration"] for e in entries], dtype=np.int64)
    accepted = np.array([e.get("status") == "accepted" for e in entries], dtype=bool)
    val = np.array([entry_metric(e, "val") for e in entries])
    train = np.array([entry_metric(e, "train") for e in entries])
    span, keep = (float(x.min()), float(x.max())), np.isin(x, population)
    ax.axhline(0.0, color="#8a8a8a", linewidth=1, label="climatology (skill 0)")
    drawn, total = 0, 0
    for y, style in ((val, dict(fmt="o-", color="#1f5fa8", label="validation")),
                     (train, dict(fmt="s", color="#ff7f0e", alpha=0.6, label="train"))):
        where = np.flatnonzero(accepted & np.isfinite(val) & np.isfinite(y))
        pick = where[by_rank(x[where], y[where], keep=keep[where], span=span)]
        ax.plot(x[pick], y[pick], style.pop("fmt"), **style)
        drawn, total = drawn + pick.size, total + where.size
    bad = strip_marks(x[~accepted], span)
    if bad.size:
        ax.plot(bad, [0.0] * len(bad), "x", color="#d62728", label="rejected")
    drawn, total = drawn + bad.size, total + int((~accepted).sum())
    ax.set_xlabel("iteration")
    ax.set_ylabel("mean RPS skill")
    ax.legend(fontsize=8, frameon=False, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    style_axes(ax)
    fig.subplots_adjust(left=0.08, right=0.8, top=0.95, bottom=0.15)
    return figure_html(fig, "skill over iterations", "mean RPS skill over horizons 1, 3, 5, 10 per iteration: "
                       "validation (selection) and train, climatology = 0; rejected candidates marked at 0"
                       + thinned_words(drawn, total))


def population_table(records: list[IterationRecord], population: list[int], baseline: str) -> str:
    rows = []
    for n in population:
        r = next((x for x in records if x.iteration == n), None)
        if r is None:
            continue
        v, t = scalar_view(r.split("val")) or {}, scalar_view(r.split("train")) or {}
        g = grade_counts(r.split("val") or {})
        rows.append([str(n), fnum(v.get(SELECTION_METRIC)), "+0.0000",
                     fnum((r.split("val") or {}).get("rps_skill_rolling_mean")), fnum(t.get(SELECTION_METRIC)),
                     fnum(v.get("ece"), 3, False), fnum(v.get("reward"), 3), str(g["overconfident_wrong"]),
                     esc(describe(r, baseline=baseline))])
    return table(["iter", "val skill", "val climatology", "val vs rolling climatology", "train skill", "val ECE",
                  "val reward", "val overconfident-wrong", "what it tried"], rows, left=8)


def horizon_rows(days: pd.DataFrame, climatology: dict,
                 rolling: dict | None = None) -> tuple[list[list[str]], np.ndarray, np.ndarray]:
    """Per horizon: skill (against climatology and, when recorded, the rolling climatology), RPS beside
    climatology's, direction accuracy over the called days, grades, reward; and per-day losses."""
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
        acc, n_calls = direction_accuracy(p, r)
        direction = "no calls" if not n_calls else f"{acc:.1%} of {n_calls}"
        rows.append([str(h), fnum(1 - s.mean() / sc.mean()), fnum((rolling or {}).get(str(h))),
                     fnum(s.mean(), 4, False), fnum(sc.mean(), 4, False), direction, *map(str, counts),
                     fnum(reward, 3)])
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
    return figure_html(fig, f"reliability diagrams, {split}", f"reliability per horizon on the {split} split: "
                       f"each bucket's probability pooled in {RELIABILITY_BINS} bins (marker size = count) against how "
                       "often that bucket happened; the diagonal is perfect calibration")


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
    ax.legend(fontsize=7, frameon=False, loc="upper left", bbox_to_anchor=(1.0, 1.0))  # beside, never over a bar
    style_axes(ax)
    fig.subplots_adjust(left=0.1, right=0.68, top=0.95, bottom=0.16)
    return figure_html(fig, f"grades, {split}", f"episode grades per horizon on the {split} split")


def actual_vs_predicted(days: pd.DataFrame, split: str) -> str:
    """The close; per horizon 1 and 10 the probabilities of up and down (p(up) dashed over p(down), so equal
    ones both show) and under them the realised h-bar return of each day, coloured by its bucket, with the
    cut points."""
    dates = pd.to_datetime(days["date"])
    fig = Figure(figsize=(11, 7.2))
    top = fig.add_subplot(5, 1, 1)
    top.plot(dates, days["close"], color="#222", linewidth=1)
    top.set_ylabel("close", fontsize=8)
    axes = [top]
    for i, h in enumerate((1, 10)):
        ax = fig.add_subplot(5, 1, 2 + 2 * i, sharex=top)
        ax.plot(dates, days[f"p_down_{h}"], color=BUCKET_COLOURS["down"], linewidth=1.0, label=f"p(down), h={h}")
        ax.plot(dates, days[f"p_up_{h}"], color=BUCKET_COLOURS["up"], linewidth=1.0, linestyle="--",
                label=f"p(up), h={h}")
        ax.axhline(1 / 3, color="#8a8a8a", linewidth=0.8)
        ax.set_ylim(0, max(0.7, float(np.nanmax(days[[f"p_up_{h}", f"p_down_{h}"]].to_numpy())) + 0.05))
        ax.set_ylabel("probability", fontsize=8)
        ax.legend(fontsize=7, frameon=False, loc="upper left", bbox_to_anchor=(1.0, 1.0))
        real = fig.add_subplot(5, 1, 3 + 2 * i, sharex=top)
        for bucket, colour in BUCKET_COLOURS.items():
            hit = (days[f"bucket_{h}"] == bucket).to_numpy()
            real.scatter(dates[hit], days.loc[hit, f"return_{h}"], s=4, color=colour, label=f"realised {bucket}")
        if f"cut_lower_{h}" in days:
            for col in (f"cut_lower_{h}", f"cut_upper_{h}"):
                real.axhline(float(days[col].iloc[0]), color="#555", linewidth=0.6, linestyle=":")
        real.set_ylabel(f"{h}-bar return", fontsize=8)
        real.legend(fontsize=7, frameon=False, loc="upper left", bbox_to_anchor=(1.0, 1.0), markerscale=2)
        axes += [ax, real]
    for ax in axes:
        style_axes(ax)
        ax.tick_params(labelsize=7, labelbottom=ax is axes[-1])
    date_axis(axes[-1])
    fig.subplots_adjust(left=0.07, right=0.84, top=0.98, bottom=0.06, hspace=0.25)
    return figure_html(fig, f"actual against predicted, {split}", f"{split} split: the close; for h=1 and h=10 the "
                       "forecast probabilities of an up and a down move (grey: one third), and under each the realised "
                       "h-bar return of every day coloured by its bucket, dotted lines at the cut points")


def extremes_table(days: pd.DataFrame) -> str:
    rows = []
    for h in HORIZONS:
        ok = days[days[f"bucket_{h}"].isin(BUCKETS)].reset_index(drop=True)
        order = np.argsort(ok[f"rps_{h}"].to_numpy(), kind="stable")  # rows are consecutive days
        best, worst = spread_picks(order, EXTREMES), spread_picks(order[::-1], EXTREMES)
        for label, part in (("best", ok.iloc[best]), ("worst", ok.iloc[worst])):
            for _, d in part.iterrows():  # at most 40 rows for the report, not a hot path
                probs = "/".join(f"{d[f'p_{k}_{h}']:.2f}" for k in BUCKETS)
                rows.append([str(h), label, esc(d["date"]), probs, esc(d[f"bucket_{h}"]), f"{d[f'return_{h}']:+.2%}",
                             f"{d[f'rps_{h}']:.3f}", esc(d[f"grade_{h}"])])
    return table(["h", "", "date", "p down/flat/up", "realised", "return", "RPS", "grade"], rows, left=2)


def split_section(days: pd.DataFrame, split: str, climatology: dict, test: bool, rolling: dict | None) -> str:
    rows, loss, clim_loss = horizon_rows(days, climatology, rolling)
    body = table(["h", "skill", "skill vs rolling clim.", "RPS", "RPS climatology", "direction (called days)",
                  *GRADES, "reward"], rows)
    body += note(f"skill = 1 - RPS / RPS of the train climatology; against the rolling climatology (the last "
                 f"known outcomes) as the run recorded it; a day is called when p(up) and p(down) differ by more "
                 f"than {CALL_MARGIN:g}", "muted")
    # on validation the run-level SPA (summary) counts the search; the test split saw one forecaster only
    stats = forecast_statistics(1, clim_loss, [loss], [None], split=split) if test and loss.size >= 20 else None
    if stats is not None:
        body += note(f"{stats['verdict_spa']} (this forecaster alone against climatology)", "muted")
    body += reliability_chart(days, split) + grades_chart(days, split) + actual_vs_predicted(days, split)
    body += "<h3>Best and worst days by RPS (at least a month apart)</h3>" + extremes_table(days)
    where = ("read once by `final`: figures here were never used to choose a forecaster" if test
             else "where the population was ranked")
    return section("test" if test else "val", f"The best forecaster on the {split} split ({where})", body)


def run_dates(wd: Workdir, entries: list[dict]) -> str:
    """First record's time to the run's own end (its last end-of-run file), as the trade report says it."""
    stamps = sorted(str(e["created_at"]) for e in entries if e.get("created_at"))
    if not stamps:
        return "-"
    ends = [p.stat().st_mtime for p in (wd.state, wd.forecast_stats, wd.forecasts("val"))
            if p.is_file()]
    end = datetime.fromtimestamp(max(ends), UTC).strftime("%Y-%m-%d %H:%M") if ends else stamps[-1][:16]
    return f"{stamps[0][:16].replace('T', ' ')} – {end.replace('T', ' ')} UTC"


def render_forecast_report(workdir: Path, baseline: str) -> str:
    wd = Workdir(workdir)
    entries = wd.index_entries()  # one short line an iteration; whole records only for what is shown one by one
    state = wd.read_state()
    manifest = wd.read_manifest() or {}
    best = state.best
    population = [m.iteration for m in state.population]
    first_scored = next((e["iteration"] for e in entries if e.get("scores")), None)
    wanted = [*population, *([best.iteration] if best else []), first_scored]
    records = [wd.record(n, returns=False) for n in dict.fromkeys(wanted) if wd.has_record(n)]
    buckets = next((r.scores["buckets"] for r in records if r.scores and "buckets" in r.scores), {})
    climatology, cuts = buckets.get("climatology"), buckets.get("cut_points")
    summary = [f"{len(entries)} iterations, {state.trials} forecasters tried, {state.accepted} accepted; selection "
               f"by {SELECTION_METRIC} on the validation split (climatology = 0)."]
    rolling_val = None
    if best is not None:
        val = (next((r for r in records if r.iteration == best.iteration), None))
        val_summary = (val.split("val") or {}) if val is not None else {}
        rolling_val = val_summary.get("rps_skill_rolling")
        summary.append(f"Best: iter {best.iteration}, validation {SELECTION_METRIC} {best.val_metric:+.4f} "
                       f"(train {best.train_metric:+.4f}; climatology +0.0000; against the rolling climatology "
                       f"{fnum(val_summary.get('rps_skill_rolling_mean'))}).")
        if best.train_metric < 0:
            summary.append("Warning: the best forecaster is below climatology on the train split; its validation "
                           "skill is probably luck.")
    if cuts:
        summary.append("Buckets, from the train split's terciles of h-bar returns: " + "; ".join(
            f"h={h}: down < {c['lower']:+.2%}, up > {c['upper']:+.2%}" for h, c in cuts.items()) + ".")
    stats = wd.read_forecast_stats()
    if stats:
        summary += [str(stats.get(k)) for k in ("verdict_spa", "verdict_spa_rolling", "warning_train") if stats.get(k)]
    readings = [r for r in wd.test_readings() if not r.damaged]
    summary.append(f"The test split was read {len(readings)} time(s) by harness.py final." if readings
                   else "The test split is untouched (run python harness.py final).")
    facts = [("Data", manifest.get("ticker", "?")), ("Run dates", run_dates(wd, entries)),
             ("Stopped", state.stop_reason or "-"), ("Workdir", str(wd.root))]
    fact_rows = "".join(f"<tr><th>{esc(k)}</th><td>{esc(v)}</td></tr>" for k, v in facts)
    generated = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    header = (f'<header id="summary"><h1>alphaloop forecast report</h1><p class="sub">generated {esc(generated)} · '
              f"selection metric: validation {SELECTION_METRIC}</p>"
              + "".join(f"<p>{esc(line)}</p>" for line in summary)
              + f'<table class="kv">{fact_rows}</table></header>')
    parts = [header, section("progress", "Skill over iterations", skill_chart(entries, population)),
             section("population", "Population (best first)", population_table(records, population, baseline))]
    latest = next((r for r in reversed(readings) if r.status == "scored" and r.test), None)
    for split, test in (("val", False), ("test", True)):
        path = wd.forecasts(split)
        if path.is_file() and climatology:
            rolling = ((latest.test or {}).get("rps_skill_rolling") if latest is not None else None) if test \
                else rolling_val
            parts.append(split_section(pd.read_csv(path, keep_default_na=False, na_values=[""]), split, climatology,
                                       test, rolling))
    text = re.sub(r"\A\s*#\s+Learnings\s*\n", "", wd.read_learnings())
    parts.append(section("learnings", "Learnings", f'<div class="md">{markdown_html(text)}</div>' if text.strip()
                         else note("no learnings.md yet", "muted")))
    body = "".join(parts)
    nav = "".join(f'<a href="#{sid}">{esc(label)}</a>' for sid, label in NAV
                  if f'<section id="{sid}"' in body or f'<header id="{sid}"' in body)
    return (f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
            f'<meta name="viewport" content="width=device-width, initial-scale=1">'
            f"<title>alphaloop forecast report — {esc(wd.root.name)}</title><style>{CSS}</style></head>"
            f"<body><nav>{nav}</nav><main>{body}<footer>alphaloop forecast report · self-contained: no network, no "
            "external files · the test split is shown only as recorded by harness.py final</footer></main>"
            "</body></html>\n")


def write_forecast_report(workdir: Path, baseline: str) -> Path:
    """The forecast run's report.html; ``baseline`` is how the task names iteration 0."""
    return Workdir(workdir).write_report(render_forecast_report(workdir, baseline))
