"""``harness.py final`` for a forecast run: the one reading of the locked test split, recorded.

The chosen forecaster runs through the same pipeline on train+validation+test laid end to end (the
test years warm up on earlier history); the buckets' cut points and the climatology stay the train
split's. The test split is scored with the validation figures beside it, Hansen's SPA tests the
forecaster against climatology on the test split alone (one forecaster: no search happens there),
and the day-by-day forecasts with outcomes, scores and grades go to ``forecasts_test.csv``.
A universe is scored like the loop scores it: every instrument runs, each bucketed by its own train
terciles, and the figures pool over all instruments' days; the CSV holds instrument 1's days.
"""

from __future__ import annotations

import json
import sys

import numpy as np

from alphaloop.commands.inputs import FinalInputs
from alphaloop.commands.reading import iteration_label, reading_fields, record_rejected, recorded_budget
from alphaloop.evaluate.pipeline import EvalContext, evaluate
from alphaloop.evaluate.scoring import History
from alphaloop.evaluate.universe import instrument_histories
from alphaloop.present.text import test_minus_validation
from alphaloop.present.ui import console, warn_read_before
from alphaloop.present.verdict import isolation_line, stage_lines
from alphaloop.run.records import TestReading
from alphaloop.run.store import finite
from alphaloop.tasks.forecast.buckets import BucketScheme
from alphaloop.tasks.forecast.daybyday import forecast_frame, to_csv
from alphaloop.tasks.forecast.pool import score_forecast_universe
from alphaloop.tasks.forecast.scores import SELECTION_METRIC
from alphaloop.tasks.forecast.stats import forecast_statistics, format_forecast_statistics
from alphaloop.tasks.forecast.text import cut_points_line, forecast_table

OLD_RUN_BUDGET_S = 180.0  # the budget for a run that did not record its --eval-timeout (written before it was kept)


def final_reading(inputs: FinalInputs) -> int:
    """The forecast task's reading of the test split, logged like a trade reading."""
    before = inputs.wd.test_readings()
    warn_read_before(before, inputs.wd.root, "forecaster")
    label = iteration_label(inputs)
    histories = tuple(instrument_histories(inputs.universe, ("train", "val", "test")))
    return final_forecast(inputs, len(before), label, histories)


def final_forecast(inputs: FinalInputs, earlier: int, label: str, histories: tuple[History, ...]) -> int:
    """Score the forecaster on the test split once (``earlier`` readings came before); print, record the
    reading, write the CSV."""
    wd, record, box = inputs.wd, inputs.record, inputs.sandbox
    history = histories[0]
    console.print(isolation_line(box), style="bold", markup=False, highlight=False, soft_wrap=True)
    test_dates = history.frame.index[history.windows["test"]]
    console.print(f"final: {inputs.file} ({label}), task forecast, metric {SELECTION_METRIC}; test split "
                  f"{test_dates[0].date()}..{test_dates[-1].date()}", highlight=False, soft_wrap=True)
    budget = recorded_budget(record, OLD_RUN_BUDGET_S)
    ev = evaluate(inputs.region, EvalContext(histories=histories, sandbox=box, task=inputs.task, eval_timeout_s=budget,
                                             probe_window="test"))
    entry = reading_fields(inputs, earlier, ev.stage, SELECTION_METRIC, None)
    for line in stage_lines(ev):
        console.print(line, highlight=False, markup=False, soft_wrap=True)
    if not ev.accepted or not ev.outputs:
        return record_rejected(inputs, entry, ev, "forecaster")
    train_close = history.frame["Close"].to_numpy(dtype=np.float64)[history.windows["train"]]
    scheme = BucketScheme.from_train(train_close)
    scores = score_forecast_universe(histories, list(ev.outputs), splits=("train", "val", "test"))
    test, val = scores.splits["test"], scores.splits["val"]
    console.print(cut_points_line(scores), highlight=False, markup=False, soft_wrap=True)
    for split in ("val", "test"):
        console.print(forecast_table(scores, split, f"final ({label}): {split} split against climatology (skill 0)"))
    stats = forecast_statistics(1, scores.clim_losses["test"], [scores.losses["test"]],
                                [test[SELECTION_METRIC]], split="test", roll_losses=scores.roll_losses.get("test"))
    console.print(format_forecast_statistics(stats), highlight=False, markup=False, soft_wrap=True)
    recorded = record.val_metric if record is not None else None
    t, v = test[SELECTION_METRIC], val[SELECTION_METRIC]
    delta = None if t is None or v is None else t - v
    rolled = test.get("rps_skill_rolling_mean")
    console.print(f"test {SELECTION_METRIC}: {t:+.4f} (climatology +0.0000; against the rolling climatology "
                  f"{'n/a' if rolled is None else format(rolled, '+.4f')})  |  validation {SELECTION_METRIC}: "
                  f"{v:+.4f}" + (f" (recorded by the loop: {recorded:+.4f})" if recorded is not None else "")
                  + (f"  |  {test_minus_validation(delta)}" if delta is not None else ""),
                  highlight=False, soft_wrap=True)
    csv_path = wd.write_forecasts("test", to_csv(forecast_frame(history.frame, ev.outputs[0], scheme,
                                                                history.windows["test"])))
    console.print(f"day-by-day test forecasts with outcomes, scores and grades: {csv_path}", highlight=False,
                  soft_wrap=True)
    wd.append_reading(TestReading(**finite({
        **entry, "status": "scored", "test": test, "val_metric": v, "benchmark": "climatology",
        "climatology_test_metric": 0.0, "climatology_val_metric": 0.0,
        "beat_climatology_test": bool(t is not None and t > 0), "test_minus_validation": delta,
        "spa_test": {"climatology": stats["spa_pvalues"], "rolling_climatology": stats.get("spa_rolling_pvalues")}})))
    console.print(f"recorded in {wd.readings} (reading number {earlier + 1})", highlight=False, soft_wrap=True)
    inputs.refresh(wd)
    sys.stdout.flush()
    print(json.dumps(finite({"iteration": entry["iteration"], "metric": SELECTION_METRIC, "test": test,
                             "val_metric": v, "climatology_test_metric": 0.0, "beat_climatology_test": bool(
                                 t is not None and t > 0), "test_minus_validation": delta,
                             "spa_test": stats["spa_pvalues"], "readings": earlier + 1}), sort_keys=True))
    return 0
