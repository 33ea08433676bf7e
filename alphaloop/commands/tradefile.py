"""The fixed part of trade.py: evaluate the file's own region on train and validation.

The region is read from the file as text and judged like every other candidate (gate, a sandbox
process per frame, look-ahead probes, scoring on every instrument, guards: ``evaluate.pipeline``);
it never runs in this process, so a saved ``best_trade.py`` or ``iter_N_trade.py`` that is run
directly cannot open a file or tell the sandbox apart from ``check``. It never opens the test split.
Output keeps the original weekend harness's two lines (``train_return: X`` and ``val_return: Y``,
fractions) before a table and one JSON line; a rejected region says why on stderr and exits 1.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from alphaloop.candidate import RegionError, extract_region
from alphaloop.data.frozen import DataError, load_universe, manifest_digest, read_manifest, return_prices
from alphaloop.evaluate.backtest import DEFAULT_COST_BPS, FILLS
from alphaloop.evaluate.pipeline import DEFAULT_EVAL_TIMEOUT_S, EvalContext, evaluate
from alphaloop.evaluate.scoring import DEFAULT_FOLDS, DEFAULT_METRIC
from alphaloop.evaluate.universe import instrument_histories, score_universe
from alphaloop.present.names import universe_only
from alphaloop.present.ui import console
from alphaloop.present.verdict import metrics_table
from alphaloop.run.workdir import Workdir
from alphaloop.tasks import get_task


def _digest_of(folder: Path) -> str | None:
    try:
        return manifest_digest(read_manifest(folder))
    except (DataError, KeyError, TypeError):
        return None


def find_data(script: Path, cwd: Path | None = None) -> Path:
    """The frozen data when no --data is given: ./data, else the project's data/ beside the file.

    A file in a workdir (``train/best_trade.py``, ``iter_N_trade.py``) is usually run from inside it;
    the project's data is then ``../data``. When the workdir recorded its data (data_manifest.json),
    the folder with that digest wins.
    """
    cwd = cwd or Path.cwd()
    here = script.resolve().parent
    candidates = [cwd / "data", here / "data", here.parent / "data"]
    found = [c for c in dict.fromkeys(candidates) if (c / "manifest.json").is_file()]
    try:
        manifest = Workdir(here).read_manifest()
        recorded = manifest_digest(manifest) if manifest is not None else None
    except (OSError, ValueError, KeyError, TypeError):  # RecordError is a ValueError
        recorded = None
    matching = [c for c in found if recorded is not None and _digest_of(c) == recorded]
    chosen = (matching or found or [None])[0]
    if chosen is None:
        rel = os.path.relpath(here.parent / "data", cwd)
        raise DataError(f"no frozen data in data/ here or beside {script.name}; pass --data {rel} "
                        f"(the project's data folder) or run: python prepare.py")
    if chosen != cwd / "data":
        print(f"data: {os.path.relpath(chosen, cwd)}/ (found beside {script.name}; --data picks another)",
              file=sys.stderr)
    return chosen


def _script(file: str | Path | Callable[..., Any]) -> Path:
    """The file to judge: ``main(__file__)`` (the template), or a function of it (files saved before)."""
    if callable(file):
        return Path(file.__code__.co_filename)
    return Path(file)


def _other_task(script: Path, task: str, argv: list[str] | None) -> int:
    """`python iter_N_<stem>.py`: ``harness.py check --task <task>`` on this file, its data found as trade.py's."""
    from alphaloop.commands.check import run_check

    p = argparse.ArgumentParser(description=f"Evaluate this file's candidate ({task} task) on the train and "
                                            "validation splits.")
    p.add_argument("--data", help="frozen data folder (default: data/, else the project's data/ beside this file)")
    p.add_argument("--cost-bps", type=float, default=DEFAULT_COST_BPS,
                   help=f"cost per position change in bp of notional (default {DEFAULT_COST_BPS:g})")
    p.add_argument("--eval-timeout", type=float, default=DEFAULT_EVAL_TIMEOUT_S, metavar="S",
                   help=f"wall-clock budget for all of the region's sandbox runs (default {DEFAULT_EVAL_TIMEOUT_S:g})")
    p.add_argument("--max-gross", type=float, default=1.0, metavar="G",
                   help="the largest gross exposure a portfolio may hold on any date (default 1)")
    args = p.parse_args(argv)
    try:
        data = Path(args.data) if args.data else find_data(script)
    except DataError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return run_check(script, data, cost_bps=args.cost_bps, eval_timeout_s=args.eval_timeout, task=task,
                     max_gross=args.max_gross)


def main(file: str | Path | Callable[..., Any], *_: Any, argv: list[str] | None = None, task: str = "trade") -> int:
    """`python trade.py`: judge the file's own region on train and validation (every instrument), never on test.

    ``file`` is the script's ``__file__``; older saved files call ``main(generate_features, strategy_logic)``,
    which names the same file. The region is read from the file's text and runs only in the sandbox.
    A file of another task (``iter_N_forecast.py``: ``main(__file__, task="forecast")``) is judged by that
    task's ``harness.py check``, the same pipeline.
    """
    if task != "trade":
        return _other_task(_script(file), task, argv)
    p = argparse.ArgumentParser(description="Evaluate this file's strategy on the train and validation splits.")
    p.add_argument("--cost-bps", type=float, default=DEFAULT_COST_BPS,
                   help=f"cost per position change in bp of notional (default {DEFAULT_COST_BPS:g}; 0 allowed)")
    p.add_argument("--data", help="frozen data folder (default: data/, else the project's data/ beside this file)")
    p.add_argument("--fill", choices=FILLS, default="close",
                   help="fill convention (default close: signal at t trades at t's close)")
    p.add_argument("--eval-timeout", type=float, default=DEFAULT_EVAL_TIMEOUT_S, metavar="S",
                   help=f"wall-clock budget for all of the region's sandbox runs (default {DEFAULT_EVAL_TIMEOUT_S:g})")
    args = p.parse_args(argv)
    if args.cost_bps < 0 or not args.eval_timeout > 0:
        p.error("--cost-bps must be >= 0 and --eval-timeout > 0")
    script = _script(file)
    try:
        region = extract_region(script.read_text(encoding="utf-8"))
        data = Path(args.data) if args.data else find_data(script)
        histories = tuple(instrument_histories(load_universe(data)))
    except (DataError, RegionError, OSError, UnicodeDecodeError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if args.fill == "next_open" and any("Open" not in h.frame.columns for h in histories):
        print(f"error: --fill next_open trades at the next bar's open, and the data in {data} has no Open column "
              f"(columns: {', '.join(map(str, histories[0].frame.columns))}); use --fill close",
              file=sys.stderr)
        return 2
    from alphaloop.evaluate.sandboxed import open_sandbox

    box = open_sandbox(tasks=("trade",))  # one driver to build and warm before the zygote forks
    try:
        ev = evaluate(region, EvalContext(histories=histories, sandbox=box, task=get_task("trade"),
                                          cost_bps=args.cost_bps, eval_timeout_s=args.eval_timeout))
    finally:
        box.close(wait=False)  # a one-shot command: the killed worker's exit need not hold up ours
    if ev.scores is None or not ev.outputs:
        print(f"error: the region was rejected at {ev.stage}: {ev.reason}", file=sys.stderr)
        return 1
    # the equal-weight portfolio of every instrument (one instrument: its own figures), at the chosen fill
    scores = score_universe(histories, ev.outputs, metric=DEFAULT_METRIC, folds=DEFAULT_FOLDS, cost_bps=args.cost_bps,
                            fill=args.fill).portfolio
    print(f"train_return: {scores.splits['train']['total_return']:.6f}")
    print(f"val_return: {scores.splits['val']['total_return']:.6f}")
    label = f"costs {args.cost_bps:g} bp, fill at {'bar close' if args.fill == 'close' else 'next open (option)'}"
    what = universe_only(len(histories), "the equal-weight portfolio of every instrument", "train and validation")
    console.print(metrics_table(scores.splits, f"trade.py on {what} ({label})"))
    print(f"returns on: {return_prices([h.frame for h in histories])}")
    print(json.dumps({"cost_bps": args.cost_bps, "fill": args.fill, "splits": scores.splits}, sort_keys=True))
    if not ev.accepted:
        print(f"error: scored but rejected at {ev.stage}: {ev.reason}", file=sys.stderr)
        return 1
    return 0
