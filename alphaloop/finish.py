"""What every loop run ends with: data-snooping statistics over all trials, the population on a
second market, and the HTML report. Each step failing is reported, never fatal to the run."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from alphaloop.scoring import beside_bh
from alphaloop.store import atomic_write_json
from alphaloop.text import clip, fmt, rich
from alphaloop.ui import console

if TYPE_CHECKING:
    from alphaloop.loop import Loop, LoopState


def write_statistics(loop: Loop, state: LoopState) -> dict | None:
    """Trials, deflated Sharpe of the best and Hansen's SPA over accepted candidates (validation)."""
    from alphaloop.stats import run_statistics, split_bh_returns, universe_statistics
    from alphaloop.universe import bh_returns, instrument_bh_returns

    records = loop.wd.records()
    scored = [r for r in records if r.get("scores")]
    accepted = [r for r in records if r["status"] == "accepted" and r.get("returns")]
    if state.best is None or not accepted:
        console.print("statistics: no accepted candidate yet; nothing to test")
        return None
    best = next(r for r in accepted if r["iteration"] == state.best.iteration)
    histories = loop.histories
    # a universe is judged on its equal-weight portfolio against the equal-weight buy and hold
    bh = split_bh_returns(loop.history, "val") if len(histories) == 1 else bh_returns(histories, "val")
    stats = run_statistics(
        trials=state.trials,
        sharpes=[r["scores"]["splits"]["val"]["sharpe"] for r in scored],
        best_returns=np.asarray(best["returns"]["val"]),
        accepted_returns=[np.asarray(r["returns"]["val"]) for r in accepted],
        bh_returns=bh,
        seed=loop.cfg.seed,
    )
    stats["best_iteration"] = state.best.iteration
    # DSR's null is a Sharpe of zero, which any long-biased rule beats on rising prices: the excess over
    # buy and hold, the effective number of trials and a verdict that only SPA may word as "beats" sit beside it.
    matrix = np.column_stack([np.asarray(r["returns"]["val"]) for r in accepted])
    per = None
    if len(histories) > 1 and best.get("instrument_returns"):  # the best on each instrument beside its buy and hold
        per = {name: (np.asarray(r), instrument_bh_returns(h, "val"))
               for name, r, h in zip(loop.instrument_names, best["instrument_returns"]["val"], histories, strict=True)}
    universe = universe_statistics(
        matrix, best=accepted.index(best), bh_returns=bh, trials=state.trials,
        sharpes=[r["scores"]["splits"]["val"]["sharpe"] for r in scored], instruments=len(histories),
        per_instrument=per, best_iteration=state.best.iteration, seed=loop.cfg.seed)
    stats.update(universe=universe.to_json(), verdict=universe.verdict,
                 effective_trials=universe.effective_trials.effective, dsr_excess=universe.dsr_excess.dsr)
    atomic_write_json(loop.wd.root / "stats.json", stats)
    console.print(universe.format())
    return stats


def run_population_stress(loop: Loop, state: LoopState) -> dict:
    """Stress every population member once (cached in stress.json across runs and resumes)."""
    from alphaloop.store import read_json
    from alphaloop.stress import stress_penalty

    path = loop.wd.root / "stress.json"
    cache = read_json(path) if path.is_file() else {}
    wanted = {"n_paths": loop.cfg.stress_paths, "cost_bps": loop.cfg.cost_bps, "seed": loop.cfg.seed}
    for m in state.population:
        key = str(m.iteration)
        if key in cache and all(cache[key].get(k) == v for k, v in wanted.items()):
            continue
        record = read_json(loop.wd.results(m.iteration)).get("stress") or {}
        same = record.get("status") == "ok" and all(record.get(k) == v for k, v in wanted.items())
        cache[key] = record if same else loop.stress(loop.wd.region(m.iteration))
    cache = {k: v for k, v in cache.items() if int(k) in {m.iteration for m in state.population}}
    atomic_write_json(path, cache)
    for m in state.population:
        st = cache[str(m.iteration)]
        if st.get("status") == "ok":
            console.print(f"stress (synthetic paths from the validation split), iter {m.iteration}: "
                          f"worst scenario's 5th-percentile max drawdown {stress_penalty(st):.1%}")
        else:
            console.print(f"stress, iter {m.iteration}: failed ({rich(clip(st.get('reason'), 300))})")
    return cache


def run_cross_market(loop: Loop, state: LoopState, manifest: dict) -> dict | None:
    """Score the population on a second instrument's train and validation splits."""
    from alphaloop.cross_market import format_cross, load_cross_history, score_cross

    history, label = load_cross_history(manifest, loop.cfg.cross_ticker)
    regions = {m.iteration: loop.wd.region(m.iteration) for m in state.population}
    members = score_cross(regions, history, loop.sandbox, loop.cfg.metric, loop.cfg.cost_bps)
    result = {"label": label, "metric": loop.cfg.metric, "members": {str(k): v for k, v in members.items()}}
    atomic_write_json(loop.wd.root / "cross_market.json", result)
    console.print(format_cross(result))
    return result


def finish_run(loop: Loop, state: LoopState, manifest: dict) -> None:
    """Close the view, then print and store the end-of-run figures, each step failing alone."""
    loop.view.close()
    if state.stop_reason:
        console.print(f"stopped: {rich(state.stop_reason)}")
    best = state.best
    if best is not None:
        console.print(f"best: iter {best.iteration}, val {state.metric} {fmt(best.val_metric)}"
                      f"{beside_bh(best.val, state.metric)} "
                      f"(train {fmt(best.train_metric)}) -> {rich(loop.wd.root)}/best_trade.py; "
                      f"researcher hit rate: {loop_hit_rate(state)}")
    steps = [("statistics", lambda: write_statistics(loop, state))]
    if state.population and loop.cfg.stress_paths > 0:
        steps.append(("stress", lambda: run_population_stress(loop, state)))
    if state.population:
        steps.append(("second market", lambda: run_cross_market(loop, state, manifest)))
    steps.append(("report", lambda: _report(loop)))
    from sandbox.runner import Sandbox

    with Sandbox() as sandbox:
        loop.sandbox = sandbox
        for name, step in steps:
            try:
                step()
            except Exception as exc:  # a summary step must not hide the run's own results
                console.print(f"[yellow]warning:[/] {name} failed: {type(exc).__name__}: {rich(clip(exc, 300))}")
    console.print(f"files: {rich(loop.wd.root)}/ (learnings.md, results.tsv, iter_N_trade.py, best_trade.py, "
                  "report.html); " + _test_split_note(loop.test_readings))


def _test_split_note(readings: int) -> str:
    """What is true of the locked test split now: untouched, or read by ``final`` (and so less locked)."""
    if readings <= 0:
        return "the test split is untouched until `python harness.py final`"
    return (f"the test split has been read {readings} time{'s' * (readings != 1)} by `final`; searching further "
            "turns it into one more validation split")


def loop_hit_rate(state: LoopState) -> str:
    from alphaloop.learnings import Learnings

    return Learnings.from_json(state.learnings).hit_rate() if state.learnings else "no graded hypotheses yet"


def _report(loop: Loop) -> None:
    from alphaloop.report import write_report

    path = write_report(loop.wd.root, loop.cfg.data_dir)
    console.print(f"report: {rich(path)}")
