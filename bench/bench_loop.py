"""The loop's own cost per iteration (everything but an LLM call) vs one plain `python trade.py` run.

    python bench/bench_loop.py [--iterations 15] [--data DIR]

Both are measured in this one command on the same frozen data: the plain run is a fresh
`python trade.py` process (what the original weekend harness paid per candidate); the loop's cost
is the wall time between consecutive finished iterations of a real offline-proposer run (gate,
sandbox, look-ahead probes, guards, scoring, atomic writes). Target (issue 4): ratio <= 0.25.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from itertools import pairwise
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from alphaloop.data.frozen import freeze, sample_frame, split, validate  # noqa: E402
from alphaloop.present.ui import PlainView  # noqa: E402
from alphaloop.propose.offline import OfflineProposer  # noqa: E402
from alphaloop.run.loop import Loop, LoopConfig  # noqa: E402


class TimingView(PlainView):
    """Records when each iteration finished; prints nothing."""

    def __init__(self, total: int) -> None:
        super().__init__(total)
        self.done: list[tuple[int, float, str]] = []

    def start(self, loop, state, isolation: str) -> None:
        self.isolation = isolation

    def note(self, text: str) -> None:
        pass

    def iteration_done(self, record, state, learnings) -> None:
        self.done.append((record.iteration, time.perf_counter(), record.stage))


def plain_trade_run(data: Path, repeats: int = 3) -> float:
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        subprocess.run([sys.executable, str(ROOT / "trade.py"), "--data", str(data)], check=True, capture_output=True)
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--iterations", type=int, default=15)
    p.add_argument("--data", type=Path, help="frozen data (default: the S&P 500 sample, frozen in a temp folder)")
    args = p.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        data = args.data
        if data is None:
            frame, name = sample_frame("SPY")
            frame, repairs = validate(frame)
            data = Path(tmp) / "data"
            freeze(split(frame), data, "sample", name, repairs)
        plain = plain_trade_run(data)
        view = TimingView(args.iterations)
        cfg = LoopConfig(workdir=Path(tmp) / "run", data_dir=data, iterations=args.iterations, max_fails=0)
        loop = Loop(cfg, OfflineProposer(seed=0), "offline", view)
        import alphaloop.run.loop as loop_module

        loop_module.Loop._finish = lambda self, state, manifest: None  # the end-of-run summary is not per iteration
        loop.run()
        gaps = [b[1] - a[1] for a, b in pairwise(view.done)]
    per_iter = statistics.median(gaps)
    print(f"isolation: {view.isolation}")
    print(f"plain `python trade.py` run (median of 3): {plain * 1e3:.0f} ms")
    print(f"loop cost per iteration, median of {len(gaps)} (offline proposer, no LLM call): {per_iter * 1e3:.0f} ms "
          f"(min {min(gaps) * 1e3:.0f}, max {max(gaps) * 1e3:.0f})")
    print(f"ratio loop iteration / plain trade.py run: {per_iter / plain:.3f} (target <= 0.25)")


if __name__ == "__main__":
    main()
