"""Benchmark the sandbox: gate time per region, and the warm worker's in-loop overhead.

Run from the repository root: ``python bench/bench_sandbox.py``. Every figure is measured in
the same run, so the ratios compare like with like on this machine:

* gate: milliseconds per ``gate.check`` for each ordinary strategy in the test corpus;
* runner overhead: a trivial candidate on ~4,000 rows run through the warm worker, minus the same
  candidate run in-process (the cost the sandbox adds per candidate in the loop);
* fresh interpreter: a new ``python -c "import pandas, numpy"`` process, which is what a
  per-candidate process without a warm worker would pay before doing anything.
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import time
from functools import partial
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from alphaloop.candidate import compute_signals  # noqa: E402
from sandbox.gate import check  # noqa: E402
from sandbox.runner import Sandbox  # noqa: E402
from tests.test_sandbox_support import CORPUS_DIR, make_ohlcv  # noqa: E402  (the tests' seeded frames)

CORPUS = sorted(CORPUS_DIR.glob("*.py"))
TRIVIAL = "def generate_features(df):\n    return df\n\n\ndef strategy_logic(row):\n    return 0\n"


def median_ms(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times)


def bench_gate() -> list[float]:
    print("gate.check per region (median of 20, ms):")
    out = []
    for path in CORPUS:
        source = path.read_text(encoding="utf-8")
        check(source)
        ms = median_ms(partial(check, source), 20)
        out.append(ms)
        print(f"  {path.stem:34s} {len(source):6d} chars  {ms:6.2f} ms")
    print(f"  median {statistics.median(out):.2f} ms, max {max(out):.2f} ms over {len(out)} regions")
    return out


def bench_fresh_python() -> float:
    cmd = [sys.executable, "-c", "import pandas, numpy"]
    subprocess.run(cmd, check=True)
    return median_ms(lambda: subprocess.run(cmd, check=True), 5)


def in_process_ms(df: pd.DataFrame) -> float:
    env: dict = {"pd": pd, "np": np}
    exec(compile(TRIVIAL, "<candidate>", "exec"), env)
    return median_ms(lambda: compute_signals(env["generate_features"], env["strategy_logic"], df), 15)


def main() -> None:
    bench_gate()
    df = make_ohlcv(4000)
    start = time.perf_counter()
    with Sandbox() as sb:
        startup = time.perf_counter() - start
        print(f"\n{sb.describe()}")
        print(f"worker start-up (once per loop): {startup * 1000:.0f} ms")
        assert sb.run(TRIVIAL, [df]).ok
        sandboxed = median_ms(lambda: sb.run(TRIVIAL, [df]), 15)
        frames = [make_ohlcv(4000, seed=s) for s in range(10)]
        ten_frames = median_ms(lambda: sb.run(TRIVIAL, frames), 5)
    local = in_process_ms(df)
    fresh = bench_fresh_python()
    overhead = sandboxed - local
    print(f"\ntrivial candidate on {len(df)} rows:")
    print(f"  in-process                         {local:8.1f} ms")
    print(f"  warm worker (one fork)             {sandboxed:8.1f} ms")
    print(f"  sandbox overhead per candidate     {overhead:8.1f} ms")
    print(f"  fresh `python -c 'import pandas, numpy'` {fresh:8.1f} ms")
    print(f"  overhead / fresh interpreter       {overhead / fresh:8.2f}x")
    print(f"  10 frames in one run               {ten_frames:8.1f} ms ({ten_frames / 10:.1f} ms per frame)")


if __name__ == "__main__":
    main()
