"""Cost of the look-ahead check against the candidate's own feature + signal time.

    python bench/bench_lookahead.py [--data DIR] [--repeats N] [--in-process]
    python bench/bench_lookahead.py --catch [--nonces N]
    python bench/bench_lookahead.py --against COMMIT [--pairs N]

``--catch`` runs nothing: it draws the cut rows (alphaloop/evaluate/cuts.py) for N seeds on the
train+validation calendar and prints, per class of one-bar leak (active on a weekday, a week of the
month, month ends, one day of the month, one month of the year, a class inside validation...), the
share of seeds whose cuts catch it, and the rows probed against the history's (docs/trust.md quotes
them).

Target (issue 5): the look-ahead check adds less than 4x the candidate's own time; issue 11's
cuts that can land on any row (see alphaloop/lookahead.py) must keep it there. The second figure
adds the invariance probes the pipeline runs in the same sandbox run (alphaloop/guards.py: the
28-year date shift, history prepended, rows removed at the start). Measured on
train+validation of the frozen data with the baseline region, through the sandbox when
``sandbox.runner`` exists (each run is one fork, as in the pipeline), else in-process.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from alphaloop.candidate import extract_region, template_text
from alphaloop.data.frozen import DataError, freeze, load_splits, sample_frame, split, validate
from alphaloop.evaluate.guards import invariance_probes
from alphaloop.evaluate.probes import first_difference, probe_frames
from alphaloop.evaluate.scoring import History

HEAVY = """
def generate_features(df):
    d = df["Close"].diff()
    up = d.clip(lower=0).ewm(alpha=1 / 14, adjust=False).mean()
    dn = (-d.clip(upper=0)).ewm(alpha=1 / 14, adjust=False).mean()
    df["rsi"] = 100 - 100 / (1 + up / dn)
    df["vol"] = df["Close"].pct_change().rolling(20).std()
    df["trend"] = df["Close"].rolling(100).mean()
    return df


def strategy_logic(row):
    if row["rsi"] < 30 and row["Close"] > row["trend"]:
        return 1
    if row["rsi"] > 70 or row["vol"] > 0.03:
        return -1
    return 0
"""


def in_process_runner():
    """The test double from tests/conftest.py: same result shapes, no isolation."""
    from tests.conftest import InProcessSandbox

    return InProcessSandbox()


def load_history(data: Path) -> History:
    try:
        return History.from_splits(load_splits(data))
    except DataError:
        frame, name = sample_frame("SPY")
        frame, repairs = validate(frame)
        out = Path(tempfile.mkdtemp()) / "data"
        freeze(split(frame), out, "sample", name, repairs)
        return History.from_splits(load_splits(out))


def timed(fn) -> tuple[float, object]:
    t0 = time.perf_counter()
    out = fn()
    return time.perf_counter() - t0, out


def bench(box, region: str, history: History, repeats: int) -> dict[str, float]:
    frame = history.frame
    full_t, probe_t, both_t, rows = [], [], [], 0
    for i in range(repeats):
        t, full = timed(lambda: box.run(region, [frame]))
        assert full.ok, full.reason
        full_t.append(t)
        for extra, times in (([], probe_t), ([p.frame for p in invariance_probes(frame, i)], both_t)):
            t0 = time.perf_counter()
            probes = probe_frames(frame, full.results[0], seed=i)
            out = box.run(region, [p.frame for p in probes] + extra)
            assert out.ok, out.reason
            assert all(first_difference(full.results[0], p, r) is None
                       for p, r in zip(probes, out.results[: len(probes)], strict=True))
            times.append(time.perf_counter() - t0)
        rows = sum(len(p.frame) for p in probes)
    full_s, probe_s, both_s = (float(np.median(x)) for x in (full_t, probe_t, both_t))
    return {"full_s": full_s, "lookahead_s": probe_s, "with_invariance_s": both_s,
            "ratio": probe_s / full_s, "ratio_with_invariance": both_s / full_s, "row_ratio": rows / len(frame)}


def leak_classes(index, val: slice) -> dict[str, list[np.ndarray]]:
    """Rows where a one-bar leak of each class is active (a class of several variants: the mean over them)."""
    n = len(index)
    row, day, dow, month = np.arange(n), index.day.to_numpy(), index.day_of_week.to_numpy(), index.month.to_numpy()
    ends = np.r_[np.diff(index.year.to_numpy() * 12 + month) != 0, False]
    in_val = row >= val.start
    return {
        "one weekday (each)": [dow == k for k in range(5)],
        "one week of the month (each)": [(day - 1) // 7 == k for k in range(5)],
        "month ends": [ends], "odd rows / even rows": [row % 2 == 1, row % 2 == 0],
        "last 40 rows": [row >= n - 41], "validation": [in_val],
        "one day of the month (mean of 31)": [day == k for k in range(1, 32)],
        "one month of the year (mean of 12)": [month == k for k in range(1, 13)],
        "year ends": [np.r_[np.diff(index.year.to_numpy()) != 0, False]],
        "row % 7 (mean of 7)": [row % 7 == k for k in range(7)],
        "Fridays of validation": [(dow == 4) & in_val], "month ends of validation": [ends & in_val],
        "first week of the last 252 rows": [((day - 1) // 7 == 0) & (row >= n - 253)],
        "a random 10% of the rows": [np.random.default_rng(0).random(n) < 0.1],
    }


def catch_table(history: History, nonces: int) -> None:
    from alphaloop.evaluate.cuts import cut_plan

    index, val = history.frame.index, history.windows["val"]
    classes = leak_classes(index, val)
    caught = {name: 0.0 for name in classes}
    rows = 0
    for seed in range(nonces):
        plan = cut_plan(index, 49, np.random.default_rng(seed), window=val)
        cuts = np.array([c.row for c in plan])
        rows += sum(len(index) if c.full_length else c.row + 1 for c in plan)
        for name, variants in classes.items():
            caught[name] += float(np.mean([bool(v[cuts].any()) for v in variants]))
    print(f"{len(index)} bars (train+validation), {nonces} seeds; rows probed by the look-ahead cuts "
          f"{rows / nonces / len(index):.2f}x the history's")
    for name, hits in caught.items():
        print(f"  {name:36s} caught {hits / nonces:6.1%}")


def old_probe_frames(commit: str):
    """``probe_frames`` of ``commit``'s alphaloop/evaluate/probes.py, loaded beside today's (it imports only
    numpy, pandas and, since the cut plan moved out, alphaloop.evaluate.cuts)."""
    import importlib.util
    import subprocess

    root = Path(__file__).resolve().parent.parent
    text = subprocess.run(["git", "-C", str(root), "show", f"{commit}:alphaloop/evaluate/probes.py"],
                          check=True, capture_output=True, text=True).stdout
    path = Path(tempfile.mkdtemp()) / "probes_before.py"
    path.write_text(text)
    spec = importlib.util.spec_from_file_location("probes_before", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules["probes_before"] = module
    spec.loader.exec_module(module)
    return module.probe_frames


def against(box, history: History, commit: str, pairs: int) -> None:
    """Paired runs of the look-ahead probes (plus the same invariance probes) of ``commit`` and of today, in
    one sandbox, alternating: the ratio of their wall times and of their rows."""
    before = old_probe_frames(commit)
    region = extract_region(template_text())
    frame = history.frame
    full = box.run(region, [frame]).results[0]
    ratios, rows = [], []
    for i in range(pairs):
        inv = [p.frame for p in invariance_probes(frame, i)]
        old = [p.frame for p in before(frame, full, seed=i)] + inv
        new = [p.frame for p in probe_frames(frame, full, seed=i, window=history.windows.get("val"))] + inv
        first, second = (old, new) if i % 2 == 0 else (new, old)  # alternate which runs first
        t_first, _ = timed(lambda: box.run(region, first))  # noqa: B023 - called at once
        t_second, _ = timed(lambda: box.run(region, second))  # noqa: B023
        t_old, t_new = (t_first, t_second) if i % 2 == 0 else (t_second, t_first)
        ratios.append(t_new / t_old)
        rows.append(sum(map(len, new)) / sum(map(len, old)))
    print(f"probe run (look-ahead + invariance) today / {commit}: median {np.median(ratios):.2f}x over {pairs} "
          f"pairs (range {min(ratios):.2f}-{max(ratios):.2f}); rows {np.mean(rows):.2f}x")


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data", type=Path, default=Path("data"))
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--in-process", action="store_true",
                   help="use the in-process test runner even if the sandbox exists")
    p.add_argument("--catch", action="store_true", help="print the catch rate of each leak class, run nothing")
    p.add_argument("--nonces", type=int, default=400)
    p.add_argument("--against", metavar="COMMIT", help="paired wall time of the probes against COMMIT's")
    p.add_argument("--pairs", type=int, default=15)
    args = p.parse_args()
    history = load_history(args.data)
    if args.catch:
        catch_table(history, args.nonces)
        return 0
    try:
        if args.in_process:
            raise ImportError
        from alphaloop.evaluate.sandboxed import open_sandbox

        box, label = open_sandbox(), None
    except (ImportError, RuntimeError):
        box, label = in_process_runner(), "in-process runner (no sandbox)"
    with box:
        label = label or f"sandbox: {' + '.join(box.layers)}"
        if args.against:
            against(box, history, args.against, args.pairs)
            return 0
        print(f"runner: {label}; {len(history.frame)} bars (train+validation), median of {args.repeats}")
        for name, region in (("baseline", extract_region(template_text())), ("rsi+trend", HEAVY)):
            r = bench(box, region, history, args.repeats)
            verdict = "PASS" if r["ratio"] < 4 else "FAIL"
            print(f"{name:10s} candidate {r['full_s'] * 1e3:7.1f} ms | look-ahead {r['lookahead_s'] * 1e3:7.1f} ms "
                  f"= {r['ratio']:.2f}x (target < 4x: {verdict}; probe rows {r['row_ratio']:.2f}x) | "
                  f"with the date-shift and position probes in the same run {r['with_invariance_s'] * 1e3:7.1f} ms "
                  f"= {r['ratio_with_invariance']:.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
