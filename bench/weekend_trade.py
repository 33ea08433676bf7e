"""The baseline `check` is measured against: the original weekend harness's `python trade.py`.

    python bench/weekend_trade.py --data DIR

It read the frozen CSVs, ran the SMA 20/50 region in this process row by row (no sandbox, no probes,
no walk-forward folds), and printed the train and validation returns: pandas and numpy are its only
imports. Kept here unchanged in substance so that start-up ratios keep one fixed reference while
alphaloop's own `python trade.py` runs its region through the sandbox.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import pandas as pd


def generate_features(df):
    df["sma_fast"] = df["Close"].rolling(20).mean()
    df["sma_slow"] = df["Close"].rolling(50).mean()
    return df


def strategy_logic(row):
    if row["sma_fast"] > row["sma_slow"]:
        return 1
    if row["sma_fast"] < row["sma_slow"]:
        return -1
    return 0


def split_return(frame: pd.DataFrame, cost_bps: float) -> float:
    """Long/flat from each bar's signal, earning close t -> close t+1, costs on each change."""
    feats = generate_features(frame.copy())
    held, pos = [], 0
    for _, row in feats.iterrows():
        signal = strategy_logic(row)
        pos = 1 if signal == 1 else 0 if signal == -1 else pos
        held.append(pos)
    positions = np.asarray(held[:-1], dtype=np.float64)
    moves = frame["Close"].pct_change().to_numpy()[1:]
    changes = np.abs(np.diff(np.concatenate(([0.0], positions))))
    return float(np.prod(1.0 + positions * moves - changes * cost_bps / 1e4) - 1.0)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data", type=Path, required=True)
    p.add_argument("--cost-bps", type=float, default=2.0)
    a = p.parse_args()
    for name in ("train", "val"):
        frame = pd.read_csv(a.data / f"{name}.csv", index_col=0, parse_dates=True)
        print(f"{name}_return: {split_return(frame, a.cost_bps):.6f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
