"""Backtest speed: the vectorised backtester vs a plain-Python loop over the same 5,000 bars.

    python bench/bench_backtest.py
Target (issue 2): <= 1 ms per 5,000 bars, metrics included.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from alphaloop.evaluate.backtest import backtest

BARS, REPEATS = 5_000, 300


def plain_loop(close: list[float], signals: list[int], cost: float) -> float:
    equity, pos = 1.0, 0
    for t in range(len(close)):
        if t:
            equity *= 1 + pos * (close[t] / close[t - 1] - 1)
        new = 0 if t == len(close) - 1 else (1 if signals[t] == 1 else 0 if signals[t] == -1 else pos)
        if new != pos:
            equity *= 1 - cost
        pos = new
    return equity - 1


def best_of(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times), float(np.median(times))


def main() -> None:
    rng = np.random.default_rng(0)
    close = 100 * np.exp(np.cumsum(rng.normal(0, 0.01, BARS)))
    signals = rng.choice([-1, 0, 1], size=BARS, p=[0.05, 0.9, 0.05])
    vec_best, vec_med = best_of(lambda: backtest(close, signals, cost_bps=2.0), REPEATS)
    cl, sg = close.tolist(), signals.tolist()
    loop_best, loop_med = best_of(lambda: plain_loop(cl, sg, 2e-4), 30)
    assert abs(backtest(close, signals, 2.0).metrics["total_return"] - plain_loop(cl, sg, 2e-4)) < 1e-9
    print(f"bars: {BARS}")
    print(f"vectorised backtest (all metrics): best {vec_best * 1e3:.3f} ms, median {vec_med * 1e3:.3f} ms"
          "  (target <= 1 ms)")
    print(f"plain-Python loop (total return only): best {loop_best * 1e3:.3f} ms, median {loop_med * 1e3:.3f} ms")
    print(f"ratio vectorised / plain loop (median): {vec_med / loop_med:.3f}")


if __name__ == "__main__":
    main()
