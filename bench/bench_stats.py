"""Cost of the end-of-run universe statistics and of the per-candidate novelty check, as ratios.

    python bench/bench_stats.py [--trials N] [--days D] [--members K] [--reps R]

The end-of-run figure is ``universe_statistics`` (two DSRs, effective trials, SPA) over N trials
of D validation days, against the single-instrument ``run_statistics`` on the same returns: both
run the same SPA bootstrap, so the ratio shows what the excess DSR and the effective-trials
eigenvalues add. The per-iteration figure is ``novelty`` of one candidate against K members,
against one ``backtest`` of D bars (the loop pays novelty once per accepted candidate).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from alphaloop.evaluate.backtest import backtest, positions_key
from alphaloop.evaluate.stats import column_sharpes, run_statistics, spa_result, universe_statistics
from alphaloop.run.diversity import MemberReturns, novelty


def timed(fn: Any, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--trials", type=int, default=200)
    p.add_argument("--days", type=int, default=1000)
    p.add_argument("--members", type=int, default=10)
    p.add_argument("--reps", type=int, default=1000)
    a = p.parse_args()
    rng = np.random.default_rng(0)
    r = rng.normal(0.0003, 0.01, (a.days, a.trials))
    bh = rng.normal(0.0003, 0.01, a.days)
    sh = column_sharpes(r)
    best = int(np.argmax(sh))
    old = timed(lambda: run_statistics(a.trials, list(sh), r[:, best], spa_result(bh, list(r.T), reps=a.reps),
                                       reps=a.reps), 3)
    new = timed(lambda: universe_statistics(r, best, bh, a.trials, reps=a.reps), 3)
    print(f"universe_statistics over {a.trials} trials x {a.days} days ({a.reps} SPA draws): {new * 1e3:.0f} ms; "
          f"run_statistics on the same returns {old * 1e3:.0f} ms; ratio {new / old:.2f}x")
    members = [MemberReturns(i, float(i), f"k{i}", r[:, i]) for i in range(a.members)]
    pos = (rng.random(a.days) > 0.5).astype(np.int8)
    close = 100 * np.cumprod(1 + bh)
    one = timed(lambda: backtest(close, pos), 20)
    nov = timed(lambda: novelty(positions_key({"x": pos}), r[:, -1], 1.0, members, a.members), 20)
    print(f"novelty vs {a.members} members: {nov * 1e3:.2f} ms; one backtest of {a.days} bars {one * 1e3:.2f} ms; "
          f"ratio {nov / one:.2f}x")


if __name__ == "__main__":
    main()
