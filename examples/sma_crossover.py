"""Example: the SMA 20/50 crossover-event variant (enter on the cross up, exit on the cross down).

The starting trade.py holds the level rule instead; this file is a `--start-from` example.

Only the region between the two marker comments is the strategy; the loop rewrites nothing else,
and a proposal's text outside the markers is ignored. ``pd`` and ``np`` are in scope there.

    python examples/sma_crossover.py [--cost-bps N] [--fill close|next_open] [--data DIR]
"""

import sys

import numpy as np
import pandas as pd

from alphaloop.commands.tradefile import main

# === ALPHALOOP CANDIDATE REGION START (generate_features, strategy_logic) ===

def generate_features(df):
    """SMA 20/50 crossover: today's and yesterday's fast and slow averages of the close."""
    df["sma_fast"] = df["Close"].rolling(20).mean()
    df["sma_slow"] = df["Close"].rolling(50).mean()
    df["prev_fast"] = df["sma_fast"].shift(1)
    df["prev_slow"] = df["sma_slow"].shift(1)
    return df


def strategy_logic(row):
    """Enter when the fast average crosses above the slow one, exit when it crosses below."""
    if row["sma_fast"] > row["sma_slow"] and row["prev_fast"] <= row["prev_slow"]:
        return 1
    if row["sma_fast"] < row["sma_slow"] and row["prev_fast"] >= row["prev_slow"]:
        return -1
    return 0

# === ALPHALOOP CANDIDATE REGION END ===

if __name__ == "__main__":
    sys.exit(main(generate_features, strategy_logic))
