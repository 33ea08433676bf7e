"""Report sections about the search: header and cards, progress, population, hypotheses, learnings."""

from __future__ import annotations

import re
from datetime import UTC, datetime

import numpy as np
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from alphaloop.data.frozen import manifest_digest
from alphaloop.evaluate.backtest import TRADING_DAYS
from alphaloop.evaluate.pipeline import STAGES as PIPELINE_STAGES
from alphaloop.present.report.charts import (
    BEST,
    BUY_HOLD,
    STAGE_COLOURS,
    STRATEGY,
    figure_html,
    pct_axis,
    style_axes,
)
from alphaloop.present.report.data import Run, record_value
from alphaloop.present.report.html import cell, esc, fmt, metric_label, note, section, table, td
from alphaloop.present.report.markdown import markdown_html
from alphaloop.present.report.members import what_it_is
from alphaloop.present.report.robustness import penalty_cell
from alphaloop.present.report.thin import best_steps, by_rank, progress_series, strip_marks, thinned_words
from alphaloop.present.text import MISSING, clip
from alphaloop.run.diversity import (
    BH_DISGUISE_CORRELATION,
    BH_LABEL,
    NEAR_COPY_CORRELATION,
    correlation_matrix,
)
from alphaloop.run.grading import GRADING_RULE, tally
from alphaloop.run.records import IterationRecord
from alphaloop.run.rows import describe
from alphaloop.run.workdir import Workdir
from alphaloop.tasks import Task, get_task

STAGES = ("proposal", *PIPELINE_STAGES)  # the loop's own rejection (no usable code) first, then the pipeline's


def header_html(run: Run, task: Task | None = None) -> str:
    """Title, data source, run size, proposer and model, dates, and the headline numbers (the benchmark and the
    costs in the task's words)."""
    bh = task.benchmark_words if task is not None else "buy & hold"
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
        ("Data", data_words(m)),
        ("Data hash", manifest_digest(m) if m.get("splits") else MISSING),
        ("Proposer", ", ".join(proposers) or MISSING),
        ("Model", ", ".join(models) or ("none (offline proposer)" if proposers else MISSING)),
        ("Tokens", f"{tokens.get('prompt', 0):,} prompt, {tokens.get('completion', 0):,} completion"),
        ("Run dates", run_dates(run, stamps)),
        ("Stopped", run.state.get("stop_reason") or MISSING),
        ("Workdir", str(run.workdir)),
    ]
    fact_rows = "".join(f"<tr><th>{esc(k)}</th><td>{esc(v)}</td></tr>" for k, v in facts)
    best_val = record_value(best) if best else None
    best_scores = (best or {}).get("scores") or {}
    val = (best_scores.get("splits") or {}).get("val", {})
    members = ", ".join(f"#{n}" for n in run.population) or MISSING
    cards = [
        ("iterations", str(len(recs)), f"{len(accepted)} accepted, {len(recs) - len(accepted)} rejected; "
         f"population {members} (best first)"),
        (f"best val {metric_label(metric)}", fmt(best_val, metric),
         (f"iter {run.best}; {bh} {fmt(val.get(f'bh_{metric}'), metric)}" if best else "no accepted candidate")),
        (f"{bh} val Sharpe", fmt(val.get("bh_sharpe"), "bh_sharpe"),
         f"best's val Sharpe {fmt(val.get('sharpe'), 'sharpe')}" if val else "validation split"),
        ("best val return", fmt(val.get("total_return"), "total_return"),
         f"{bh} {fmt(val.get('bh_total_return'), 'bh_total_return')}" if val else "validation split"),
        test_card(run, bh),
        ("hit rate", hit_rate(run), "hypotheses that held"),
    ]
    card_html = "".join(f'<div class="card"><div class="k">{esc(k)}</div><div class="v">{esc(v)}</div>'
                        f'<div class="s">{esc(s)}</div></div>' for k, v, s in cards)
    desc = (what_it_is(run, run.best) or describe_record(best)) if best else ""
    best_line = (f'<p class="best">Best candidate: <b>iter {esc(run.best)}</b> — {esc(desc)}</p>' if best else "")
    notes = "".join(note(n, "warn") for n in run.notes)
    generated = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    return (f'<header id="summary"><h1>alphaloop run report</h1><p class="sub">generated {esc(generated)} · '
            f"selection metric: validation {esc(metric_label(metric))}</p>"
            f'<div class="cards">{card_html}</div>{best_line}'
            f'<p class="assume">{esc(assumptions(run, task))}</p>{notes}'
            f'<div class="facts"><table class="kv">{fact_rows}</table>'
            f'<table class="splits"><thead><tr><th>split</th><th>dates</th><th>rows</th></tr></thead>'
            f"<tbody>{split_rows}</tbody></table></div></header>")


def data_words(m: dict) -> str:
    """The instrument, or every instrument of a universe (and how many are held out), with the source."""
    names = [str(n) for n in m.get("instruments") or []]
    held = (m.get("holdout") or {}).get("count") if isinstance(m.get("holdout"), dict) else None
    what = (f"{len(names)} instruments: {', '.join(names)}" if len(names) > 1 else str(m.get("ticker", "unknown")))
    if held:
        what += f"; {held} held out (read only by harness.py final)"
    return f"{what} (source: {m.get('source', '?')})"


def test_card(run: Run, bh: str = "buy & hold") -> tuple[str, str, str]:
    """The latest ``final`` reading's test figure beside buy and hold, or that the test split is unread."""
    scored = [r for r in run.readings if isinstance(r.get("test"), dict) and r["test"]]
    if not scored:
        return ("test split", "not read", "locked until harness.py final")
    latest, metric = scored[-1], run.metric
    m = latest["test"]
    reads = f"; read {len(run.readings)} times" if len(run.readings) > 1 else ""
    return (f"test {metric_label(metric)}", fmt(m.get(metric), metric),
            f"iter {latest.get('iteration')}; {bh} {fmt(m.get(f'bh_{metric}'), metric)}{reads}")


def run_dates(run: Run, stamps: list[str]) -> str:
    """First record's time to the run's own end: the last save of its end-of-run files (state, statistics,
    second market, stress), not the last record's time, which precedes the end-of-run steps."""
    if not stamps:
        return MISSING
    wd = Workdir(run.workdir)
    ends = [p.stat().st_mtime for p in (wd.state, wd.stats, wd.cross_market, wd.stress) if p.is_file()]
    last = datetime.fromisoformat(stamps[-1]).astimezone(UTC) if stamps else None
    end = datetime.fromtimestamp(max(ends), UTC) if ends else last
    if last is not None and end is not None and end < last:
        end = last
    elapsed = run.state.get("elapsed_s")
    took = f" ({elapsed / 60:.1f} min of running)" if isinstance(elapsed, (int, float)) and elapsed > 0 else ""
    return f"{stamps[0][:16].replace('T', ' ')} – {end:%Y-%m-%d %H:%M} UTC{took}"


def assumptions(run: Run, task: Task | None = None) -> str:
    """The one line a reader needs to compare these figures with others': annualisation, risk-free, prices, costs."""
    prices = run.prices_words
    costs = run.state.get("cost_bps")
    if costs is None:
        costs = next((r.get("cost_bps") for r in run.records if r.get("cost_bps") is not None), None)
    task = task or get_task("trade")
    cost_text = task.costs_words(float(costs)) if costs is not None else "not recorded"
    bars = (run.manifest or {}).get("bars") or {}
    per_year = float(bars.get("periods_per_year") or TRADING_DAYS)
    kind = bars.get("frequency") or "daily"
    return (f"Assumptions: Sharpe and Sortino annualised with √{per_year:g} ({per_year:g} bars a year, {kind}); "
            f"risk-free rate 0; returns and {task.benchmark_words.replace('&', 'and')} on {prices}; costs {cost_text}.")


def describe_record(record: dict, width: int = 160) -> str:
    """The loop's own description of an iteration, else why it was rejected, as one clipped safe line."""
    rec = IterationRecord.from_json(record)
    return clip(describe(rec, 10 * width, baseline=get_task(rec.task).baseline) or record.get("reason") or "", width)


def hit_rate(run: Run) -> str:
    """Hypotheses that held over those graded, with the ungraded beside them (``grading.tally``)."""
    return tally(run.records).short()


def progress_html(run: Run, task: Task | None = None) -> str:
    """Selection metric over iterations: accepted points, rejections by stage, running best."""
    words = task.benchmark_words if task is not None else "buy & hold"
    metric = run.metric
    recs = run.records
    if not recs:
        return section("progress", "Selection metric over iterations", note("no iteration has been recorded yet"))
    fig = Figure(figsize=(10.4, 4.6))
    gs = fig.add_gridspec(2, 1, height_ratios=(4, 1.25), hspace=0.08)
    ax, strip = fig.add_subplot(gs[0]), fig.add_subplot(gs[1])
    s = progress_series(recs)
    xs, span, drawn = s.x, (float(s.x.min()), float(s.x.max())), 0
    steps = best_steps(xs, s.running, span=span)
    keep = np.isin(xs, run.population)  # the final population, and the accepted points whose step the line draws
    keep[steps[s.improved[steps]]] = True
    scored = s.accepted & np.isfinite(s.value)
    for mask, style in (
            (scored & ~s.in_population, dict(s=30, facecolors="white", edgecolors=STRATEGY, linewidths=1.3,
                                             label="accepted, not in top-K", zorder=3)),
            (scored & s.in_population, dict(s=38, color=STRATEGY, label="accepted, entered the population",
                                            zorder=4))):
        where = np.flatnonzero(mask)
        if where.size:
            pick = where[by_rank(xs[where], s.value[where], keep=keep[where], span=span)]
            ax.scatter(xs[pick], s.value[pick], **style)
            drawn += pick.size
    scored_rej = ~s.accepted & np.isfinite(s.value)
    for stage in sorted(set(s.stage[scored_rej])):
        where = np.flatnonzero(scored_rej & (s.stage == stage))
        pick = where[by_rank(xs[where], s.value[where], span=span)]
        ax.scatter(xs[pick], s.value[pick], marker="x", s=34, color=STAGE_COLOURS.get(stage, STAGE_COLOURS["other"]),
                   label=f"scored, rejected at {stage}", zorder=3)
        drawn += pick.size
    ax.step(xs[steps], s.running[steps], where="post", color=BEST, linewidth=2, label="population best", zorder=2)
    points = int(np.isfinite(s.value).sum())
    base = run.record(0)
    if base and record_value(base) is not None:
        ax.axhline(record_value(base), color="#555", linestyle=":", linewidth=1, label="baseline (iter 0)")
    bh = bh_value(run)
    if bh is not None:
        ax.axhline(bh, color=BUY_HOLD, linestyle="--", linewidth=1.3, label=f"{words} (val)")
    ax.set_ylabel(f"val {metric_label(metric)}")
    ax.set_title(f"Selection metric ({metric_label(metric)}) on the validation split, per iteration", fontsize=11,
                 loc="left")
    if metric in ("total_return", "cagr"):
        pct_axis(ax)
    style_axes(ax)
    ax.legend(fontsize=8, loc="best", frameon=False, ncol=2)
    ax.tick_params(labelbottom=False)
    rejected = [r for r in recs if r.get("status") != "accepted"]
    stages = [st for st in STAGES if any(r.get("stage") == st for r in rejected)]
    stages += sorted({str(r.get("stage")) for r in rejected} - set(STAGES))
    for i, stage in enumerate(stages):
        at = xs[~s.accepted & (s.stage == stage)]
        marks = strip_marks(at, span)
        strip.scatter(marks, [i] * len(marks), marker="|", s=140, linewidths=2,
                      color=STAGE_COLOURS.get(stage, STAGE_COLOURS["other"]))
        drawn, points = drawn + marks.size, points + at.size
    strip.set_yticks(range(len(stages)), [f"{st} ({sum(r.get('stage') == st for r in rejected)})" for st in stages])
    strip.set_ylim(-0.7, max(len(stages), 1) - 0.3)
    strip.set_xlabel("iteration")
    strip.xaxis.set_major_locator(MaxNLocator(integer=True))
    strip.set_ylabel("rejected", fontsize=9)
    style_axes(strip)
    lo, hi = xs.min(), xs.max()
    for a in (ax, strip):
        a.set_xlim(lo - 0.6, hi + 0.6)
    if not stages:
        strip.text(0.5, 0.5, "no rejections", transform=strip.transAxes, ha="center", va="center", color="#777")
        strip.set_yticks([])
    fig.subplots_adjust(left=0.12, right=0.98, top=0.92, bottom=0.12)
    said = words.replace("&", "and")
    bh_words = (f"; the dashed grey line is {said}'s {metric_label(metric)} on the same split" if bh is not None
                else f"; {said} has no {metric_label(metric)} figure")
    chart = figure_html(fig, "selection metric per iteration", f"validation split; {int(scored.sum())} "
                        f"accepted, {len(rejected)} rejected; the green step is the best population member so far"
                        f"{bh_words}{thinned_words(drawn, points)}")
    trades = task.shows_trades if task is not None else True
    return section("progress", "Selection metric over iterations", chart + iterations_table(run, trades),
                   "Every iteration's validation score; rejected ones sit in the strip below by the stage that "
                   "stopped them.")


def bh_value(run: Run, split: str = "val") -> float | None:
    """Buy and hold's figure for the selection metric on ``split`` (the same for every record of a run)."""
    for r in run.records:
        v = (((r.get("scores") or {}).get("splits") or {}).get(split) or {}).get(f"bh_{run.metric}")
        if isinstance(v, (int, float)) and np.isfinite(v):
            return float(v)
    return None


def iterations_table(run: Run, trades: bool = True) -> str:
    """Every iteration in one collapsible table, for tracing a failure to its stage (``trades``: with the
    validation round trips, for a task that trades)."""
    metric = run.metric
    rows = []
    listed, left_out = run.listed
    for r in listed:
        s = r.get("scores") or {}
        splits = s.get("splits") or {}
        status = r.get("status", "?")
        badge = "top" if r.get("in_population") else status
        copy = IterationRecord.from_json(r).copy_words if status == "accepted" else ""
        state_txt = (f"{status} at {r.get('stage')}" if status != "accepted"
                     else "accepted, entered top-K" if r.get("in_population")
                     else f"accepted, {copy}" if copy else "accepted")
        what = (describe_record(r, 220) if status == "accepted"
                else clip(f"{describe_record(r, 220)} — {r.get('reason', '')}", 220))
        rows.append(
            td(r.get("iteration"), "num") + td("" if r.get("parent") is None else r["parent"], "num")
            + f'<td><span class="badge {esc(badge)}">{esc(state_txt)}</span></td>'
            + cell(splits.get("val", {}).get(metric), metric) + cell(splits.get("train", {}).get(metric), metric)
            + (cell(splits.get("val", {}).get("round_trips"), "round_trips") if trades else "") + td(what, "text"))
    head = ["iter", "parent", "status", f"val {metric_label(metric)}", f"train {metric_label(metric)}",
            *(["val trades"] if trades else []), "what it tried"]
    return ('<details><summary>All iterations (table)</summary>' + (note(left_out, "muted") if left_out else "")
            + '<div class="scroll">' + table(head, rows) + "</div></details>")


def hypotheses_html(run: Run) -> str:
    """Each proposal's hypothesis, what it expected, and whether the result bore it out."""
    counted = tally(run.records)
    big = f"{counted.held}/{counted.graded} ({counted.held / counted.graded:.0%})" if counted.graded else MISSING
    rows = []
    listed, left_out = run.listed
    for r in listed:
        p = r.get("proposal") or {}
        if not r.get("iteration") or not (p.get("hypothesis") or p.get("expected")):
            continue
        held = r.get("hypothesis_held")
        mark, cls = {True: ("held", "held"), False: ("did not hold", "nothold"), None: ("ungraded", "ungraded")}[held]
        if held is not None and r.get("status") != "accepted":
            mark += " (rejected candidate)"
        rows.append(td(r["iteration"], "num") + td(clip(p.get("hypothesis", ""), 300), "text")
                    + td(clip(p.get("expected", ""), 160), "text")
                    + f'<td><span class="badge {cls}">{esc(mark)}</span></td>'
                    + td(clip(r.get("grading", ""), 160), "text"))
    rejected = (f"; {counted.graded_rejected} of the graded on rejected (scored) candidates"
                if counted.graded_rejected else "")
    body = (f'<p class="hit"><span class="big">{esc(big)}</span> graded hypotheses held '
            f"(on the validation split against the parent); {counted.ungraded} ungraded{esc(rejected)}</p>"
            f'<p class="muted">{esc(GRADING_RULE)}</p>')
    body += note(left_out, "muted") if left_out else ""
    body += ('<div class="scroll">' + table(["iter", "hypothesis", "expected", "outcome", "grading"], rows) + "</div>"
             if rows else note("no hypotheses recorded yet", "muted"))
    return section("hypotheses", "Hypotheses and hit rate", body,
                   "Reasoning that holds up counts more than a lucky result.")


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
        val = sp.get("val", {})
        rows.append(td(rank, "num") + td(f"iter {n}") + cell(val.get(metric), metric)
                    + cell(val.get(f"bh_{metric}"), metric) + cell(sp.get("train", {}).get(metric), metric)
                    + cell(sp.get("train", {}).get(f"bh_{metric}"), metric) + cell(folds.get("min"), metric)
                    + cell(val.get("max_drawdown"), "max_drawdown") + cell(val.get("bh_max_drawdown"), "max_drawdown")
                    + cell(val.get("round_trips"), "round_trips")
                    + penalty_cell(st)
                    + cell(cm.get(metric), metric) + cell(cm.get(f"bh_{metric}"), metric)
                    + td(what_it_is(run, n), "text"))
    if not rows:
        return section("population", "Population", note("the population is empty", "muted"))
    ml = metric_label(metric)
    return section("population", "Population", table(
        ["rank", "member", f"val {ml}", f"val B&H {ml}", f"train {ml}", f"train B&H {ml}", f"worst fold {ml}",
         "val max DD", "val B&H max DD", "val trades", "stress p5 DD", f"2nd market val {ml}",
         f"2nd market B&H {ml}", "what it is (the strategy)"], rows) + correlations_html(run),
        "The top-K kept at the end of the run, each beside buy and hold on the same split; a large gap between "
        "train and validation, or a bad worst fold, is a warning sign.")


def correlations_html(run: Run) -> str:
    """The members' validation daily-return correlations with each other and with buy and hold (the matrix
    the loop's diversity check reasons with): a top-K of near copies is one strategy, not K."""
    members = {f"iter {n}": (run.record(n) or {}).get("returns", {}).get("val") for n in run.population}
    members = {k: np.asarray(v, dtype=np.float64) for k, v in members.items() if v}
    frame = (run.splits or {}).get("val")
    if not members:
        return ""
    sizes = {v.size for v in members.values()}
    if frame is None or len(sizes) != 1 or len(frame) != sizes.pop() + 1:
        return note("member correlations need the run's frozen validation split (buy and hold's returns)", "muted")
    close = frame[run.prices].to_numpy(dtype=np.float64)
    cm = correlation_matrix(members, close[1:] / close[:-1] - 1.0)
    rows = []
    for i, label in enumerate(cm.labels):
        cells = ""
        for j, v in enumerate(cm.matrix[i]):
            near = i != j and v > (BH_DISGUISE_CORRELATION if BH_LABEL in (label, cm.labels[j])
                                   else NEAR_COPY_CORRELATION)
            cells += f'<td class="num{" warn" if near else ""}">{esc(f"{v:.2f}")}</td>'
        rows.append(td(label) + cells)
    pair = cm.max_pair()
    words = (f"most alike: {pair[0]} and {pair[1]} at {pair[2]:.2f}; " if pair else "")
    return ("<h3>Correlation of daily validation returns (members and buy and hold)</h3>"
            + table(["validation split"] + cm.labels, rows, "compact")
            + note(f"{words}highlighted above {NEAR_COPY_CORRELATION:g} between members (a near copy may only "
                   f"replace the member it copies) and above {BH_DISGUISE_CORRELATION:g} with buy and hold", "muted"))
