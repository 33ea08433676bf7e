"""The trade task's end of run: data-snooping statistics over all trials, the population's stress
suite and its figures on a second market. Each step is one entry of ``finish_steps``; a failing step
is reported by ``commands.finish``, never fatal to the run."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from alphaloop.commands.inputs import FinishInputs
from alphaloop.evaluate.cross_market import format_cross, load_cross_history, score_cross
from alphaloop.evaluate.stats import run_statistics, trial_statistics
from alphaloop.evaluate.stress import stress_or_failure, stress_penalty
from alphaloop.evaluate.universe import bh_returns as universe_bh_returns
from alphaloop.present.text import clip, rich
from alphaloop.present.ui import console
from alphaloop.run.records import CrossMarket, IterationRecord, RunStats, StressCache, StressResult
from alphaloop.run.trials import accepted_with_returns, run_trials, trial_columns
from sandbox.runner import Sandbox


def finish_steps(run: FinishInputs, sandbox: Sandbox) -> list[tuple[str, Callable[[], object]]]:
    """Statistics, then (with a population) the stress suite and the second market."""
    steps: list[tuple[str, Callable[[], object]]] = [("statistics", lambda: write_statistics(run))]
    if run.state.population and run.stress_paths > 0:
        steps.append(("stress", lambda: run_population_stress(run, sandbox)))
    if run.state.population:
        if len(run.histories) > 1 and not run.cross_ticker:  # the default second market may be in the universe
            console.print("second market: skipped for a universe (generalisation is judged across its "
                          "instruments, and on held-out ones by final); --cross-ticker T scores another market")
        else:
            steps.append(("second market", lambda: run_cross_market(run, sandbox)))
    return steps


def write_statistics(run: FinishInputs) -> RunStats | None:
    """Trials, deflated Sharpe of the best and Hansen's SPA over accepted candidates (validation).

    Reads the run's index (one line an iteration) and then each accepted candidate's validation returns one
    at a time into ``TrialColumns``, which keeps what the statistics read: memory stays bounded however
    long the night (docs/bench.md "End-of-run statistics at scale")."""
    state = run.state
    trials = run_trials(run.wd)
    accepted = accepted_with_returns(run.wd, trials)
    if state.best is None or state.best.iteration not in accepted:
        console.print("statistics: no accepted candidate yet; nothing to test")
        return None
    sharpes = [t.sharpe for t in trials if t.sharpe is not None]
    bh_returns = universe_bh_returns(run.histories, "val")  # the equal-weight buy and hold (one: its own)
    ppy = run.histories[0].periods_per_year
    columns = trial_columns(run.wd, accepted, bh_returns, ppy, state.best.iteration)
    # DSR's null is a Sharpe of zero, which any long-biased rule beats on rising prices: the excess over
    # buy and hold, the effective number of trials and a verdict that only SPA may word as "beats" sit beside it.
    best = run.wd.record(state.best.iteration)
    per = None
    if best.instrument_returns:  # several instruments: the best on each beside that instrument's buy and hold
        per = {name: (np.asarray(r), h.bh_returns("val"))
               for name, r, h in zip(run.instrument_names, best.instrument_returns, run.histories, strict=True)}
    universe = trial_statistics(
        columns, trials=state.trials, sharpes=sharpes, instruments=len(run.histories), per_instrument=per,
        best_iteration=state.best.iteration, seed=run.seed)
    stats = run_statistics(trials=state.trials, sharpes=sharpes, best_returns=columns.best, spa=universe.spa,
                           periods_per_year=ppy)
    stats["best_iteration"] = state.best.iteration
    stats.update(universe=universe.to_json(), verdict=universe.verdict,
                 effective_trials=universe.effective_trials.effective, dsr_excess=universe.dsr_excess.dsr)
    result = RunStats.from_json(stats, "the run's statistics")
    run.wd.write_stats(result)
    console.print(universe.format())
    return result


def run_population_stress(run: FinishInputs, sandbox: Sandbox) -> StressCache:
    """Stress every population member once (cached in the workdir across runs and resumes)."""

    def stress_one(n: int, record: IterationRecord) -> dict:
        return stress_or_failure(run.wd.region(n), run.histories[0], sandbox, run.cost_bps, run.stress_paths,
                                 run.seed)

    def line(n: int, st: StressResult) -> str:
        return (f"stress (synthetic paths from the validation split), iter {n}: "
                f"worst scenario's 5th-percentile max drawdown {stress_penalty(st.to_json()):.1%}")

    return stress_population(run, stress_one, line)


def stress_population(run: FinishInputs, stress_one: Callable[[int, IterationRecord], dict],
                      line: Callable[[int, StressResult], str | None]) -> StressCache:
    """Every population member's stress result, each suite run once: a result cached in ``stress.json`` or
    recorded by the loop (``--stress-select``) with the run's paths, costs and seed is kept, the others come
    from ``stress_one(iteration, record)``; members that left the population drop out of the cache. Prints
    ``line`` of each member's result, or its failure where the result failed (or ``line`` gives None).

    Why shared: every task that stresses its population caches, prunes and reports it alike; only the suite
    and the words of its summary differ."""
    cache = run.wd.read_stress()
    for m in run.state.population:
        key = str(m.iteration)
        if key in cache.members and cache.members[key].matches(run.stress_paths, run.cost_bps, run.seed):
            continue
        record = run.wd.record(m.iteration)
        recorded = record.stress
        if recorded is not None and recorded.ok and recorded.matches(run.stress_paths, run.cost_bps, run.seed):
            cache.members[key] = recorded
        else:
            cache.members[key] = StressResult.from_json(stress_one(m.iteration, record))
    kept = {str(m.iteration) for m in run.state.population}
    cache = StressCache({k: v for k, v in cache.members.items() if k in kept})
    run.wd.write_stress(cache)
    for m in run.state.population:
        st = cache.members[str(m.iteration)]
        said = line(m.iteration, st) if st.ok else None
        console.print(said if said is not None else
                      f"stress, iter {m.iteration}: failed ({rich(clip(st.reason, 300))})")
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
