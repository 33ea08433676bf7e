"""Hostile candidates against the one-clean-process-per-frame rule (issue 19, findings 1-3).

Each class of attack is tried the way it worked when one process ran every frame of a run: reading
what an earlier frame, run or candidate left in freed memory (``np.empty``) or in module state,
rewriting an earlier frame's outputs after it ended, and running a saved iteration file directly so
that its region escapes the sandbox. Every test first shows the mechanism works inside one frame (so
a pass is not an accident of the allocator), then that nothing crosses a frame's boundary.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from alphaloop.candidate import splice_region, template_text
from alphaloop.data.frozen import load_splits
from alphaloop.evaluate.pipeline import EvalContext, evaluate
from alphaloop.evaluate.scoring import History
from alphaloop.tasks import get_task
from sandbox.runner import Sandbox
from tests.test_sandbox_support import make_ohlcv

ROOT = Path(__file__).resolve().parent.parent
MAGIC = 4242424242.0  # a volume no real frame holds: finding it elsewhere means it crossed a boundary

# Reads freed memory first (what an earlier frame, run or candidate left), then leaves its own traces.
SCAVENGER = f"""
def generate_features(df):
    seen = 0
    for k in range(64):
        e = np.empty(4096 + 8 * k)
        seen += int((e == {MAGIC!r}).sum())
        del e
    v = float(df["Volume"].iloc[0])
    for k in range(64):
        t = np.full(4096 + 8 * k, v)
        del t
    if READ_AFTER_WRITE:
        for k in range(64):
            e = np.empty(4096 + 8 * k)
            seen += int((e == {MAGIC!r}).sum())
            del e
    df["seen"] = float(seen)
    return df


def strategy_logic(row):
    return 0
"""


@pytest.fixture(scope="module")
def frames() -> tuple[pd.DataFrame, pd.DataFrame]:
    marked = make_ohlcv(300, seed=1)
    marked["Volume"] = MAGIC
    return marked, make_ohlcv(300, seed=2)


def seen(outcome: object) -> list[float]:
    assert outcome.ok, outcome.reason
    return [float(r.features["seen"][0]) for r in outcome.results]


def test_freed_memory_holds_the_traces_inside_one_frame(real_sandbox: Sandbox, frames: tuple) -> None:
    marked, _ = frames
    assert seen(real_sandbox.run("READ_AFTER_WRITE = True\n" + SCAVENGER, [marked]))[0] > 0


def test_no_frame_reads_an_earlier_frames_freed_memory(real_sandbox: Sandbox, frames: tuple) -> None:
    marked, plain = frames
    outcome = real_sandbox.run("READ_AFTER_WRITE = False\n" + SCAVENGER, [marked, plain, marked, plain])
    assert seen(outcome) == [0.0, 0.0, 0.0, 0.0]


def test_no_run_or_candidate_reads_an_earlier_ones_freed_memory(real_sandbox: Sandbox, frames: tuple) -> None:
    marked, plain = frames
    assert seen(real_sandbox.run("READ_AFTER_WRITE = False\n" + SCAVENGER, [marked])) == [0.0]
    other = "OTHER = 1\nREAD_AFTER_WRITE = False\n" + SCAVENGER  # a different candidate, next in line
    assert seen(real_sandbox.run(other, [plain])) == [0.0]


CACHE_LEAK = """
CACHE = {}

def generate_features(df):
    nxt = df["Close"].shift(-1)
    for d, v in zip(df.index, nxt):
        if v == v:
            CACHE.setdefault(d, v)
    df["tomorrow"] = [CACHE.get(d, np.nan) for d in df.index]
    return df


def strategy_logic(row):
    if row["tomorrow"] > row["Close"]:
        return 1
    return -1
"""


def test_a_module_cache_filled_by_one_frame_is_empty_in_the_next(real_sandbox: Sandbox) -> None:
    full = make_ohlcv(300, seed=3)
    outcome = real_sandbox.run(CACHE_LEAK, [full, full.iloc[:150]])
    assert outcome.ok, outcome.reason
    tomorrow = outcome.results[1].features["tomorrow"]
    assert np.isnan(tomorrow[149]) and np.isfinite(tomorrow[:149]).all()  # its own past only, not the full run's


def test_a_cache_leak_is_caught_by_the_probes(real_sandbox: Sandbox, frozen_data: Path) -> None:
    history = History.from_splits(load_splits(frozen_data))
    ev = evaluate(CACHE_LEAK, EvalContext(histories=(history,), sandbox=real_sandbox, task=get_task("trade"),
                                          eval_timeout_s=120.0))
    assert (ev.accepted, ev.stage) == (False, "lookahead"), ev.reason
    assert "tomorrow" in ev.reason


def test_library_state_set_by_one_candidate_is_gone_for_the_next(real_sandbox: Sandbox) -> None:
    stash = ("def generate_features(df):\n    np.STASH = df['Close'].to_numpy()\n"
             "    df['had'] = float('STASH' in np.__dict__)\n    return df\n\n"
             "def strategy_logic(row):\n    return 0\n")
    look = stash.replace("    np.STASH = df['Close'].to_numpy()\n", "")
    frame = make_ohlcv(100)
    first, second = real_sandbox.run(stash, [frame]), real_sandbox.run(look, [frame])
    assert first.ok and second.ok, (first.reason, second.reason)
    assert (first.results[0].features["had"][0], second.results[0].features["had"][0]) == (1.0, 0.0)


def test_a_later_frame_cannot_rewrite_an_earlier_frames_outputs(real_sandbox: Sandbox) -> None:
    rewrite = ("KEEP = []\n\ndef generate_features(df):\n    df['x'] = df['Close'] * 0 + len(KEEP)\n"
               "    for old in KEEP:\n        old['x'] = 999.0\n        old['x'].to_numpy()[:] = 999.0\n"
               "    KEEP.append(df)\n    return df\n\ndef strategy_logic(row):\n    return 0\n")
    frame = make_ohlcv(120)
    outcome = real_sandbox.run(rewrite, [frame, frame.iloc[:60], frame.iloc[:90]])
    assert outcome.ok, outcome.reason
    assert [float(r.features["x"].max()) for r in outcome.results] == [0.0, 0.0, 0.0]


def run_file(file: Path, data: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, file.name, "--data", str(data), *args], cwd=file.parent, env=env,
                          capture_output=True, text=True, timeout=300)


def test_a_saved_iteration_file_run_directly_never_runs_its_region_here(tmp_path: Path, frozen_data: Path) -> None:
    region = ("open('pwned.txt', 'w').write('x')\n\n"
              "def generate_features(df):\n    return df\n\ndef strategy_logic(row):\n    return 0\n")
    file = tmp_path / "iter_7_trade.py"
    file.write_text(splice_region(template_text(), region))
    res = run_file(file, frozen_data)
    assert res.returncode == 1 and "rejected at gate" in res.stderr, res.stderr
    assert not (tmp_path / "pwned.txt").exists() and "Traceback" not in res.stderr


SMA = """
def generate_features(df):
    df["sma_fast"] = df["Close"].rolling(20).mean()
    df["sma_slow"] = df["Close"].rolling(50).mean()
    return df


def strategy_logic(row):
    if row["sma_fast"] > row["sma_slow"]:
        return 1
    if row["sma_fast"] < row["sma_slow"]:
        return -1
    return 0
"""
# Behaves only where a ~2.5 GB reservation fails (under the sandbox's memory limit): in-process it would not trade.
TELLS_APART = """
def inside(n):
    try:
        held = np.empty(n + 330_000_000)
    except Exception:
        return 1.0
    return float(held.size == 0)
""" + SMA.replace("    return df\n", "    df['inside'] = inside(len(df))\n    return df\n").replace(
    "def strategy_logic(row):\n", "def strategy_logic(row):\n    if not row['inside']:\n        return -1\n")


def test_a_saved_file_that_tells_the_sandbox_apart_gets_the_same_verdict_as_check(tmp_path: Path,
                                                                                  frozen_data: Path) -> None:
    file = tmp_path / "best_trade.py"
    file.write_text(splice_region(template_text(), TELLS_APART))
    direct = run_file(file, frozen_data)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    check = subprocess.run([sys.executable, str(ROOT / "harness.py"), "check", str(file), "--data", str(frozen_data)],
                           cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    verdict = json.loads(check.stdout.strip().splitlines()[-1])
    assert direct.returncode == 0 and check.returncode == 0, (direct.stderr, check.stdout[-500:])
    payload = json.loads(direct.stdout.strip().splitlines()[-1])
    val = verdict["metrics"]["splits"]["val"]["total_return"]
    assert payload["splits"]["val"]["total_return"] == pytest.approx(val)
    assert direct.stdout.splitlines()[0] == "train_return: -0.174543"  # the SMA rule, as under check


def imported_roots(path: Path) -> set[str]:
    import ast

    roots = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            roots |= {alias.name.partition(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            roots.add(node.module.partition(".")[0])
    return roots


def test_the_sandbox_imports_nothing_from_alphaloop() -> None:
    for path in sorted((ROOT / "sandbox").glob("*.py")):
        assert "alphaloop" not in imported_roots(path), path.name


@pytest.mark.parametrize("task", ["trade", "forecast", "portfolio"])
def test_a_task_driver_imports_only_the_standard_library_numpy_and_pandas(task: str) -> None:
    roots = imported_roots(ROOT / "alphaloop" / "tasks" / task / "driver.py")
    assert roots <= {"__future__", "collections", "dataclasses", "typing", "numpy", "pandas", "math"}, roots


def test_the_forecast_driver_uses_the_tasks_horizons() -> None:
    from alphaloop.tasks.forecast.buckets import HORIZONS
    from alphaloop.tasks.forecast.driver import HORIZONS as DRIVER_HORIZONS

    assert tuple(DRIVER_HORIZONS) == tuple(HORIZONS)
