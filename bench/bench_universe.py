"""Evaluation time of one candidate over 1, 5 and 20 synthetic instruments of 5,000 bars each.

    python bench/bench_universe.py [--bars N] [--repeats N] [--counts 1,5,20] [--in-process]

Target (issue 10, Speed): the cost grows no worse than linearly with the instruments, so the
ratio to one instrument stays at or below the instrument count. One evaluation is the whole
pipeline (gate, one sandbox run on every instrument, one run of every instrument's look-ahead and
invariance probes, scoring of each instrument and of the portfolio, guards per instrument),
through the real sandbox unless ``--in-process``. The figures are ratios against one instrument
measured in the same run; the best of ``--repeats`` runs is kept, as the least disturbed by load.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from alphaloop.candidate import extract_region, template_text
from alphaloop.evaluate.pipeline import EvalContext, evaluate
from alphaloop.evaluate.scoring import History
from alphaloop.tasks import get_task


def instrument(seed: int, bars: int) -> History:
    """A seeded random-walk OHLCV instrument on business days: 70% train, 30% validation."""
    rng = np.random.default_rng(seed)
    close = 100.0 * np.exp(np.cumsum(rng.normal(0.0003, 0.012, bars)))
    open_ = close * np.exp(rng.normal(0.0, 0.004, bars))
    frame = pd.DataFrame({"Open": open_, "High": np.maximum(open_, close) * 1.002,
                          "Low": np.minimum(open_, close) * 0.998, "Close": close,
                          "Volume": rng.integers(1_000_000, 5_000_000, bars).astype(np.float64), "Adj Close": close},
                         index=pd.bdate_range("1990-01-02", periods=bars, name="Date"))
    cut = int(bars * 0.7)
    return History.from_splits({"train": frame.iloc[:cut], "val": frame.iloc[cut:]})


def timed(region: str, histories: list[History], box: object, repeats: int) -> tuple[float, dict[str, float]]:
    """Best wall time of ``repeats`` evaluations, with the per-stage times of that run."""
    best, stages = float("inf"), {}
    for _ in range(repeats):
        ctx = EvalContext(histories=tuple(histories), sandbox=box, task=get_task("trade"), eval_timeout_s=600.0)
        start = time.perf_counter()
        ev = evaluate(region, ctx)
        took = time.perf_counter() - start
        if not ev.accepted:
            raise SystemExit(f"the benchmark candidate was rejected at {ev.stage}: {ev.reason}")
        if took < best:
            best, stages = took, dict(ev.timings)
    return best, stages


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--bars", type=int, default=5000)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--counts", default="1,5,20", help="instrument counts, comma-separated (the first is the base)")
    p.add_argument("--in-process", action="store_true", help="the tests' in-process runner instead of the sandbox")
    args = p.parse_args(argv)
    counts = [int(c) for c in args.counts.split(",")]
    universe = [instrument(seed, args.bars) for seed in range(max(counts))]
    region = extract_region(template_text())
    if args.in_process:
        from tests.conftest import InProcessSandbox

        box_cm = InProcessSandbox(timeout_s=600.0)
    else:
        from alphaloop.evaluate.sandboxed import open_sandbox

        box_cm = open_sandbox(("trade",), timeout_s=600.0)
    with box_cm as box:
        timed(region, universe[:1], box, 1)  # warm the worker and the imports
        rows = [(n, *timed(region, universe[:n], box, args.repeats)) for n in counts]
    base = rows[0][1]
    print(f"one candidate's evaluation (SMA 20/50 baseline), {args.bars:,} bars per instrument, best of "
          f"{args.repeats}, {'in-process' if args.in_process else 'sandbox'}:")
    for n, seconds, stages in rows:
        parts = ", ".join(f"{k} {v:.2f}" for k, v in stages.items())
        print(f"  {n:>3} instrument(s): {seconds:7.2f} s  ratio {seconds / base:5.2f} to 1 instrument "
              f"(linear would be {n / counts[0]:.0f}); stages s: {parts}")
    worst = max((seconds / base / (n / counts[0]) for n, seconds, _ in rows[1:]), default=1.0)
    verdict = "no worse than linear" if worst <= 1.05 else "WORSE than linear"
    print(f"worst ratio per instrument: {worst:.2f} ({verdict})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
