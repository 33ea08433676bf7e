"""Benchmark the sandbox: what one candidate costs, against an older commit and a numpy pass of the rule.

Run from the repository root (a git checkout):

    python bench/bench_sandbox.py                      # against 2ba62d9, the commit before a process per frame
    python bench/bench_sandbox.py --baseline HEAD~3 --pairs 7

Every figure is measured in the same command, so the ratios compare like with like on this machine
however loaded it is:

* per candidate, before and after: ``evaluate`` (gate, full run, probes, scoring, guards) of the
  starting SMA rule and two corpus strategies on the bundled sample, in a fresh process for each
  tree, the baseline tree (a temporary ``git worktree`` of ``--baseline``) and this one taking turns
  (``--pairs`` pairs); the ratio is the median of the pairs' after/before ratios, for the whole
  evaluation and for its sandbox runs alone (the sandbox and look-ahead stages);
* against a numpy pass of the same rule (the SMA level rule: rolling means, positions, daily
  returns with costs) and, when it is installed, vectorbt's ``Portfolio.from_signals`` on the same
  signals (``pip install vectorbt``; the bench says when it is not);
* fixed cost: a trivial candidate on a 20-row frame, one frame per run against ten, which splits a
  run's fixed cost from a frame's (each frame is a fork of a zygote, its lockdown and its exit), with
  one frame at a time and with two side by side (the default on two or more cores);
  and what a fresh fork costs by itself: the CPU time and minor page faults of the same frame's work
  (rebuild the frame, run the SMA rule, encode its arrays) in a child forked from a warm process,
  against the same work in the warm process (the difference is copy-on-write: Python's reference
  counts and allocator write to pages the child shares with its parent);
* gate: milliseconds per ``gate.check`` for each ordinary strategy in the test corpus.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from functools import partial
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from alphaloop.candidate import extract_region, template_text  # noqa: E402
from sandbox.gate import check  # noqa: E402
from tests.test_sandbox_support import CORPUS_DIR, make_ohlcv  # noqa: E402  (the tests' seeded frames)

BASELINE = "2ba62d9"  # main before one clean process per frame (issue 19)
CORPUS = sorted(CORPUS_DIR.glob("*.py"))
TRIVIAL = "def generate_features(df):\n    return df\n\n\ndef strategy_logic(row):\n    return 0\n"
# Runs inside a fresh interpreter whose PYTHONPATH is one tree (this one or the baseline's): evaluate each
# region REPEATS times on the frozen data and print the medians as JSON. Old and new sandboxes differ in how
# they are opened; everything else is the same call.
MEASURE = """
import json, statistics, sys, time
from pathlib import Path
try:
    from alphaloop.evaluate.sandboxed import open_sandbox
except ImportError:
    from sandbox.runner import Sandbox as open_sandbox
from alphaloop.data.frozen import load_splits
from alphaloop.evaluate.pipeline import EvalContext, evaluate
from alphaloop.evaluate.scoring import History
try:  # instruments as a tuple and the task as an object (after the task protocol); the fields before it
    from alphaloop.tasks import get_task

    def context(history, box):
        return EvalContext(histories=(history,), sandbox=box, task=get_task("trade"))
except ImportError:
    def context(history, box):
        return EvalContext(history=history, sandbox=box)
data, repeats, regions = Path(sys.argv[1]), int(sys.argv[2]), json.loads(sys.argv[3])
history = History.from_splits(load_splits(data))
out = {"total_ms": [], "sandbox_ms": []}
with open_sandbox() as box:
    for region in regions:
        evaluate(region, context(history, box))
        totals, runs = [], []
        for _ in range(repeats):
            t = time.perf_counter()
            ev = evaluate(region, context(history, box))
            totals.append((time.perf_counter() - t) * 1000)
            runs.append((ev.timings["sandbox"] + ev.timings["lookahead"]) * 1000)
            assert ev.stage in ("ok", "guards"), ev.reason
        out["total_ms"].append(statistics.median(totals))
        out["sandbox_ms"].append(statistics.median(runs))
print(json.dumps(out))
"""


def median_ms(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times)


def regions() -> list[str]:
    """The starting SMA rule and two ordinary strategies from the test corpus."""
    picked = [extract_region(template_text())]
    picked += [path.read_text(encoding="utf-8") for path in CORPUS[:2]]
    return picked


def measure(tree: Path, data: Path, repeats: int) -> dict[str, list[float]]:
    env = {**os.environ, "PYTHONPATH": str(tree)}
    proc = subprocess.run([sys.executable, "-c", MEASURE, str(data), str(repeats), json.dumps(regions())],
                          cwd=tree, env=env, capture_output=True, text=True, timeout=1800)
    if proc.returncode != 0:
        raise SystemExit(f"error: measuring {tree} failed:\n{proc.stderr[-2000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def before_after(baseline: str, pairs: int, repeats: int, data: Path) -> float:
    """Per-candidate cost of the baseline tree and this one, taking turns; returns the median after/before."""
    with tempfile.TemporaryDirectory() as tmp:
        tree = Path(tmp) / "baseline"
        subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "--detach", str(tree), baseline], check=True,
                       capture_output=True)
        try:
            ratios: dict[str, list[float]] = {"total_ms": [], "sandbox_ms": []}
            seen: dict[str, dict[str, list[float]]] = {"before": {"total_ms": [], "sandbox_ms": []},
                                                         "after": {"total_ms": [], "sandbox_ms": []}}
            for _ in range(pairs):
                old, new = measure(tree, data, repeats), measure(ROOT, data, repeats)
                for key in ratios:
                    ratios[key].append(float(np.mean(np.array(new[key]) / np.array(old[key]))))
                    seen["before"][key].append(float(np.mean(old[key])))
                    seen["after"][key].append(float(np.mean(new[key])))
        finally:
            subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force", str(tree)], capture_output=True)
    print(f"\nper candidate, {baseline} (before) against this tree (after), {pairs} pairs of fresh processes, "
          f"median of {repeats} evaluations of {len(regions())} regions each:")
    for key, label in (("total_ms", "whole evaluation"), ("sandbox_ms", "its sandbox runs")):
        before, after = statistics.median(seen["before"][key]), statistics.median(seen["after"][key])
        print(f"  {label:18s} before {before:7.1f} ms  after {after:7.1f} ms  after/before "
              f"{statistics.median(ratios[key]):.2f}x (pairs: {', '.join(f'{r:.2f}' for r in ratios[key])})")
    return statistics.median(seen["after"]["total_ms"])


def sma_numpy(close: np.ndarray, cost_bps: float = 2.0) -> np.ndarray:
    """The SMA 20/50 level rule as one numpy pass: daily strategy returns net of costs."""
    csum = np.concatenate([[0.0], np.cumsum(close)])
    fast = np.full(len(close), np.nan)
    slow = np.full(len(close), np.nan)
    fast[19:] = (csum[20:] - csum[:-20]) / 20
    slow[49:] = (csum[50:] - csum[:-50]) / 50
    signal = np.where(fast > slow, 1.0, np.where(fast < slow, 0.0, np.nan))
    valid = ~np.isnan(signal)
    position = np.where(valid, signal, 0.0)
    last = np.maximum.accumulate(np.where(valid, np.arange(len(close)), 0))
    position = position[last]  # 0 keeps the position: carry the last decided one forward
    returns = position[:-1] * (close[1:] / close[:-1] - 1.0)
    return returns - np.abs(np.diff(np.concatenate([[0.0], position[:-1]]))) * cost_bps / 1e4


def bench_against_numpy(per_candidate_ms: float, data: Path) -> None:
    from alphaloop.data.frozen import load_splits
    from alphaloop.evaluate.scoring import History

    close = History.from_splits(load_splits(data)).frame["Close"].to_numpy(dtype=np.float64)
    numpy_ms = median_ms(lambda: sma_numpy(close), 200)
    print(f"\nthe same rule on the {len(close)} train+validation bars:")
    print(f"  numpy pass                {numpy_ms:8.3f} ms; "
          f"a sandboxed evaluation is {per_candidate_ms / numpy_ms:7.0f}x")
    try:
        import pandas as pd
        import vectorbt as vbt
    except ImportError:
        print("  vectorbt                  not installed here (pip install vectorbt); no ratio")
        return
    price = pd.Series(close)
    fast, slow = price.rolling(20).mean(), price.rolling(50).mean()

    def run_vbt() -> float:
        entries, exits = fast > slow, fast < slow
        return float(vbt.Portfolio.from_signals(price, entries, exits, fees=2e-4).total_return())

    run_vbt()
    vbt_ms = median_ms(run_vbt, 20)
    print(f"  vectorbt from_signals     {vbt_ms:8.3f} ms; "
          f"a sandboxed evaluation is {per_candidate_ms / vbt_ms:7.0f}x")


def bench_fixed_cost() -> None:
    from alphaloop.evaluate.sandboxed import open_sandbox

    df = make_ohlcv(20)
    for at_once in (1, 2):
        start = time.perf_counter()
        with open_sandbox(tasks=("trade",), frames_at_once=at_once) as sb:
            startup = (time.perf_counter() - start) * 1000
            if at_once == 1:
                print(f"\n{sb.describe()}")
                print(f"worker start-up (once per loop): {startup:.0f} ms")
            assert sb.run(TRIVIAL, [df]).ok
            one = median_ms(lambda: sb.run(TRIVIAL, [df]), 20)
            ten = median_ms(lambda: sb.run(TRIVIAL, [df] * 10), 8)
        print(f"trivial candidate on {len(df)} rows, {at_once} frame(s) at a time: one frame {one:.1f} ms a run, "
              f"ten frames {ten:.1f} ms ({(ten - one) / 9:.1f} ms each further frame: its fork, lockdown and exit)")


def bench_fork_cost(rows: int = 2000, forks: int = 15) -> None:
    """CPU time and page faults of one frame's work in a freshly forked child against a warm process."""
    import gc

    import pandas as pd

    from alphaloop.tasks.trade import driver
    from sandbox import wire

    region = extract_region(template_text())
    specs, parts = wire.encode_panels([(make_ohlcv(rows),)])
    body = bytearray(b"".join(bytes(memoryview(part).cast("B")) for part in parts))

    def work() -> None:
        env = {"pd": pd, "np": np}
        exec(compile(region, "<candidate>", "exec"), env)
        wire.encode_arrays(driver.run_frame(env, tuple(wire.decode_frames(specs[0]["specs"], body))))

    for _ in range(3):
        work()
    start = time.process_time()
    for _ in range(20):
        work()
    warm = (time.process_time() - start) / 20 * 1000
    gc.collect()
    gc.freeze()
    cpu, faults = [], []
    for _ in range(forks):
        pid = os.fork()
        if pid == 0:
            work()
            os._exit(0)
        _, _, usage = os.wait4(pid, 0)
        cpu.append((usage.ru_utime + usage.ru_stime) * 1000)
        faults.append(usage.ru_minflt)
    gc.unfreeze()
    child = statistics.median(cpu)
    print(f"one frame of {rows} rows (SMA rule): {warm:.1f} ms CPU in a warm process, {child:.1f} ms in "
          f"a freshly forked child ({statistics.median(faults):.0f} minor page faults): a fresh process costs "
          f"{child - warm:.1f} ms CPU")


def bench_gate() -> None:
    out = []
    for path in CORPUS:
        source = path.read_text(encoding="utf-8")
        check(source)
        out.append(median_ms(partial(check, source), 20))
    print(f"\ngate.check: median {statistics.median(out):.2f} ms, max {max(out):.2f} ms over {len(out)} corpus regions")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--baseline", default=BASELINE, help=f"commit to compare with (default {BASELINE})")
    p.add_argument("--pairs", type=int, default=5, help="before/after pairs of fresh processes (default 5)")
    p.add_argument("--repeats", type=int, default=5, help="evaluations of each region per process (default 5)")
    args = p.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "data"
        subprocess.run([sys.executable, str(ROOT / "prepare.py"), "--source", "sample", "--out", str(data)],
                       check=True, capture_output=True, cwd=tmp)
        per_candidate = before_after(args.baseline, args.pairs, args.repeats, data)
        bench_against_numpy(per_candidate, data)
    bench_fixed_cost()
    bench_fork_cost()
    bench_gate()


if __name__ == "__main__":
    main()
