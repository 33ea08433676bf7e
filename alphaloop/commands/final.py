"""``python harness.py final [--iter N]``: the one reading of the locked test split, recorded.

This is the only code path in alphaloop that reads a test split or a held-out instrument
(``load_test_universe``, ``load_holdout``). The chosen candidate
(``best_trade.py`` or ``iter_N_trade.py``) goes through the same pipeline as in the loop, on
train+validation+test laid end to end so the test years warm up on earlier history, and is
scored on each split. Every reading is appended to ``test_readings.jsonl``: a test split read
many times is a validation split, and the record says how many times it was.
"""

from __future__ import annotations

from pathlib import Path

from alphaloop.candidate import RegionError, extract_region
from alphaloop.commands.check import usage_error
from alphaloop.commands.inputs import FinalInputs
from alphaloop.data.frozen import (
    DataError,
    load_holdout,
    load_test_universe,
    read_manifest,
)
from alphaloop.evaluate.backtest import DEFAULT_COST_BPS
from alphaloop.evaluate.sandboxed import open_sandbox
from alphaloop.evaluate.scoring import DEFAULT_METRIC
from alphaloop.present.ui import console
from alphaloop.run.morning import refresh_morning
from alphaloop.run.records import IterationRecord, RecordError
from alphaloop.run.workdir import Workdir
from alphaloop.tasks import DEFAULT_TASK, Task, UnknownTask, get_task
from sandbox.runner import Sandbox


def run_final(workdir: Path, data_dir: Path, iteration: int | None = None, cost_bps: float | None = None,
              sandbox: Sandbox | None = None) -> int:
    """Score the chosen candidate on the test split once, print it beside validation, record it."""
    wd, data_dir = Workdir(workdir), Path(data_dir)
    file = wd.best_trade if iteration is None else wd.trade(iteration)
    if iteration is not None and not file.is_file():
        wd.unpack(iteration)  # a rejected candidate packed under packs/: its files come back beside the others
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
    if cost_bps is None:  # the costs the loop scored this candidate with, so the comparison is like for like
        cost_bps = float(record.cost_bps) if record is not None and record.cost_bps is not None else DEFAULT_COST_BPS
    try:
        manifest = read_manifest(data_dir)
        universe = load_test_universe(data_dir)
        held = load_holdout(data_dir)  # read here and nowhere else, once per reading, like the test split
    except DataError as exc:
        return usage_error(str(exc))
    try:
        task = get_task(_task_name(wd, record))
    except UnknownTask as exc:  # a workdir a later alphaloop wrote, for a task this one does not have
        return usage_error(f"{wd.root}/: {exc}")
    metric = record.metric if record is not None and record.metric in task.metrics else DEFAULT_METRIC

    def reading(box: Sandbox) -> int:
        return task.final(FinalInputs(wd=wd, data_dir=data_dir, file=file, raw=raw, region=region, iteration=it,
                                      record=record, metric=metric, cost_bps=cost_bps, universe=universe, held=held,
                                      manifest=manifest, sandbox=box, task=task,
                                      refresh=lambda w: _refresh(w, data_dir, task)))

    if sandbox is None:
        with open_sandbox() as box:
            return reading(box)
    return reading(sandbox)


def _task_name(wd: Workdir, record: IterationRecord | None) -> str:
    """The task that wrote the candidate: its record says (files from before the field: its metric does),
    else state.json; a run folder with neither is the trade task's."""
    if record is not None:
        return record.task
    try:
        return wd.read_state().task if wd.has_run() else DEFAULT_TASK
    except (OSError, ValueError):
        return DEFAULT_TASK


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


def _refresh(wd: Workdir, data_dir: Path, task: Task) -> None:
    """After a reading: the morning verdict, then the report, both showing it."""
    refresh_morning(wd, task)
    refresh_report(wd, data_dir)
