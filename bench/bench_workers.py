"""Candidates per minute with --workers 1 and 2 (offline proposer), and Ray's per-task overhead.

    python bench/bench_workers.py [--iterations 24] [--data DIR] [--no-ray]

All figures come from this one command on the same frozen data, so they are ratios against a
baseline measured beside them. Throughput is committed candidates per minute between the first and
the last committed iteration of a real loop run (proposal, gate, sandbox, look-ahead probes, guards,
scoring, atomic writes), the end-of-run statistics and report left out. Target (issue 14): 2 workers
at least 1.5x the throughput of 1 on a 2-core machine. Ray's overhead is the median time of one
evaluation task through ``RayExecutor`` (one actor) minus the same task through the local pool (one
worker), over the same regions, in interleaved rounds.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from alphaloop.data.frozen import freeze, load_splits, sample_frame, split, validate  # noqa: E402
from alphaloop.evaluate.executor import EvalSettings, LocalExecutor, RayExecutor  # noqa: E402
from alphaloop.evaluate.scoring import History  # noqa: E402
from alphaloop.present.ui import PlainView  # noqa: E402
from alphaloop.propose.offline import OfflineProposer  # noqa: E402
from alphaloop.run.loop import Loop, LoopConfig  # noqa: E402


class TimingView(PlainView):
    """Records when each iteration was committed; prints nothing."""

    def __init__(self, total: int) -> None:
        super().__init__(total)
        self.done: list[float] = []

    def start(self, loop, state, isolation: str) -> None:
        self.isolation = isolation

    def note(self, text: str) -> None:
        pass

    def iteration_done(self, record: dict, state, learnings) -> None:
        self.done.append(time.perf_counter())


def throughput(data: Path, workers: int, iterations: int, seed: int,
               processes: bool | None = None) -> tuple[float, list[str]]:
    """Committed candidates per minute of one loop run, and its records' regions (for the Ray figure).

    ``processes=False`` shares one sandbox pool between threads instead of one evaluation process per
    worker (the default for N > 1), to show what the GIL costs."""
    import alphaloop.run.loop as loop_module

    made = loop_module.make_executor
    if processes is not None:
        loop_module.make_executor = lambda kind, history, settings, n, address: LocalExecutor(
            history, settings, n, processes=processes)
    with tempfile.TemporaryDirectory() as tmp:
        cfg = LoopConfig(workdir=Path(tmp) / "run", data_dir=data, iterations=iterations, max_fails=0,
                         seed=seed, stress_paths=0, workers=workers)
        view = TimingView(iterations)
        loop = Loop(cfg, OfflineProposer(seed), f"offline (seed {seed})", view)
        loop._finish = lambda state, manifest: None  # statistics and report are not the loop's throughput
        assert loop.run() == 0
        regions = [loop.wd.region(n) for n in range(iterations + 1) if loop.wd.trade(n).is_file()]
    loop_module.make_executor = made
    per_min = (len(view.done) - 1) / (view.done[-1] - view.done[0]) * 60.0
    return per_min, regions


def task_seconds(executor, regions: list[str]) -> float:
    times = []
    for region in regions:
        t0 = time.perf_counter()
        executor.evaluate(region)
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--iterations", type=int, default=24)
    p.add_argument("--seed", type=int, default=7)
    p.add_argument("--data", type=Path, help="frozen data (default: the S&P 500 sample, frozen in a temp folder)")
    p.add_argument("--no-ray", action="store_true", help="skip the Ray overhead figure")
    args = p.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        data = args.data
        if data is None:
            frame, name = sample_frame("SPY")
            frame, repairs = validate(frame, label="sample")
            data = Path(tmp) / "data"
            freeze(split(frame), data, "sample", name, repairs)
        print(f"machine: {os.cpu_count()} cores; offline proposer, seed {args.seed}, iterations 0..{args.iterations}")
        one, regions = throughput(data, 1, args.iterations, args.seed)
        two, _ = throughput(data, 2, args.iterations, args.seed)
        threads, _ = throughput(data, 2, args.iterations, args.seed, processes=False)
        print(f"--workers 1: {one:.1f} candidates/min")
        print(f"--workers 2: {two:.1f} candidates/min (one evaluation process per worker, the default)")
        print(f"ratio 2 workers / 1 worker: {two / one:.2f}x (target >= 1.5x)")
        print(f"2 workers as threads sharing one sandbox pool: {threads:.1f} candidates/min ({threads / one:.2f}x)")
        print(f"load average during the run: {os.getloadavg()[0]:.1f} (other processes share these cores)")
        if args.no_ray:
            return
        history = History.from_splits(load_splits(data))
        settings = EvalSettings(metric="sharpe", folds=4, cost_bps=2.0, eval_timeout_s=60.0)
        sample = regions[: min(len(regions), 10)]
        import ray

        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
        try:
            with LocalExecutor((history,), settings, workers=1) as local, \
                    RayExecutor((history,), settings, workers=1) as remote:
                task_seconds(local, sample[:2]), task_seconds(remote, sample[:2])  # warm up both
                local_times, ray_times = [], []
                for _ in range(3):  # interleaved rounds, so a change in the machine's load hits both alike
                    local_times.append(task_seconds(local, sample))
                    ray_times.append(task_seconds(remote, sample))
        finally:
            ray.shutdown()
        local_s, ray_s = statistics.median(local_times), statistics.median(ray_times)
        print(f"one evaluation task (median over {len(sample)} regions x 3 interleaved rounds): local pool "
              f"{local_s * 1000:.0f} ms, Ray {ray_s * 1000:.0f} ms; Ray's overhead {(ray_s - local_s) * 1000:+.0f} ms "
              f"per task ({ray_s / local_s:.2f}x the local pool)")

if __name__ == "__main__":
    main()
