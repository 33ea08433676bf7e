"""Cost of the look-ahead check against the candidate's own feature + signal time.

    python bench/bench_lookahead.py [--data DIR] [--repeats N] [--in-process]

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


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data", type=Path, default=Path("data"))
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--in-process", action="store_true",
                   help="use the in-process test runner even if the sandbox exists")
    args = p.parse_args()
    history = load_history(args.data)
    try:
        if args.in_process:
            raise ImportError
        from sandbox.runner import Sandbox

        box, label = Sandbox(), None
    except ImportError:
        box, label = in_process_runner(), "in-process runner (no sandbox)"
    with box:
        label = label or f"sandbox: {' + '.join(box.layers)}"
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
