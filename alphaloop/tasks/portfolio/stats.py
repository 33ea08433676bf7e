"""End-of-run statistics of the portfolio task, on the validation split the loop selected on: the
deflated Sharpe ratio on the pick's returns and on its excess over the equal-weight buy and hold, the
effective number of trials, Hansen's SPA of every accepted portfolio against the equal-weight buy and
hold and, when the pick is market-neutral (its net exposure near 0), also against cash: a hedged book
is meant to earn without the market, so cash is its fair benchmark. The verdict's wording is the
shared one (``evaluate.stats.verdicts``): only SPA may say that a pick beats buy and hold."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from alphaloop.evaluate.columns import TrialColumns
from alphaloop.evaluate.stats import (
    SPA_REPS,
    RunStatistics,
    SpaResult,
    run_statistics,
    spa_result,
    trial_statistics,
)

MARKET_NEUTRAL_NET = 0.1  # |mean net exposure| on validation below this: judged against cash as well


@dataclass(frozen=True)
class PortfolioStatistics:
    """The run's statistics against the equal-weight buy and hold, and against cash for a neutral pick."""

    stats: dict  # stats.json's fields (``spa_pvalues`` against the equal-weight buy and hold)
    universe: RunStatistics
    cash: SpaResult | None
    cash_verdict: str

    def format(self) -> str:
        lines = [self.universe.format()]
        if self.cash is not None:
            lines.append(f"  SPA against cash (the pick is market-neutral): p = {self.cash.consistent:.3f} "
                         f"(lower {self.cash.lower:.3f}, upper {self.cash.upper:.3f}; {self.cash.candidates} "
                         f"accepted candidates)")
        lines.append(f"  against cash: {self.cash_verdict}")
        return "\n".join(lines)


def cash_verdict(spa: SpaResult | None, net_exposure: float) -> str:
    if spa is None:
        return (f"not judged against cash: the pick's mean net exposure on validation is {net_exposure:+.2f}, "
                f"not market-neutral (|net| < {MARKET_NEUTRAL_NET:g})")
    if spa.significant:
        return f"the market-neutral pick earns more than cash beyond luck (SPA p = {spa.consistent:.2f})"
    return f"the market-neutral pick is not shown to earn more than cash (SPA p = {spa.consistent:.2f})"


def portfolio_statistics(trial_returns: np.ndarray, best: int, bh_returns: np.ndarray, trials: int,
                         sharpes: Sequence[float], net_exposure: float, instruments: int,
                         best_iteration: int | None = None, seed: int = 0, reps: int = SPA_REPS) -> PortfolioStatistics:
    """``trial_returns``: (days, accepted) validation returns of every accepted portfolio; ``best``: the pick's
    column; ``bh_returns``: the equal-weight buy and hold on the same days; ``sharpes``: every scored trial's."""
    r = np.asarray(trial_returns, dtype=np.float64)
    columns = TrialColumns(r.shape[1], bh_returns)
    for j in range(r.shape[1]):
        columns.add(r[:, j], best=j == best)
    return trial_portfolio_statistics(columns, trials, sharpes, net_exposure, instruments, best_iteration, seed, reps)


def trial_portfolio_statistics(columns: TrialColumns, trials: int, sharpes: Sequence[float], net_exposure: float,
                               instruments: int, best_iteration: int | None = None, seed: int = 0,
                               reps: int = SPA_REPS) -> PortfolioStatistics:
    """``portfolio_statistics`` from the accepted portfolios' columns as streamed (every one accepted): SPA
    against the equal-weight buy and hold runs once, and against cash once when the pick is market-neutral."""
    universe = trial_statistics(columns, trials=trials, sharpes=sharpes, instruments=instruments,
                                best_iteration=best_iteration, seed=seed, reps=reps)
    stats = run_statistics(trials=trials, sharpes=sharpes, best_returns=columns.best, spa=universe.spa, reps=reps,
                           periods_per_year=columns.periods_per_year)
    cash = None
    if abs(net_exposure) < MARKET_NEUTRAL_NET:  # the series kept rank by mean, against cash as against buy and hold
        cash = spa_result(np.zeros(columns.bh.size), columns.spa_series(), columns.spa_candidates, "cash", seed, reps)
    verdict = cash_verdict(cash, net_exposure)
    u = universe.to_json()
    u["cash"] = {"spa_pvalues": None if cash is None else {"lower": cash.lower, "consistent": cash.consistent,
                                                           "upper": cash.upper},
                 "net_exposure": float(net_exposure), "verdict": verdict}
    stats.update(best_iteration=best_iteration, universe=u, verdict=universe.verdict,
                 effective_trials=universe.effective_trials.effective, dsr_excess=universe.dsr_excess.dsr)
    return PortfolioStatistics(stats=stats, universe=universe, cash=cash, cash_verdict=verdict)


def write_statistics(run: Any) -> Any:
    """The finish step: statistics over every trial of the run (``FinishInputs``), written to stats.json.
    Reads the index, then each accepted portfolio's validation returns one at a time (``run.trials``)."""
    from alphaloop.present.ui import console
    from alphaloop.run.records import RunStats
    from alphaloop.run.trials import accepted_with_returns, run_trials, trial_columns
    from alphaloop.tasks.portfolio.scoring import Panel

    state = run.state
    trials = run_trials(run.wd)
    accepted = accepted_with_returns(run.wd, trials)
    if state.best is None or not accepted:
        console.print("statistics: no accepted portfolio yet; nothing to test")
        return None
    if state.best.iteration not in accepted:
        console.print("statistics: the best portfolio's validation returns are not on record; nothing to test")
        return None
    panel = Panel.of(run.histories)
    a, b = panel.windows["val"]
    columns = trial_columns(run.wd, accepted, panel.bh[a + 1:b], run.histories[0].periods_per_year,
                            state.best.iteration)
    sharpes = [t.sharpe for t in trials if t.sharpe is not None]
    net = float((run.wd.record(state.best.iteration, returns=False).split("val") or {}).get("net_exposure", 1.0))
    result = trial_portfolio_statistics(columns, trials=state.trials, sharpes=sharpes, net_exposure=net,
                                        instruments=len(run.histories), best_iteration=state.best.iteration,
                                        seed=run.seed)
    stats = RunStats.from_json(result.stats, "the run's statistics")
    run.wd.write_stats(stats)
    console.print(result.format(), highlight=False, markup=False, soft_wrap=True)
    return stats
