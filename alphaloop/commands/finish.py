"""What every loop run ends with: data-snooping statistics over all trials, the population on a
second market, and the HTML report. Each step failing is reported, never fatal to the run.

The steps take what they need as arguments (``FinishInputs``), not the loop that ran.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from alphaloop.evaluate.cross_market import format_cross, load_cross_history, score_cross
from alphaloop.evaluate.sandboxed import open_sandbox
from alphaloop.evaluate.scoring import History, beside_bh
from alphaloop.evaluate.stats import run_statistics, split_bh_returns, universe_statistics
from alphaloop.evaluate.stress import stress_or_failure, stress_penalty
from alphaloop.evaluate.universe import bh_returns as universe_bh_returns
from alphaloop.evaluate.universe import instrument_bh_returns
from alphaloop.present.text import clip, fmt, rich
from alphaloop.present.ui import console
from alphaloop.run.learnings import Learnings
from alphaloop.run.morning import refresh_morning
from alphaloop.run.records import CrossMarket, RunStats, StressCache, StressResult
from alphaloop.run.state import LoopState
from alphaloop.run.workdir import USER_FILES, Workdir
from alphaloop.tasks.forecast.finish import write_forecast_statistics, write_validation_forecasts
from alphaloop.tasks.forecast.rows import is_forecast
from sandbox.runner import Sandbox


@dataclass
class FinishInputs:
    """What the end-of-run steps read: the run folder, its state and data, and the run's settings."""

    wd: Workdir
    state: LoopState
    manifest: dict
    history: History
    data_dir: Path
    metric: str
    cost_bps: float
    seed: int
    stress_paths: int
    cross_ticker: str | None
    test_readings: int  # readings of the test split by `final`, counted when the run started
    histories: list[History] = field(default_factory=list)  # every instrument of a universe ([] or one: ``history``)
    instrument_names: tuple[str, ...] = ()  # their names, for stats.json (people only; prompts number them)


def write_statistics(run: FinishInputs) -> RunStats | None:
    """Trials, deflated Sharpe of the best and Hansen's SPA over accepted candidates (validation)."""
    state = run.state
    records = run.wd.records()
    scored = [r for r in records if r.scores]
    accepted = [r for r in records if r.accepted and r.returns]
    if state.best is None or not accepted:
        console.print("statistics: no accepted candidate yet; nothing to test")
        return None
    best = next(r for r in accepted if r.iteration == state.best.iteration)
    sharpes = [r.split("val")["sharpe"] for r in scored]
    many = len(run.histories) > 1  # a universe is judged on its equal-weight portfolio against the equal-weight B&H
    bh_returns = universe_bh_returns(run.histories, "val") if many else split_bh_returns(run.history, "val")
    stats = run_statistics(
        trials=state.trials, sharpes=sharpes, best_returns=np.asarray(best.returns["val"]),
        accepted_returns=[np.asarray(r.returns["val"]) for r in accepted], bh_returns=bh_returns, seed=run.seed,
        periods_per_year=run.history.periods_per_year,
    )
    stats["best_iteration"] = state.best.iteration
    # DSR's null is a Sharpe of zero, which any long-biased rule beats on rising prices: the excess over
    # buy and hold, the effective number of trials and a verdict that only SPA may word as "beats" sit beside it.
    matrix = np.column_stack([np.asarray(r.returns["val"]) for r in accepted])
    per = None
    if many and best.instrument_returns:  # the best on each instrument beside that instrument's buy and hold
        per = {name: (np.asarray(r), instrument_bh_returns(h, "val"))
               for name, r, h in zip(run.instrument_names, best.instrument_returns, run.histories, strict=True)}
    universe = universe_statistics(
        matrix, best=accepted.index(best), bh_returns=bh_returns, trials=state.trials, sharpes=sharpes,
        instruments=max(len(run.histories), 1), per_instrument=per, best_iteration=state.best.iteration,
        seed=run.seed, periods_per_year=run.history.periods_per_year)
    stats.update(universe=universe.to_json(), verdict=universe.verdict,
                 effective_trials=universe.effective_trials.effective, dsr_excess=universe.dsr_excess.dsr)
    result = RunStats.from_json(stats, "the run's statistics")
    run.wd.write_stats(result)
    console.print(universe.format())
    return result


def run_population_stress(run: FinishInputs, sandbox: Sandbox) -> StressCache:
    """Stress every population member once (cached in the workdir across runs and resumes)."""
    cache = run.wd.read_stress()
    for m in run.state.population:
        key = str(m.iteration)
        if key in cache.members and cache.members[key].matches(run.stress_paths, run.cost_bps, run.seed):
            continue
        recorded = run.wd.record(m.iteration).stress
        if recorded is not None and recorded.ok and recorded.matches(run.stress_paths, run.cost_bps, run.seed):
            cache.members[key] = recorded
        else:
            cache.members[key] = StressResult.from_json(stress_or_failure(
                run.wd.region(m.iteration), run.history, sandbox, run.cost_bps, run.stress_paths, run.seed))
    kept = {str(m.iteration) for m in run.state.population}
    cache = StressCache({k: v for k, v in cache.members.items() if k in kept})
    run.wd.write_stress(cache)
    for m in run.state.population:
        st = cache.members[str(m.iteration)]
        if st.ok:
            console.print(f"stress (synthetic paths from the validation split), iter {m.iteration}: "
                          f"worst scenario's 5th-percentile max drawdown {stress_penalty(st.to_json()):.1%}")
        else:
            console.print(f"stress, iter {m.iteration}: failed ({rich(clip(st.reason, 300))})")
    return cache


def run_cross_market(run: FinishInputs, sandbox: Sandbox) -> CrossMarket:
    """Score the population on a second instrument's train and validation splits."""
    history, label = load_cross_history(run.manifest, run.cross_ticker)
    regions = {m.iteration: run.wd.region(m.iteration) for m in run.state.population}
    members = score_cross(regions, history, sandbox, run.metric, run.cost_bps)
    result = CrossMarket(label=label, metric=run.metric, members={str(k): v for k, v in members.items()})
    run.wd.write_cross_market(result)
    console.print(format_cross(result.to_json()))
    return result


def finish_run(run: FinishInputs, close_view: Callable[[], None]) -> bool:
    """Close the view, then print and store the end-of-run figures, each step failing alone.

    A Ctrl-C here cuts the steps short with one ``stopped:`` line, never a traceback: every iteration
    is already saved. Returns False when that happened."""
    close_view()
    try:
        _finish_steps(run)
    except KeyboardInterrupt:
        console.print(f"\nstopped: interrupted: Ctrl-C during the end-of-run steps; every iteration is saved: "
                      f"rerun the same command to resume at iteration {run.state.next_iteration}, or "
                      f"`python harness.py report --workdir {rich(run.wd.root)}` to rebuild the report",
                      highlight=False)
        return False
    return True


def _finish_steps(run: FinishInputs) -> None:
    state = run.state
    if state.stop_reason:
        console.print(f"stopped: {rich(state.stop_reason)}")
    best = state.best
    if best is not None:
        console.print(f"best: iter {best.iteration}, val {state.metric} {fmt(best.val_metric)}"
                      f"{beside_bh(best.val, state.metric)} "
                      f"(train {fmt(best.train_metric)}), saved as {rich(run.wd.best_trade)}; "
                      f"researcher hit rate: {loop_hit_rate(state)}")
    with open_sandbox() as sandbox:
        steps: list[tuple[str, Callable[[], object]]] = [("statistics", lambda: write_statistics(run))]
        if is_forecast(run.metric):  # stress and the second market judge positions; a forecaster takes none
            steps = [("statistics", lambda: write_forecast_statistics(run.wd, state.trials, best and best.iteration,
                                                                      run.seed))]
            if best is not None:
                steps.append(("forecasts", lambda: console.print(write_validation_forecasts(
                    run.wd, run.history, best.iteration, sandbox), highlight=False, soft_wrap=True)))
        if state.population and run.stress_paths > 0 and not is_forecast(run.metric):
            steps.append(("stress", lambda: run_population_stress(run, sandbox)))
        if state.population and not is_forecast(run.metric):
            if len(run.histories) > 1 and not run.cross_ticker:  # the default second market may be in the universe
                console.print("second market: skipped for a universe (generalisation is judged across its "
                              "instruments, and on held-out ones by final); --cross-ticker T scores another market")
            else:
                steps.append(("second market", lambda: run_cross_market(run, sandbox)))
        steps.append(("morning verdict", lambda: refresh_morning(run.wd)))
        steps.append(("report", lambda: console.print(f"report: {rich(_write_report(run.wd.root, run.data_dir))}")))
        for name, step in steps:
            try:
                step()
            except Exception as exc:  # a summary step must not hide the run's own results
                console.print(f"[yellow]warning:[/] {name} failed: {type(exc).__name__}: {rich(clip(exc, 300))}")
    console.print(f"files: {rich(run.wd.root)}/ ({', '.join(USER_FILES)}); " + _test_split_note(run.test_readings))


def _test_split_note(readings: int) -> str:
    """What is true of the locked test split now: untouched, or read by ``final`` (and so less locked)."""
    if readings <= 0:
        return "the test split is untouched until `python harness.py final`"
    return (f"the test split has been read {readings} time{'s' * (readings != 1)} by `final`; searching further "
            "turns it into one more validation split")


def loop_hit_rate(state: LoopState) -> str:
    return Learnings.from_json(state.learnings).hit_rate() if state.learnings else "no graded hypotheses yet"


def _write_report(root: Path, data_dir: Path) -> Path:
    """The report, imported when written: matplotlib would otherwise load at every loop start."""
    from alphaloop.present.report import write_report

    return write_report(root, data_dir)
