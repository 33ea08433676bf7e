"""Cost of the stress suite: one candidate's stress run vs one plain evaluation of it, as a ratio.

    python bench/bench_stress.py [--data DIR] [--paths N] [--repeats R] [--in-process] [--file TRADE_PY]

Both sides run the baseline region of trade.py (or --file's) through the same runner: the sandbox when
``sandbox/runner.py`` exists (unless --in-process), else an in-process stand-in (labelled; it runs
the region in this process, acceptable here only because the region is the project's own).
A plain evaluation is one runner call on the train+validation history plus scoring; the stress
run is ``run_stress`` as the loop calls it (all paths and the real history in one runner call).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from alphaloop.candidate import compute_signals, extract_region, template_text, validate_signals
from alphaloop.data.frozen import load_splits
from alphaloop.evaluate.scoring import History, score
from alphaloop.evaluate.stress import DEFAULT_PATHS, WARMUP_BARS, run_signals, run_stress


def in_process(region: str, frames: list[pd.DataFrame]) -> list[np.ndarray]:
    """Stand-in runner for the project's own baseline region only: no isolation at all."""
    scope: dict[str, Any] = {"pd": pd, "np": np}
    exec(compile(region, "<baseline>", "exec"), scope)
    return [validate_signals(compute_signals(scope["generate_features"], scope["strategy_logic"], f)[1], len(f))
            for f in frames]


def timed(fn: Any, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--data", default="data")
    p.add_argument("--paths", type=int, default=DEFAULT_PATHS, help=f"paths per scenario (default {DEFAULT_PATHS})")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--in-process", action="store_true", help="use the in-process stand-in even if the sandbox exists")
    p.add_argument("--file", type=Path, help="a trade.py-style file whose region to time instead of the baseline")
    args = p.parse_args()
    history = History.from_splits(load_splits(Path(args.data)))
    region = extract_region(args.file.read_text(encoding="utf-8") if args.file else template_text())
    runner: Any = in_process
    label = "in-process stand-in (no sandbox)"
    sandbox = None
    if not args.in_process:
        try:
            from alphaloop.evaluate.sandboxed import open_sandbox

            sandbox = open_sandbox(("trade",)).__enter__()
            runner, label = sandbox, "sandbox.runner.Sandbox"
        except ImportError:
            label = "in-process stand-in (sandbox.runner not importable)"
    try:
        def plain() -> None:
            (signals,) = run_signals(runner, region, [history.frame])
            score(history, signals)

        result: dict = {}

        def stress() -> None:
            result.update(run_stress(region, history, runner, n_paths=args.paths, seed=0))

        plain_s = timed(plain, args.repeats)
        stress_s = timed(stress, args.repeats)
    finally:
        if sandbox is not None:
            sandbox.__exit__(None, None, None)
    rows = len(history.frame)
    paths = 6 * args.paths
    path_rows = paths * (result.get("warmup_bars", WARMUP_BARS) + result.get("window_bars", 0))
    print(f"runner: {label}; region of {args.file or 'trade.py (baseline)'}; median of {args.repeats}")
    print(f"plain evaluation (train+val, {rows} rows, 1 runner call + scoring): {plain_s:.3f} s")
    print(f"stress suite ({paths} paths = 6 scenarios x {args.paths}, {path_rows + rows} rows, 1 runner call): "
          f"{stress_s:.3f} s  [status {result.get('status')}]")
    print(f"ratio stress / plain evaluation: {stress_s / plain_s:.1f}x  (rows ratio {(path_rows + rows) / rows:.1f}x)")


if __name__ == "__main__":
    main()
