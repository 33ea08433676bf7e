"""A trading strategy for alphaloop, and the command that evaluates it on train and validation.

Only the region between the two marker comments is the strategy; the loop rewrites nothing else,
and a proposal's text outside the markers is ignored. ``pd`` and ``np`` are in scope there.

    python trade.py [--cost-bps N] [--fill close|next_open] [--data DIR]
"""

import sys

import numpy as np
import pandas as pd

from alphaloop.commands.tradefile import main

if __name__ == "__main__":  # the region below is read as text and judged in the sandbox, never run here
    sys.exit(main(__file__))

# === ALPHALOOP CANDIDATE REGION START (generate_features, strategy_logic) ===

def generate_features(df):
    """SMA 20/50, the original weekend harness's rule: the fast and slow averages of the close."""
    df["sma_fast"] = df["Close"].rolling(20).mean()
    df["sma_slow"] = df["Close"].rolling(50).mean()
    return df


def strategy_logic(row):
    """Long while SMA20 is above SMA50, flat while below (1 enters or stays in, -1 exits or stays out)."""
    if row["sma_fast"] > row["sma_slow"]:
        return 1
    if row["sma_fast"] < row["sma_slow"]:
        return -1
    return 0

# === ALPHALOOP CANDIDATE REGION END ===
