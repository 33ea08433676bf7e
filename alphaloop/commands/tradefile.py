"""The fixed part of trade.py: evaluate the file's own region on train and validation.

It never opens the test split. Output keeps the original weekend harness's two lines
(``train_return: X`` and ``val_return: Y``, fractions) before a table and one JSON line.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd
from rich.table import Table

from alphaloop.candidate import compute_signals, validate_signals
from alphaloop.data.frozen import DataError, load_splits, manifest_digest, read_manifest, return_prices
from alphaloop.evaluate.backtest import DEFAULT_COST_BPS, FILLS
from alphaloop.evaluate.scoring import DEFAULT_FOLDS, DEFAULT_METRIC, History, score
from alphaloop.present.ui import console
from alphaloop.run.workdir import Workdir

TABLE_ROWS = (
    ("total_return", "Total return", "{:+.2%}"), ("cagr", "CAGR", "{:+.2%}"),
    ("sharpe", "Sharpe (ann.)", "{:.2f}"), ("sortino", "Sortino (ann.)", "{:.2f}"),
    ("max_drawdown", "Max drawdown", "{:.2%}"), ("calmar", "Calmar", "{:.2f}"),
    ("round_trips", "Round trips", "{:.0f}"), ("exposure", "Exposure", "{:.1%}"),
    ("turnover", "Turnover (x/yr)", "{:.1f}"), ("win_rate", "Win rate", "{:.1%}"),
    ("bh_total_return", "Buy & hold return", "{:+.2%}"), ("bh_sharpe", "Buy & hold Sharpe", "{:.2f}"),
    ("bh_max_drawdown", "Buy & hold max DD", "{:.2%}"),
)


def metrics_table(splits: dict[str, dict[str, float]], title: str) -> Table:
    """A table with one column per split, so every figure says where it was measured."""
    table = Table(title=title)
    table.add_column("metric")
    for name in splits:
        table.add_column(f"{name} split", justify="right")
    for key, label, fmt in TABLE_ROWS:
        table.add_row(label, *(fmt.format(splits[s][key]) for s in splits))
    return table


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


def main(generate_features: Callable[[pd.DataFrame], pd.DataFrame], strategy_logic: Callable[[Any], Any],
         argv: list[str] | None = None) -> int:
    """`python trade.py`: score the file's own region on train and validation, never on test."""
    p = argparse.ArgumentParser(description="Evaluate this file's strategy on the train and validation splits.")
    p.add_argument("--cost-bps", type=float, default=DEFAULT_COST_BPS,
                   help=f"cost per position change in bp of notional (default {DEFAULT_COST_BPS:g}; 0 allowed)")
    p.add_argument("--data", help="frozen data folder (default: data/, else the project's data/ beside this file)")
    p.add_argument("--fill", choices=FILLS, default="close",
                   help="fill convention (default close: signal at t trades at t's close)")
    args = p.parse_args(argv)
    if args.cost_bps < 0:
        p.error("--cost-bps must be >= 0")
    try:
        data = Path(args.data) if args.data else find_data(Path(generate_features.__code__.co_filename))
        history = History.from_splits(load_splits(data))
    except DataError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    _, raw = compute_signals(generate_features, strategy_logic, history.frame)
    signals = validate_signals(raw, len(history.frame))
    scores = score(history, signals, metric=DEFAULT_METRIC, folds=DEFAULT_FOLDS, cost_bps=args.cost_bps, fill=args.fill)
    print(f"train_return: {scores.splits['train']['total_return']:.6f}")
    print(f"val_return: {scores.splits['val']['total_return']:.6f}")
    label = f"costs {args.cost_bps:g} bp, fill at {'bar close' if args.fill == 'close' else 'next open (option)'}"
    console.print(metrics_table(scores.splits, f"trade.py on train and validation ({label})"))
    print(f"returns on: {return_prices([history.frame])}")
    print(json.dumps({"cost_bps": args.cost_bps, "fill": args.fill, "splits": scores.splits}, sort_keys=True))
    return 0
