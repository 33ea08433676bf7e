"""``python harness.py check FILE``: judge one candidate exactly as the loop would.

FILE is a full trade.py-style file (only its marked region is used) or a bare region. The
candidate goes through ``pipeline.evaluate`` on train and validation; the test split is never
read. Output: the sandbox's isolation first, each stage's outcome, the metrics per split with
the walk-forward spread beside validation, and as the very last line one JSON object.
Exit status: 0 accepted, 1 rejected, 2 usage error.
"""

from __future__ import annotations

import dataclasses
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from alphaloop.candidate import RegionError, extract_region, region_origins, renumber
from alphaloop.data.frozen import DataError, bars_line, load_universe, manifest_digest, read_manifest, universe_line
from alphaloop.evaluate.backtest import DEFAULT_COST_BPS
from alphaloop.evaluate.pipeline import DEFAULT_EVAL_TIMEOUT_S, EvalContext, evaluate
from alphaloop.evaluate.scoring import DEFAULT_FOLDS, DEFAULT_METRIC
from alphaloop.evaluate.universe import instrument_histories
from alphaloop.present.text import rich, safe
from alphaloop.present.ui import console
from alphaloop.present.verdict import format_metric, isolation_line, spread_line, stage_lines, usage_error
from alphaloop.tasks import DEFAULT_TASK, TASKS, get_task

if TYPE_CHECKING:
    from sandbox.runner import Sandbox

__all__ = ["format_metric", "isolation_line", "run_check", "spread_line", "stage_lines", "usage_error"]


def run_check(file: Path, data_dir: Path, metric: str = DEFAULT_METRIC, folds: int = DEFAULT_FOLDS,
              cost_bps: float = DEFAULT_COST_BPS, sandbox: Sandbox | None = None,
              eval_timeout_s: float = DEFAULT_EVAL_TIMEOUT_S, task: str = DEFAULT_TASK, max_gross: float = 1.0) -> int:
    """Evaluate FILE's region on train and validation; 0 accepted, 1 rejected, 2 usage error.

    ``task`` names the plug-in that judges it (``alphaloop.tasks.TASKS``): a forecaster's verdict holds
    ``ForecastScores.to_json()`` and ``metric`` and ``cost_bps`` do not apply to it.
    """
    file, data_dir = Path(file), Path(data_dir)
    if task not in TASKS:
        return usage_error(f"unknown task {task!r}; choose from {', '.join(TASKS)}")
    if metric not in TASKS[task].metrics:
        return usage_error(f"unknown metric {metric!r} for --task {task}; choose from "
                           f"{', '.join(TASKS[task].metrics)}")
    if folds < 1 or cost_bps < 0 or not eval_timeout_s > 0 or not max_gross > 0:
        return usage_error("--folds must be >= 1, --cost-bps >= 0, --eval-timeout > 0 and --max-gross > 0")
    if not file.is_file():
        return usage_error(f"{file}: no such file")
    try:
        source = file.read_text(encoding="utf-8")
        region = extract_region(source)
    except (RegionError, UnicodeDecodeError) as exc:
        return usage_error(f"{file}: {exc}")
    try:
        manifest = read_manifest(data_dir)
        universe = load_universe(data_dir)
        histories = tuple(instrument_histories(universe))  # judged on every instrument, as the loop does
    except DataError as exc:
        return usage_error(str(exc))
    plug = get_task(task)
    ctx = EvalContext(histories=histories, sandbox=sandbox, task=plug, metric=plug.selection_metric(metric),
                      folds=folds, cost_bps=cost_bps, eval_timeout_s=eval_timeout_s, max_gross=max_gross)
    note = "\n".join([universe_line(universe), *plug.check_notes(histories)])
    if sandbox is None:
        from alphaloop.evaluate.sandboxed import open_sandbox

        box = open_sandbox(tasks=(plug.name,))  # one driver to build and warm before the zygote forks
        try:
            return _check(file, region, manifest, dataclasses.replace(ctx, sandbox=box), note)
        finally:
            box.close(wait=False)  # a one-shot command: the killed worker's exit need not hold up ours
    return _check(file, region, manifest, ctx, note)


def _check(file: Path, region: str, manifest: dict, ctx: EvalContext, universe_note: str = "") -> int:
    task, history = ctx.task, ctx.histories[0]
    console.print(isolation_line(ctx.sandbox), style="bold", markup=False, highlight=False, soft_wrap=True)
    if universe_note:
        console.print(universe_note, highlight=False, markup=False, soft_wrap=True)
    windows = {name: history.frame.index[w] for name, w in history.windows.items()}
    console.print(f"candidate: {rich(file)} ({len(region.splitlines())} lines in the region)", highlight=False,
                  soft_wrap=True)
    console.print(f"data: {rich(manifest.get('ticker', '?'))} (digest {manifest_digest(manifest)}); "
                  + "; ".join(f"{n} {w[0].date()}..{w[-1].date()}" for n, w in windows.items())
                  + f"; test split not read; {task.settings_text(ctx.metric, ctx.cost_bps)}", highlight=False,
                  soft_wrap=True)
    for line in task.data_notes(ctx.histories, manifest):
        console.print(line, highlight=False, soft_wrap=True)
    if (line := bars_line(manifest)) is not None:
        console.print(line, highlight=False, soft_wrap=True)
    ev = evaluate(region, ctx)
    ev.reason = renumber(ev.reason, region_origins(file.read_text(encoding="utf-8"), region))  # the file's lines
    console.print("stages:")
    for line in stage_lines(ev):
        console.print(line, highlight=False, markup=False, soft_wrap=True)
    for item in task.scores_lines(ev, ctx.cost_bps):
        console.print(item, **({"highlight": False, "soft_wrap": True} if isinstance(item, str) else {}))
    console.print(f"[bold]{'ACCEPTED' if ev.accepted else 'REJECTED at ' + rich(ev.stage)}[/]")
    sys.stdout.flush()
    verdict = ev.check_json()
    verdict.update(task.check_json(ev, ctx.histories))
    verdict["reason"] = safe(verdict["reason"])  # JSON escapes controls already; this keeps the text readable too
    print(json.dumps(verdict, sort_keys=True, allow_nan=False))
    return 0 if ev.accepted else 1
