"""How many stress paths the percentiles need: the spread of each percentile estimate against the paths it rests on.

    python bench/stress_percentiles.py [--data DIR] [--file TRADE_PY] [--pool N] [--resamples R]

One pool of ``--pool`` paths per scenario is built and run once (``stress_frames`` with the loop's seed 0,
the in-process stand-in runner of ``bench_stress.py``: acceptable only for the project's own regions). For each
candidate number of paths n, ``--resamples`` draws of n paths (with replacement) from the pool give the
standard error of the p5, p50 and p95 of total return and the p5 of max drawdown that ``run_stress`` reports;
printed as the median over the six scenarios, in percentage points. Not a speed benchmark: the loop's cost
per path is in ``bench_stress.py``.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from alphaloop.candidate import extract_region, template_text
from alphaloop.data.frozen import load_splits
from alphaloop.evaluate.backtest import backtest
from alphaloop.evaluate.scoring import History
from alphaloop.evaluate.stress import PERCENTILES, stress_frames
from bench.bench_stress import in_process

CANDIDATE_PATHS = (8, 16, 32, 64, 128)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--data", default="data")
    p.add_argument("--file", type=Path, help="a trade.py-style file whose region to stress instead of the baseline")
    p.add_argument("--pool", type=int, default=256, help="paths per scenario run once (default 256)")
    p.add_argument("--resamples", type=int, default=2000)
    args = p.parse_args()
    history = History.from_splits(load_splits(Path(args.data)))
    region = extract_region(args.file.read_text(encoding="utf-8") if args.file else template_text())
    t0 = time.perf_counter()
    paths = stress_frames(history, "val", args.pool, seed=0)
    signals = in_process(region, [q.frame for q in paths])
    per: dict[str, dict[str, list[float]]] = {}
    for q, sig in zip(paths, signals, strict=True):
        m = backtest(q.frame["Close"].to_numpy(dtype=np.float64)[q.window], sig[q.window]).metrics
        row = per.setdefault(q.scenario, {"ret": [], "dd": []})
        row["ret"].append(m["total_return"])
        row["dd"].append(m["max_drawdown"])
    print(f"region of {args.file or 'trade.py (baseline)'}; pool {args.pool} paths x {len(per)} scenarios "
          f"({time.perf_counter() - t0:.0f} s); {args.resamples} resamples; standard error in percentage points, "
          "median over scenarios")
    qs = [q for _, q in PERCENTILES]
    rng = np.random.default_rng(0)
    print(f"{'paths':>6} {'ret p5':>8} {'ret p50':>8} {'ret p95':>8} {'DD p5':>8}   (pool p5..p95 of return: "
          + ", ".join(f"{np.percentile(r['ret'], 5):+.0%}..{np.percentile(r['ret'], 95):+.0%}" for r in per.values())
          + ")")
    for n in CANDIDATE_PATHS:
        se = []
        for row in per.values():
            ret, dd = np.asarray(row["ret"]), np.asarray(row["dd"])
            draws = rng.integers(0, ret.size, (args.resamples, n))
            ret_q = np.percentile(ret[draws], qs, axis=1)  # (3, resamples)
            dd_q = np.percentile(dd[draws], 5.0, axis=1)
            se.append([*ret_q.std(axis=1), dd_q.std()])
        med = np.median(np.asarray(se), axis=0) * 100
        print(f"{n:>6} " + " ".join(f"{v:>8.2f}" for v in med))


if __name__ == "__main__":
    main()
