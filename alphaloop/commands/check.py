"""``python harness.py check FILE``: judge one candidate exactly as the loop would.

FILE is a full trade.py-style file (only its marked region is used) or a bare region. The
candidate goes through ``pipeline.evaluate`` on train and validation; the test split is never
read. Output: the sandbox's isolation first, each stage's outcome, the metrics per split with
the walk-forward spread beside validation, and as the very last line one JSON object.
Exit status: 0 accepted, 1 rejected, 2 usage error.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from alphaloop.candidate import RegionError, extract_region, region_origins, renumber
from alphaloop.commands.tradefile import metrics_table
from alphaloop.data.frozen import (
    DataError,
    bars_line,
    load_universe,
    manifest_digest,
    prices_words,
    read_manifest,
    universe_line,
)
from alphaloop.evaluate.backtest import DEFAULT_COST_BPS
from alphaloop.evaluate.pipeline import DEFAULT_EVAL_TIMEOUT_S, STAGES, EvalContext, Evaluation, evaluate
from alphaloop.evaluate.scoring import DEFAULT_FOLDS, DEFAULT_METRIC, SELECTION_METRICS, History, Scores
from alphaloop.evaluate.universe import instrument_histories
from alphaloop.present.text import flat, fmt, rich, safe
from alphaloop.present.ui import console
from alphaloop.run.store import finite
from alphaloop.tasks.forecast.scores import ForecastScores
from alphaloop.tasks.forecast.text import cut_points_line, forecast_table, selection_line

if TYPE_CHECKING:
    from sandbox.runner import Sandbox

TASKS = ("trade", "forecast")


def isolation_line(box: Sandbox) -> str:
    """The sandbox's own account of its layers (and of any missing one), said first."""
    text = box.describe()
    return text if text.startswith("isolation:") else f"isolation: {' + '.join(box.layers) or 'NONE'} ({text})"


def format_metric(metric: str, value: float) -> str:
    """Returns as signed percentages, ratios to 3 decimals (the figures ``check`` and ``final`` print)."""
    return fmt(value, 2, pct=True, sign=True) if metric in ("total_return", "cagr") else fmt(value, 3)


def spread_line(scores: Scores) -> str:
    """Validation's selection value with the walk-forward spread beside it."""
    m = scores.metric
    line = f"selection: validation {m} {format_metric(m, scores.selection)}"
    bh = scores.splits["val"].get(f"bh_{m}")
    if bh is not None:
        line += f" (buy and hold {format_metric(m, bh)})"
    spread = scores.fold_spread()
    if spread:
        line += (f"  |  walk-forward {len(scores.folds)} folds of train (sub-periods, not re-fitted): min "
                 f"{format_metric(m, spread['min'])}, median {format_metric(m, spread['median'])}, "
                 f"max {format_metric(m, spread['max'])}")
    return line


def stage_lines(ev: Evaluation) -> list[str]:
    """One line a stage of ``pipeline.STAGES``, in their order: ok, rejected with the reason, or not reached.

    The reason may quote the candidate (an exception message, a name), so it is flattened to one
    safe line: it can never print a line of its own, such as a forged verdict.
    """
    lines, reached = [], True
    for stage in STAGES:
        seconds = ev.timings.get(stage, 0.0)
        if not reached:
            lines.append(f"  {stage:<10} not reached")
        elif stage == "guards" and ev.details.get("guards", {}).get("applied") is False:
            lines.append(f"  {stage:<10} not applied ({ev.details['guards']['why']})")
        elif stage == ev.stage:
            lines.append(f"  {stage:<10} REJECTED ({seconds:.2f} s): {flat(ev.reason)}")
            reached = False
        else:
            extra = ""
            if stage == "lookahead":
                info = ev.details.get("lookahead", {})
                per = info.get("instruments") or [info]  # a universe: every instrument's probes
                extra = (f", {sum(len(i.get('probes', [])) for i in per)} probes + "
                         f"{sum(len(i.get('invariance', [])) for i in per)} invariance probes"
                         + (f" over {len(per)} instruments" if len(per) > 1 else ""))
            lines.append(f"  {stage:<10} ok ({seconds:.2f} s{extra})")
    return lines


def usage_error(message: str) -> int:
    print(f"error: {flat(message)}", file=sys.stderr)
    return 2


def run_check(file: Path, data_dir: Path, metric: str = DEFAULT_METRIC, folds: int = DEFAULT_FOLDS,
              cost_bps: float = DEFAULT_COST_BPS, sandbox: Sandbox | None = None,
              eval_timeout_s: float = DEFAULT_EVAL_TIMEOUT_S, task: str = "trade") -> int:
    """Evaluate FILE's region on train and validation; 0 accepted, 1 rejected, 2 usage error.

    ``task="forecast"`` judges a forecaster (``generate_features`` + ``forecast``): the verdict's
    metrics are ``ForecastScores.to_json()`` and ``metric`` and ``cost_bps`` do not apply.
    """
    file, data_dir = Path(file), Path(data_dir)
    if task not in TASKS:
        return usage_error(f"unknown task {task!r}; choose from {', '.join(TASKS)}")
    if metric not in SELECTION_METRICS:
        return usage_error(f"unknown metric {metric!r}; choose from {', '.join(SELECTION_METRICS)}")
    if folds < 1 or cost_bps < 0 or not eval_timeout_s > 0:
        return usage_error("--folds must be >= 1, --cost-bps >= 0 and --eval-timeout > 0")
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
        histories = instrument_histories(universe)  # several instruments: judged on all of them, as the loop does
    except DataError as exc:
        return usage_error(str(exc))
    note = universe_line(universe)
    if len(histories) > 1 and task == "trade":
        note += ("\nscoring: the region runs on every instrument and is ranked by their equal-weight portfolio "
                 "(the figures below are the portfolio's; reasons name instruments by number)")
    elif len(histories) > 1:
        note += ("\nscoring: the forecaster runs on every instrument, each bucketed by its own train terciles, and "
                 "its scores pool over all instruments' days (reasons name instruments by number)")
    if sandbox is None:
        from alphaloop.evaluate.sandboxed import open_sandbox

        with open_sandbox() as box:
            return _check(file, region, histories[0], manifest, box, metric, folds, cost_bps, eval_timeout_s, task,
                          note, histories)
    return _check(file, region, histories[0], manifest, sandbox, metric, folds, cost_bps, eval_timeout_s, task,
                  note, histories)


def _check(file: Path, region: str, history: History, manifest: dict, box: Sandbox, metric: str, folds: int,
           cost_bps: float, eval_timeout_s: float = DEFAULT_EVAL_TIMEOUT_S, task: str = "trade",
           universe_note: str = "", histories: list[History] | None = None) -> int:
    console.print(isolation_line(box), style="bold", markup=False, highlight=False, soft_wrap=True)
    if universe_note:
        console.print(universe_note, highlight=False, markup=False, soft_wrap=True)
    windows = {name: history.frame.index[w] for name, w in history.windows.items()}
    console.print(f"candidate: {rich(file)} ({len(region.splitlines())} lines in the region)", highlight=False,
                  soft_wrap=True)
    console.print(f"data: {rich(manifest.get('ticker', '?'))} (digest {manifest_digest(manifest)}); "
                  + "; ".join(f"{n} {w[0].date()}..{w[-1].date()}" for n, w in windows.items())
                  + ("; test split not read; task forecast, metric rps_skill_mean" if task == "forecast" else
                     f"; test split not read; metric {metric}, costs {cost_bps:g} bp"), highlight=False, soft_wrap=True)
    if task != "forecast":
        frames = [h.frame for h in histories] if histories else [history.frame]
        console.print(f"returns on: {prices_words(manifest, frames)}", highlight=False, soft_wrap=True)
    if (line := bars_line(manifest)) is not None:
        console.print(line, highlight=False, soft_wrap=True)
    many = tuple(histories) if histories and len(histories) > 1 else ()
    ev = evaluate(region, EvalContext(history=history, sandbox=box, metric=metric, folds=folds, cost_bps=cost_bps,
                                      eval_timeout_s=eval_timeout_s, task=task, universe=many))
    ev.reason = renumber(ev.reason, region_origins(file.read_text(encoding="utf-8"), region))  # the file's lines
    console.print("stages:")
    for line in stage_lines(ev):
        console.print(line, highlight=False, markup=False, soft_wrap=True)
    if isinstance(ev.scores, ForecastScores):
        console.print(cut_points_line(ev.scores), highlight=False, markup=False, soft_wrap=True)
        for split in ev.scores.splits:
            console.print(forecast_table(ev.scores, split, f"{split} split: forecasts against climatology "
                                                           f"(skill 0)"))
        console.print(selection_line(ev.scores), highlight=False, markup=False, soft_wrap=True)
    elif ev.scores is not None:
        verdict = "accepted" if ev.accepted else "scored but rejected"
        console.print(metrics_table(ev.scores.splits, f"{verdict}: train and validation (costs {cost_bps:g} bp)"))
        console.print(spread_line(ev.scores), highlight=False, soft_wrap=True)
    console.print(f"[bold]{'ACCEPTED' if ev.accepted else 'REJECTED at ' + rich(ev.stage)}[/]")
    sys.stdout.flush()
    verdict = ev.check_json()
    if ev.universe is not None:
        verdict["universe"] = finite(ev.universe.figures_json())
    verdict["reason"] = safe(verdict["reason"])  # JSON escapes controls already; this keeps the text readable too
    print(json.dumps(verdict, sort_keys=True, allow_nan=False))
    return 0 if ev.accepted else 1
