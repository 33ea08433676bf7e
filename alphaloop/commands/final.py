"""``python harness.py final [--iter N]``: the one reading of the locked test split, recorded.

This is the only code path in alphaloop that reads a test split or a held-out instrument
(``load_test_universe``, ``load_holdout``). The chosen candidate
(``best_trade.py`` or ``iter_N_trade.py``) goes through the same pipeline as in the loop, on
train+validation+test laid end to end so the test years warm up on earlier history, and is
scored on each split. Every reading is appended to ``test_readings.jsonl``: a test split read
many times is a validation split, and the record says how many times it was.
"""

from __future__ import annotations

import hashlib
import json
import sys
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from alphaloop.candidate import RegionError, extract_region
from alphaloop.commands.check import format_metric, isolation_line, stage_lines, usage_error
from alphaloop.commands.holdout import holdout_table, instrument_test_rows, instrument_test_table, score_holdout
from alphaloop.commands.tradefile import metrics_table
from alphaloop.data.frozen import (
    DataError,
    Universe,
    load_holdout,
    load_test_universe,
    manifest_digest,
    prices_words,
    read_manifest,
)
from alphaloop.evaluate.backtest import DEFAULT_COST_BPS
from alphaloop.evaluate.pipeline import DEFAULT_EVAL_TIMEOUT_S, EvalContext, evaluate
from alphaloop.evaluate.sandboxed import open_sandbox
from alphaloop.evaluate.scoring import DEFAULT_METRIC, SELECTION_METRICS, History, score, score_window
from alphaloop.evaluate.stats import split_bh_returns
from alphaloop.evaluate.universe import bh_returns as universe_bh_returns
from alphaloop.evaluate.universe import curve_dates, instrument_histories, score_universe
from alphaloop.present.text import test_minus_validation
from alphaloop.present.ui import console, warn_loudly
from alphaloop.run.morning import refresh_morning
from alphaloop.run.records import IterationRecord, RecordError, TestReading
from alphaloop.run.store import finite
from alphaloop.run.workdir import Workdir
from alphaloop.tasks.forecast.final import final_forecast, is_forecast_run
from sandbox.runner import Sandbox


def run_final(workdir: Path, data_dir: Path, iteration: int | None = None, cost_bps: float | None = None,
              sandbox: Sandbox | None = None) -> int:
    """Score the chosen candidate on the test split once, print it beside validation, record it."""
    wd, data_dir = Workdir(workdir), Path(data_dir)
    file = wd.best_trade if iteration is None else wd.trade(iteration)
    if not file.is_file():
        hint = "; has the loop accepted a candidate yet?" if iteration is None else ""
        return usage_error(f"{file}: no such file{hint}")
    if cost_bps is not None and cost_bps < 0:
        return usage_error("--cost-bps must be >= 0")
    raw = file.read_bytes()
    try:
        region = extract_region(raw.decode("utf-8"))
    except (RegionError, UnicodeDecodeError) as exc:
        return usage_error(f"{file}: {exc}")
    it = iteration if iteration is not None else wd.find_iteration(region)
    try:
        record = wd.record_or_none(it)
    except (OSError, RecordError):  # a damaged record only loses the loop's figure beside the test's
        record = None
    metric = record.metric if record is not None and record.metric in SELECTION_METRICS else DEFAULT_METRIC
    if cost_bps is None:  # the costs the loop scored this candidate with, so the comparison is like for like
        cost_bps = float(record.cost_bps) if record is not None and record.cost_bps is not None else DEFAULT_COST_BPS
    try:
        manifest = read_manifest(data_dir)
        universe = load_test_universe(data_dir)
        held = load_holdout(data_dir)  # read here and nowhere else, once per reading, like the test split
    except DataError as exc:
        return usage_error(str(exc))
    history = History.from_splits(universe.splits[universe.instruments[0]], universe.periods_per_year)
    if is_forecast_run(wd, record):
        histories = tuple(History.from_splits(universe.splits[name], universe.periods_per_year)
                          for name in universe.instruments)
        return _final_forecast(wd, data_dir, file, raw, region, it, record, histories, manifest, sandbox)
    if sandbox is None:
        with open_sandbox() as box:
            return _final(wd, data_dir, file, raw, region, it, record, metric, history, manifest, box, cost_bps, held,
                          universe)
    return _final(wd, data_dir, file, raw, region, it, record, metric, history, manifest, sandbox, cost_bps, held,
                  universe)


def _final(wd: Workdir, data_dir: Path, file: Path, raw: bytes, region: str, it: int | None,
           record: IterationRecord | None, metric: str, history: History, manifest: dict, box: Sandbox,
           cost_bps: float, held: Universe | None = None, universe: Universe | None = None) -> int:
    workdir = wd.root
    names = universe.instruments if universe is not None else ()
    histories = tuple(instrument_histories(universe, ("train", "val", "test"))) if len(names) > 1 else ()
    before = wd.test_readings()
    console.print(isolation_line(box), style="bold", markup=False, highlight=False, soft_wrap=True)
    label = f"iteration {it}" if it is not None else "iteration unknown"
    console.print(f"final: {file} ({label}), metric {metric}, costs {cost_bps:g} bp; "
                  f"test split {history.frame.index[history.windows['test']][0].date()}.."
                  f"{history.frame.index[history.windows['test']][-1].date()}", highlight=False, soft_wrap=True)
    console.print(f"returns on: {prices_words(manifest, [history.frame])}", highlight=False, soft_wrap=True)
    if before:
        warn_loudly("THE TEST SPLIT HAS BEEN READ BEFORE",
                    f"This is reading number {len(before) + 1} of the test split in {workdir}.\n"
                    "Earlier readings: " + "; ".join(f"{r.time} iteration {r.iteration}" for r in before) + ".\n"
                    "Each reading used to choose or change a strategy turns the test split into one more "
                    "validation split;\nthe figures below are no longer an unbiased estimate.")
    budget = record.eval_timeout_s if record is not None and record.eval_timeout_s else DEFAULT_EVAL_TIMEOUT_S
    # probed with cuts inside the test split before anything is reported: a leak active there only is rejected
    ev = evaluate(region, EvalContext(history=history, sandbox=box, metric=metric, cost_bps=cost_bps,
                                      universe=histories, eval_timeout_s=budget, probe_window="test"))
    entry = {"time": datetime.now(UTC).isoformat(timespec="seconds"), "iteration": it,
             "file": str(file), "sha256": hashlib.sha256(raw).hexdigest(), "metric": metric, "cost_bps": cost_bps,
             "data_digest": manifest_digest(manifest), "earlier_readings": len(before), "stage": ev.stage}
    for line in stage_lines(ev):
        console.print(line, highlight=False, markup=False, soft_wrap=True)
    if not ev.accepted or ev.signals is None:
        wd.append_reading(TestReading(**entry, status="rejected", reason=ev.reason))
        console.print(f"[bold red]final: the candidate was rejected at {ev.stage}; no test figures shown[/]")
        refresh_morning(wd)
        refresh_report(wd, data_dir)
        return 1
    per_instrument: list[dict] = []
    if histories:  # a universe: the equal-weight portfolio, as the loop selected on, and each instrument beside it
        uni = score_universe(histories, ev.instrument_signals, metric=metric, cost_bps=cost_bps,
                             splits=("train", "val", "test"))
        scores = uni.portfolio
        longs = [np.ones(len(h.frame), dtype=np.int8) for h in histories]
        bh_all = score_universe(histories, longs, metric=metric, cost_bps=0.0, splits=("val", "test")).portfolio
        bh, bh_val = bh_all.splits["test"], bh_all.splits["val"]
        bh_test_returns = universe_bh_returns(histories, "test")
        test_dates = curve_dates(histories, "test")
        per_instrument = instrument_test_rows(names, uni.instruments)
    else:
        scores = score(history, ev.signals, metric=metric, cost_bps=cost_bps, splits=("train", "val", "test"))
        always_long = np.ones(len(history.frame), dtype=np.int8)
        bh = score_window(history, always_long, history.windows["test"], 0.0).metrics
        bh_val = score_window(history, always_long, history.windows["val"], 0.0).metrics
        bh_test_returns = split_bh_returns(history, "test")
        test_dates = history.frame.index[history.windows["test"]]
    test, val = scores.splits["test"], scores.splits["val"]
    degradation = test[metric] - val[metric]
    recorded = record.val_metric if record is not None else None
    scope = f"equal-weight portfolio of {len(names)} instruments, " if histories else ""
    console.print(metrics_table(scores.splits, f"final ({label}, {scope}costs {cost_bps:g} bp)"))
    if per_instrument:
        console.print(instrument_test_table(per_instrument, cost_bps))
    console.print(f"test {metric}: {format_metric(metric, test[metric])} (buy and hold "
                  f"{format_metric(metric, bh[metric])})  |  "
                  f"validation {metric}: {format_metric(metric, val[metric])}"
                  + (f" (recorded by the loop: {format_metric(metric, recorded)})" if recorded is not None else "")
                  + f"  |  {test_minus_validation(degradation, format_metric(metric, degradation))}", highlight=False,
                  soft_wrap=True)
    console.print(verdict_line(metric, test[metric], bh[metric], val[metric], bh_val[metric]), highlight=False,
                  soft_wrap=True)
    held_out = score_holdout(region, held, box, metric, cost_bps) if held is not None else []
    if held_out:
        console.print(holdout_table(held_out, cost_bps))
    wd.append_reading(TestReading(**finite({
        **entry, "status": "scored", "holdout": [h.to_json() for h in held_out], "test": test,
        "val_metric": val[metric], "bh_test_metric": bh[metric],
        "bh_val_metric": bh_val[metric], "beat_bh_test": bool(test[metric] > bh[metric]), "degradation": degradation,
        "returns": np.round(scores.returns["test"], 12).tolist(),
        "bh_returns": np.round(bh_test_returns, 12).tolist(),
        "trades": scores.trips()["test"] if not histories else None, "instruments": per_instrument or None,
        "dates": [str(d.date()) for d in test_dates]})))
    console.print(f"recorded in {wd.readings} (reading number {len(before) + 1})", highlight=False,
                  soft_wrap=True)
    refresh_morning(wd)
    refresh_report(wd, data_dir)
    sys.stdout.flush()
    print(json.dumps(finite({"iteration": it, "metric": metric, "test": test, "val_metric": val[metric],
                                  "bh_test_metric": bh[metric], "beat_bh_test": bool(test[metric] > bh[metric]),
                                  "degradation": degradation, "readings": len(before) + 1,
                                  "holdout_test": {h.name: h.values.get("test") for h in held_out}}), sort_keys=True))
    return 0


def _final_forecast(wd: Workdir, data_dir: Path, file: Path, raw: bytes, region: str, it: int | None,
                    record: IterationRecord | None, histories: tuple[History, ...], manifest: dict,
                    sandbox: Sandbox | None) -> int:
    """The forecast task's reading of the test split (``tasks.forecast.final``), logged like a trade reading."""
    before = wd.test_readings()
    if before:
        warn_loudly("THE TEST SPLIT HAS BEEN READ BEFORE",
                    f"This is reading number {len(before) + 1} of the test split in {wd.root}.\n"
                    "Each reading used to choose or change a forecaster turns the test split into one more "
                    "validation split;\nthe figures below are no longer an unbiased estimate.")
    entry = {"time": datetime.now(UTC).isoformat(timespec="seconds"), "iteration": it, "file": str(file),
             "sha256": hashlib.sha256(raw).hexdigest(), "data_digest": manifest_digest(manifest),
             "earlier_readings": len(before)}
    label = f"iteration {it}" if it is not None else "iteration unknown"

    def refresh(w: Workdir) -> None:
        refresh_morning(w)
        refresh_report(w, data_dir)

    if sandbox is None:
        with open_sandbox() as box:
            return final_forecast(wd, entry, region, label, record, histories, box, refresh)
    return final_forecast(wd, entry, region, label, record, histories, sandbox, refresh)


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


def refresh_report(wd: Workdir, data_dir: Path) -> None:
    """Rewrite the report so it shows this reading; a run folder without a run stays without one."""
    if not wd.has_run():
        return
    from alphaloop.present.report import write_report  # matplotlib loads only when a report is written

    try:
        console.print(f"report: {write_report(wd.root, data_dir)} (refreshed with this reading)", highlight=False,
                      soft_wrap=True)
    except Exception as exc:  # the reading is recorded; a report that fails must not hide the figures above
        console.print(f"warning: {wd.report.name} was not refreshed: {type(exc).__name__}: {exc}; "
                      f"run `python harness.py report`", highlight=False, soft_wrap=True)
