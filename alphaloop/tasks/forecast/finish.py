"""The end of a forecast run: Hansen's SPA of every scored forecaster against climatology (validation),
and the best forecaster's day-by-day validation forecasts for the report. Train and validation only."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from alphaloop.evaluate.columns import SpaColumns
from alphaloop.evaluate.pipeline import EvalContext, evaluate
from alphaloop.evaluate.scoring import History
from alphaloop.present.ui import console
from alphaloop.run.trials import accepted_with_returns, run_trials, stream_series
from alphaloop.run.workdir import Workdir
from alphaloop.tasks.forecast.buckets import BucketScheme
from alphaloop.tasks.forecast.daybyday import forecast_frame, to_csv
from alphaloop.tasks.forecast.evidence import CLIM_LOSS_KEY, LOSS_KEY, ROLL_LOSS_KEY
from alphaloop.tasks.forecast.stats import forecast_statistics, format_forecast_statistics

if TYPE_CHECKING:
    from alphaloop.tasks.protocol import Task


def write_forecast_statistics(wd: Workdir, trials: int, best_iteration: int | None, seed: int) -> dict | None:
    """SPA of the accepted forecasters' daily validation RPS against climatology's, over ``trials`` tried.

    Reads the index, then each accepted forecaster's daily losses one at a time (``run.trials``): SPA keeps
    each distinct series once and at most ``SPA_CAP`` of them, those with the lowest mean loss, so memory
    stays bounded however long the night (docs/bench.md "End-of-run statistics at scale")."""
    entries = run_trials(wd)
    accepted = accepted_with_returns(wd, entries)
    if best_iteration is None or not accepted:
        console.print("statistics: no accepted forecaster yet; nothing to test")
        return None
    skill = {t.iteration: t.metric for t in entries}
    kept, skills, streamed = SpaColumns(), [], set()
    clim = roll = None
    for n, loss in stream_series(wd, accepted, LOSS_KEY):
        if clim is None:  # the benchmarks' losses are the same in every record: the first one's
            clim, roll = wd.split_returns(n, CLIM_LOSS_KEY), wd.split_returns(n, ROLL_LOSS_KEY)
        streamed.add(n)
        if loss.size == clim.size:
            kept.add(loss, rank=-float(loss.mean()))  # the lowest losses rank highest
            skills.append(skill.get(n))
    if clim is None:
        console.print("statistics: no accepted forecaster yet; nothing to test")
        return None
    stats = forecast_statistics(trials, clim, kept.series(), skills, split="val", seed=seed,
                                roll_losses=roll if roll is not None and roll.size else None,
                                scored=kept.candidates)
    stats["best_iteration"] = best_iteration
    best = wd.record(best_iteration, returns=False) if best_iteration in streamed else None
    train = (best.split("train") or {}).get("rps_skill_mean") if best is not None else None
    if isinstance(train, int | float) and train < 0:
        stats["warning_train"] = (f"the best forecaster (iter {best_iteration}) is below climatology on the train "
                                  f"split (rps_skill_mean {train:+.4f}): its validation skill is probably luck")
    wd.write_forecast_stats(stats)
    console.print(format_forecast_statistics(stats), highlight=False, markup=False, soft_wrap=True)
    if stats.get("warning_train"):
        console.print(f"[yellow]warning:[/] {stats['warning_train']}", highlight=False, soft_wrap=True)
    return stats


def write_validation_forecasts(wd: Workdir, history: History, iteration: int, sandbox: object, task: Task) -> str:
    """Rerun the best forecaster on train+validation of the first instrument (never the test split) and write
    its validation days."""
    record = wd.record_or_none(iteration)
    budget = record.eval_timeout_s if record is not None and record.eval_timeout_s else 120.0  # the run's own
    ev = evaluate(wd.region(iteration), EvalContext(histories=(history,), sandbox=sandbox, task=task,
                                                    eval_timeout_s=budget))
    if not ev.accepted or not ev.outputs:
        return f"forecasts of iter {iteration} not written: {ev.stage}: {ev.reason}"
    train_close = history.frame["Close"].to_numpy(dtype=np.float64)[history.windows["train"]]
    scheme = BucketScheme.from_train(train_close)
    path = wd.write_forecasts("val", to_csv(forecast_frame(history.frame, ev.outputs[0], scheme,
                                                           history.windows["val"])))
    return f"day-by-day validation forecasts of iter {iteration}: {path}"
