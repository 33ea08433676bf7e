"""``harness.py final`` for the portfolio task: the allocation on the locked test split, once, recorded.

The region runs through the loop's pipeline on train+validation+test of every instrument laid end to
end (the test years warm up on earlier history), as one panel; its portfolio is scored on each split
beside the equal-weight buy and hold of the same instruments and cash. The held-out instruments, read
here and nowhere else, then form a panel of their own: the same rule on instruments it never saw,
against their own equal-weight buy and hold. Every reading is appended to ``test_readings.jsonl``.
"""

from __future__ import annotations

import json
import sys
from typing import Any

import numpy as np

from alphaloop.commands.reading import iteration_label, reading_fields, record_rejected, recorded_budget
from alphaloop.evaluate.pipeline import EvalContext, evaluate
from alphaloop.evaluate.universe import instrument_histories
from alphaloop.present.text import test_minus_validation
from alphaloop.present.ui import console, warn_read_before
from alphaloop.run.store import finite
from alphaloop.tasks.portfolio.contract import DEFAULT_MAX_GROSS
from alphaloop.tasks.portfolio.scoring import PortfolioScores
from alphaloop.tasks.portfolio.text import contributions_line, split_line

SPLITS = ("train", "val", "test")


def _say(text: str) -> None:
    console.print(text, highlight=False, markup=False, soft_wrap=True)


def verdict_line(metric: str, test: dict, val: dict) -> str:
    """Whether the pick beat the equal-weight buy and hold and cash on test, with validation's margin beside."""
    from alphaloop.tasks.portfolio.rows import bh_value

    t, bt, v, bv = test[metric], bh_value(test, metric) or 0.0, val[metric], bh_value(val, metric) or 0.0
    words = (f"beat the equal-weight buy and hold by {t - bt:.3f}" if t > bt else
             f"did not beat the equal-weight buy and hold: {bt - t:.3f} below it" if t < bt else
             "tied with the equal-weight buy and hold")
    cash = "above" if t > 0 else "not above"
    return (f"on the test split the pick {words} ({metric} {t:.3f} vs {bt:.3f}) and was {cash} cash (0); on "
            f"validation it had {v:.3f} vs {bv:.3f}")


def recorded_gross(record: Any) -> float:
    """The gross cap the loop checked this candidate with (its scores record it), else the default."""
    value = ((getattr(record, "scores", None) or {}).get("max_gross")) if record is not None else None
    return float(value) if isinstance(value, int | float) and value > 0 else DEFAULT_MAX_GROSS


def holdout_scores(region: str, held: Any, inputs: Any) -> dict | None:
    """The same rule on the held-out instruments as a panel of their own: test and validation figures."""
    if held is None or not held.instruments:
        return None
    histories = tuple(instrument_histories(held, SPLITS))
    ev = evaluate(region, EvalContext(histories=histories, sandbox=inputs.sandbox, task=inputs.task,
                                      metric=inputs.metric, cost_bps=inputs.cost_bps,
                                      max_gross=recorded_gross(inputs.record), probe_window="test",
                                      eval_timeout_s=recorded_budget(inputs.record)))
    if not ev.accepted or not isinstance(ev.scores, PortfolioScores):
        return {"instruments": len(histories), "status": "rejected", "stage": ev.stage, "reason": ev.reason}
    return {"instruments": len(histories), "status": "scored", "test": ev.scores.splits["test"],
            "val": ev.scores.splits["val"], "contributions": ev.scores.contributions["test"]}


def final_reading(inputs: Any) -> int:
    """Score the allocation on the test split once, print it beside validation and both benchmarks, then the
    held-out instruments; record the reading; print final's JSON (``test`` with ``bh_sharpe`` beside ``sharpe``)."""
    from alphaloop.present.verdict import isolation_line, stage_lines
    from alphaloop.run.records import TestReading

    wd, region, it, record, metric = inputs.wd, inputs.region, inputs.iteration, inputs.record, inputs.metric
    histories = tuple(instrument_histories(inputs.universe, SPLITS))
    before = wd.test_readings()
    first = histories[0]
    label = iteration_label(inputs)
    _say(isolation_line(inputs.sandbox))
    _say(f"final: {inputs.file} ({label}), portfolio of {len(histories)} instrument(s), metric {metric}, costs "
         f"{inputs.cost_bps:g} bp; test split {first.frame.index[first.windows['test']][0].date()}.."
         f"{first.frame.index[first.windows['test']][-1].date()}")
    warn_read_before(before, wd.root, "portfolio")
    ev = evaluate(region, EvalContext(histories=histories, sandbox=inputs.sandbox, task=inputs.task, metric=metric,
                                      cost_bps=inputs.cost_bps, max_gross=recorded_gross(record), probe_window="test",
                                      eval_timeout_s=recorded_budget(record)))
    entry = reading_fields(inputs, len(before), ev.stage, metric, inputs.cost_bps)
    for line in stage_lines(ev):
        _say(line)
    if not ev.accepted or not isinstance(ev.scores, PortfolioScores):
        return record_rejected(inputs, entry, ev)
    scores: PortfolioScores = ev.scores
    test, val = scores.splits["test"], scores.splits["val"]
    for name in ("val", "test"):
        _say(split_line(name, scores.splits[name]))
    _say(contributions_line(scores.contributions["test"], "test"))
    delta = test[metric] - val[metric]
    recorded = record.val_metric if record is not None else None
    _say(f"test {metric}: {test[metric]:.3f} | validation {metric}: {val[metric]:.3f}"
         + (f" (recorded by the loop: {recorded:.3f})" if recorded is not None else "")
         + f" | {test_minus_validation(delta, format(delta, '+.3f'))}")
    _say(verdict_line(metric, test, val))
    held = holdout_scores(region, inputs.held, inputs)
    if held is not None:
        if held["status"] == "scored":
            _say(f"held-out instruments ({held['instruments']}, a panel of their own): "
                 + split_line("test", held["test"]))
        else:
            _say(f"held-out instruments: rejected at {held['stage']}: {held['reason']}")
    from alphaloop.tasks.portfolio.rows import bh_value

    bh_test = bh_value(test, metric)
    reading = finite({
        **entry, "status": "scored", "test": test, "val_metric": val[metric], "bh_test_metric": bh_test,
        "bh_val_metric": bh_value(val, metric), "beat_bh_test": bool(test[metric] > (bh_test or 0.0)),
        "test_minus_validation": delta, "returns": np.round(scores.returns["test"], 12).tolist(),
        "bh_returns": np.round(scores.bh["test"], 12).tolist(),
        "dates": [str(d.date()) for d in scores.dates["test"]],
        "portfolio": {"val": val, "dates": [str(d.date()) for d in scores.dates["test"]],
                      "weights": np.round(scores.weights["test"], 6).tolist(),
                      "contributions": scores.contributions["test"], "holdout": [held] if held else []}})
    wd.append_reading(TestReading(**reading))
    _say(f"recorded in {wd.readings} (reading number {len(before) + 1})")
    inputs.refresh(wd)
    sys.stdout.flush()
    holdout_test = {"held-out panel": held.get("test")} if held and held.get("status") == "scored" else {}
    print(json.dumps(finite({"iteration": it, "metric": metric, "test": test, "val_metric": val[metric],
                             "bh_test_metric": bh_test, "beat_bh_test": bool(test[metric] > (bh_test or 0.0)),
                             "test_minus_validation": delta, "readings": len(before) + 1,
                             "holdout_test": holdout_test}), sort_keys=True))
    return 0
