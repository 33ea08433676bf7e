"""``harness.py final`` for the trade task: the strategy on the locked test split, once, recorded.

The candidate runs through the loop's pipeline on train+validation+test laid end to end (the test
years warm up on earlier history) on every instrument; the test split is scored beside validation
and buy and hold, then the held-out instruments (``commands.holdout``). Every reading is appended
to ``test_readings.jsonl`` whatever its outcome.
"""

from __future__ import annotations

import json
import sys

import numpy as np

from alphaloop.commands.holdout import holdout_table, instrument_test_rows, instrument_test_table, score_holdout
from alphaloop.commands.inputs import FinalInputs
from alphaloop.commands.reading import iteration_label, reading_fields, record_rejected, recorded_budget
from alphaloop.data.frozen import prices_words
from alphaloop.evaluate.pipeline import EvalContext, evaluate
from alphaloop.evaluate.universe import bh_returns as universe_bh_returns
from alphaloop.evaluate.universe import curve_dates, instrument_histories, score_universe
from alphaloop.present.names import universe_only
from alphaloop.present.text import test_minus_validation
from alphaloop.present.ui import console, warn_read_before
from alphaloop.present.verdict import format_metric, isolation_line, metrics_table, stage_lines
from alphaloop.run.records import TestReading
from alphaloop.run.store import finite


def final_reading(inputs: FinalInputs) -> int:
    """Score the strategy on the test split once (every instrument, their equal-weight portfolio beside the
    equal-weight buy and hold), then the held-out instruments; print beside validation, record the reading."""
    wd, file, region, it, record = inputs.wd, inputs.file, inputs.region, inputs.iteration, inputs.record
    metric, cost_bps, held, manifest, box = (inputs.metric, inputs.cost_bps, inputs.held, inputs.manifest,
                                             inputs.sandbox)
    workdir = wd.root
    names = inputs.universe.instruments
    histories = tuple(instrument_histories(inputs.universe, ("train", "val", "test")))
    history = histories[0]
    before = wd.test_readings()
    console.print(isolation_line(box), style="bold", markup=False, highlight=False, soft_wrap=True)
    label = iteration_label(inputs)
    console.print(f"final: {file} ({label}), metric {metric}, costs {cost_bps:g} bp; "
                  f"test split {history.frame.index[history.windows['test']][0].date()}.."
                  f"{history.frame.index[history.windows['test']][-1].date()}", highlight=False, soft_wrap=True)
    console.print(f"returns on: {prices_words(manifest, [history.frame])}", highlight=False, soft_wrap=True)
    warn_read_before(before, workdir, "strategy", list_earlier=True)
    budget = recorded_budget(record)
    # probed with cuts inside the test split before anything is reported: a leak active there only is rejected
    ev = evaluate(region, EvalContext(histories=histories, sandbox=box, task=inputs.task, metric=metric,
                                      cost_bps=cost_bps, eval_timeout_s=budget, probe_window="test"))
    entry = reading_fields(inputs, len(before), ev.stage, metric, cost_bps)
    for line in stage_lines(ev):
        console.print(line, highlight=False, markup=False, soft_wrap=True)
    if not ev.accepted or not ev.outputs:
        return record_rejected(inputs, entry, ev)
    # the equal-weight portfolio, as the loop selected on (one instrument: its own figures), each instrument beside it
    uni = score_universe(histories, ev.outputs, metric=metric, cost_bps=cost_bps, splits=("train", "val", "test"))
    scores = uni.portfolio
    longs = [np.ones(len(h.frame), dtype=np.int8) for h in histories]
    bh_all = score_universe(histories, longs, metric=metric, cost_bps=0.0, splits=("val", "test")).portfolio
    bh, bh_val = bh_all.splits["test"], bh_all.splits["val"]
    bh_test_returns = universe_bh_returns(histories, "test")
    test_dates = curve_dates(histories, "test")
    n = len(histories)
    per_instrument = universe_only(n, instrument_test_rows(names, uni.instruments), [])
    test, val = scores.splits["test"], scores.splits["val"]
    delta = test[metric] - val[metric]
    recorded = record.val_metric if record is not None else None
    scope = universe_only(n, f"equal-weight portfolio of {n} instruments, ", "")
    console.print(metrics_table(scores.splits, f"final ({label}, {scope}costs {cost_bps:g} bp)"))
    if per_instrument:
        console.print(instrument_test_table(per_instrument, cost_bps))
    console.print(f"test {metric}: {format_metric(metric, test[metric])} (buy and hold "
                  f"{format_metric(metric, bh[metric])})  |  "
                  f"validation {metric}: {format_metric(metric, val[metric])}"
                  + (f" (recorded by the loop: {format_metric(metric, recorded)})" if recorded is not None else "")
                  + f"  |  {test_minus_validation(delta, format_metric(metric, delta))}", highlight=False,
                  soft_wrap=True)
    console.print(verdict_line(metric, test[metric], bh[metric], val[metric], bh_val[metric]), highlight=False,
                  soft_wrap=True)
    held_out = score_holdout(region, held, box, metric, cost_bps) if held is not None else []
    if held_out:
        console.print(holdout_table(held_out, cost_bps))
    wd.append_reading(TestReading(**finite({
        **entry, "status": "scored", "holdout": [h.to_json() for h in held_out], "test": test,
        "val_metric": val[metric], "bh_test_metric": bh[metric],
        "bh_val_metric": bh_val[metric], "beat_bh_test": bool(test[metric] > bh[metric]),
        "test_minus_validation": delta,
        "returns": np.round(scores.returns["test"], 12).tolist(),
        "bh_returns": np.round(bh_test_returns, 12).tolist(),
        "trades": scores.trips().get("test"), "instruments": per_instrument or None,  # a portfolio has no trips
        "dates": [str(d.date()) for d in test_dates]})))
    console.print(f"recorded in {wd.readings} (reading number {len(before) + 1})", highlight=False,
                  soft_wrap=True)
    inputs.refresh(wd)
    sys.stdout.flush()
    print(json.dumps(finite({"iteration": it, "metric": metric, "test": test, "val_metric": val[metric],
                                  "bh_test_metric": bh[metric], "beat_bh_test": bool(test[metric] > bh[metric]),
                                  "test_minus_validation": delta, "readings": len(before) + 1,
                                  "holdout_test": {h.name: h.values.get("test") for h in held_out}}), sort_keys=True))
    return 0


def verdict_line(metric: str, test: float, bh_test: float, val: float, bh_val: float) -> str:
    """Whether the candidate beat buy and hold on the test split, in words, with validation's margin beside it."""
    margin = test - bh_test
    if margin > 0:
        words = f"beat buy and hold by {format_metric(metric, margin)}"
    elif margin < 0:
        words = f"did not beat buy and hold: {format_metric(metric, -margin)} below it"
    else:
        words = "tied with buy and hold"
    return (f"on the test split the candidate {words} ({metric} {format_metric(metric, test)} vs "
            f"{format_metric(metric, bh_test)}); on validation it had {format_metric(metric, val)} vs buy and hold "
            f"{format_metric(metric, bh_val)} ({format_metric(metric, val - bh_val)})")
