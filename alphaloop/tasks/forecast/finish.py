"""The end of a forecast run: Hansen's SPA of every scored forecaster against climatology (validation),
and the best forecaster's day-by-day validation forecasts for the report. Train and validation only."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from alphaloop.evaluate.pipeline import EvalContext, evaluate
from alphaloop.evaluate.scoring import History
from alphaloop.present.ui import console
from alphaloop.run.workdir import Workdir
from alphaloop.tasks.forecast.buckets import BucketScheme
from alphaloop.tasks.forecast.daybyday import forecast_frame, to_csv
from alphaloop.tasks.forecast.evidence import CLIM_LOSS_KEY, LOSS_KEY, ROLL_LOSS_KEY
from alphaloop.tasks.forecast.stats import forecast_statistics, format_forecast_statistics

if TYPE_CHECKING:
    from alphaloop.tasks.protocol import Task


def write_forecast_statistics(wd: Workdir, trials: int, best_iteration: int | None, seed: int) -> dict | None:
    """SPA of the accepted forecasters' daily validation RPS against climatology's, over ``trials`` tried."""
    scored = [r for r in wd.records() if r.accepted and r.returns and LOSS_KEY in r.returns]
    if best_iteration is None or not scored:
        console.print("statistics: no accepted forecaster yet; nothing to test")
        return None
    clim = np.asarray(scored[0].returns[CLIM_LOSS_KEY], dtype=np.float64)
    same = [r for r in scored if len(r.returns[LOSS_KEY]) == clim.size]
    roll = scored[0].returns.get(ROLL_LOSS_KEY)
    stats = forecast_statistics(trials, clim, [np.asarray(r.returns[LOSS_KEY]) for r in same],
                                [r.val_metric for r in same], split="val", seed=seed,
                                roll_losses=np.asarray(roll, dtype=np.float64) if roll else None)
    stats["best_iteration"] = best_iteration
    best = next((r for r in scored if r.iteration == best_iteration), None)
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
