"""Report sections that try to break the result: stress scenarios, second market, statistics."""

from __future__ import annotations

from alphaloop.evaluate.stress import stress_penalty
from alphaloop.present.report.charts import stress_chart
from alphaloop.present.report.data import Run
from alphaloop.present.report.html import SCENARIO_LABELS, cell, esc, fmt, metric_label, note, section, table, td
from alphaloop.present.text import MISSING, clip


def instrument_one(run: Run) -> str:
    """The first instrument's name on a universe (the one stress and costs are measured on), else ""."""
    names = [str(n) for n in (run.manifest or {}).get("instruments") or []]
    return names[0] if len(names) > 1 else ""


def penalty_cell(stress: dict | None) -> str:
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
        body += stress_chart(stress, run.best)
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
        body += note(f"each percentile rests on {stress.get('n_paths')} paths per scenario (--stress-paths); with "
                     "8 paths a 5th percentile of return moves by about 10 points from one seed to another, with 32 "
                     "by about 6 (bench/stress_percentiles.py)", "muted")
        costs = stress.get("costs") or {}
        if costs:
            keys = ["total_return", "sharpe", "max_drawdown", "round_trips"]
            crow = [td(f"{k} costs ({stress.get('cost_bps', 0) * float(k.rstrip('x')):g} bp)")
                    + "".join(cell(v.get(kk), kk) for kk in keys) for k, v in costs.items()]
            where = f"{instrument_one(run)}, " if instrument_one(run) else ""
            body += (f"<h3>Costs on the real {esc(where)}{esc(stress.get('split', 'val'))} split</h3>"
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
        rows.append(td(f"iter {n}") + cells + penalty_cell(st))
    if rows and scen_names:
        body += ("<h3>Population: median return / 5th-percentile max drawdown per scenario</h3>"
                 + table(["member"] + [SCENARIO_LABELS.get(k, k) for k in scen_names] + ["worst p5 DD (penalty)"],
                         rows, "compact"))
    first = instrument_one(run)
    which = (f" On a universe these are instrument 1's ({first}) alone, beside its own buy and hold; the "
             "portfolio's figures are in the other sections." if first else "")
    return section("stress", "Stress scenarios" + (f" (instrument 1: {first})" if first else ""), body,
                   "Synthetic paths that are not copies of history: block bootstrap, volatility shocks, crash gaps "
                   "and regime switches, each beside buy and hold on the same path." + which)


def cross_html(run: Run) -> str:
    """The population on a second instrument over the primary's train and validation dates."""
    metric = run.metric
    cross = run.cross
    members = (cross or {}).get("members") or {}
    if not members:
        if len((run.manifest or {}).get("instruments") or []) > 1 and run.state.get("stop_reason"):
            return section("cross", "Second market", note(
                "skipped for a universe on purpose: generalisation is judged across its instruments (and on the "
                "held-out ones by harness.py final); --cross-ticker T scores another market", "muted"))
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
    """The honest verdict first (effective trials, Sharpe and excess DSR, SPA against buy and hold), then the
    figures it rests on, as measured on the validation split."""
    s = run.stats
    if not s:
        return section("stats", "Statistics over all trials",
                       note("no stats.json yet (written at the end of a loop run)", "muted"))
    u = s.get("universe") or {}
    return section("stats", "Statistics over all trials",
                   (_verdict_html(s, u) + table(["statistic", "value", "detail"], _stats_rows(s, u), "compact kvt")),
                   f"Data-snooping checks on the {s.get('split', 'val')} split"
                   + (f", best candidate iter {s['best_iteration']}" if s.get("best_iteration") is not None else "")
                   + ": is the best more than the luckiest of many tries, and does it beat buy and hold?")


def _verdict_html(s: dict, u: dict) -> str:
    """One verdict box: green only when SPA says a candidate beats buy and hold (the DSR alone never does)."""
    spa = s.get("spa_pvalues") or {}
    beats = u.get("beats_buy_and_hold")
    if beats is None:  # a stats.json written before the excess DSR: only SPA may say "beats"
        beats = isinstance(spa.get("consistent"), (int, float)) and spa["consistent"] < 0.05
    verdict = u.get("verdict") or f"{s.get('verdict_spa', MISSING)}; {s.get('verdict_dsr', MISSING)}"
    parts = [f'<div class="verdict {"ok" if beats else "no"}"><b>Verdict:</b> {esc(verdict)}</div>']
    for name, key in (("Sharpe DSR", "verdict_dsr"), ("Excess over buy and hold", "verdict_dsr_excess"),
                      ("SPA", "verdict_spa")):
        text = u.get(key) or (s.get(key) if key != "verdict_dsr_excess" else None)
        if text:
            parts.append(f'<p class="muted"><b>{esc(name)}:</b> {esc(text)}</p>')
    return "".join(parts)


def _stats_rows(s: dict, u: dict) -> list[str]:
    """Trials (raw and effective), the DSR on returns and on the excess over buy and hold, and SPA."""
    spa = s.get("spa_pvalues") or {}
    trials = s.get("trials")
    eff = u.get("effective_trials") or {}
    rows = [td("trials counted") + td(trials, "num")
            + td(f"{s.get('scored_trials', MISSING)} scored, {s.get('accepted', MISSING)} accepted")]
    if eff:
        rows.append(td("effective trials") + cell(eff.get("effective"))
                    + td(f"independent bets among {eff.get('raw', MISSING)} trials: {eff.get('estimator', '')}"))
    for label, d in (("deflated Sharpe (returns)", u.get("dsr_returns")),
                     ("deflated Sharpe (excess over buy and hold)", u.get("dsr_excess"))):
        if d:
            rows.append(td(label) + cell(d.get("dsr"))
                        + td(f"p = {fmt(d.get('pvalue'))}; Sharpe {fmt(d.get('sharpe'), 'sharpe')} against "
                             f"{fmt(d.get('expected_max_sharpe'), 'sharpe')} expected from the best of "
                             f"{fmt(d.get('trials_used'), 'sharpe')} skill-less trials ({d.get('trials_count', '')})"))
    if not u:
        rows += [td("deflated Sharpe ratio") + cell(s.get("dsr")) + td(f"p = {fmt(s.get('dsr_pvalue'))}"),
                 td("best Sharpe (annualised)") + cell(s.get("best_sharpe"))
                 + td(f"expected max of {trials} skill-less trials: {fmt(s.get('expected_max_sharpe'))}")]
    bench = (u.get("spa") or {}).get("benchmark") or "buy and hold"
    rows.append(td("SPA p-value vs buy & hold") + cell(spa.get("consistent"))
                + td(f"benchmark: {bench}; lower {fmt(spa.get('lower'))}, upper {fmt(spa.get('upper'))}"))
    return rows
