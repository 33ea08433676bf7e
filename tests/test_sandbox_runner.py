"""The runner: outcomes, faithful frames, arrays equal to an in-process run, a warm worker."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from alphaloop.evaluate.sandboxed import FrameResult, open_sandbox
from sandbox.gate import check
from sandbox.runner import RunOutcome, Sandbox, bwrap_status
from tests.test_sandbox_support import (
    BUILTINS,
    CORPUS_DIR,
    ESCAPE,
    MONKEYPATCH,
    in_process,
    make_ohlcv,
    processes_with,
    region,
    same_arrays,
)


@pytest.fixture(scope="module")
def sandbox():
    with open_sandbox(timeout_s=10.0, memory_mb=512) as sb:
        yield sb


@pytest.fixture(scope="module")
def frame() -> pd.DataFrame:
    return make_ohlcv(600, seed=3)


def test_layers_are_reported(sandbox: Sandbox) -> None:
    assert {"rlimits", "timeout", "audit-hook", "restricted-builtins"} <= set(sandbox.layers)
    text = sandbox.describe()
    assert text.startswith("isolation: ") and "(missing: " in text
    if bwrap_status() is not None:
        pytest.skip(f"bwrap unavailable: {bwrap_status()}")
    assert sandbox.layers[0] == "bwrap"


def test_all_layers_active_where_supported(sandbox: Sandbox) -> None:
    for layer in ("bwrap", "landlock", "seccomp"):
        if layer not in sandbox.layers:
            pytest.skip(f"{layer} unavailable: {sandbox.missing.get(layer)}")
    assert sandbox.describe().endswith("(missing: none)")


SAMPLE = ["03_rsi", "11_rolling_apply_lambda", "17_while_loop_streak", "25_groupby_transform",
          "27_state_machine", "35_iloc_loop_features"]


@pytest.mark.parametrize("name", SAMPLE)
def test_corpus_sample_runs_and_matches_in_process(sandbox: Sandbox, frame: pd.DataFrame, name: str) -> None:
    source = (CORPUS_DIR / f"{name}.py").read_text(encoding="utf-8")
    assert check(source).ok
    outcome = sandbox.run(source, [frame])
    assert outcome.ok, outcome.reason
    assert outcome.reason == "" and isinstance(outcome, RunOutcome)
    (result,) = outcome.results
    assert isinstance(result, FrameResult)
    signals, features = in_process(source, frame)
    assert result.signals.dtype == np.int8 and np.array_equal(result.signals, signals)
    assert list(result.features) == list(features)
    for key, values in features.items():
        assert result.features[key].dtype == np.float64
        assert same_arrays(result.features[key], values), key


def test_frames_are_rebuilt_faithfully(sandbox: Sandbox) -> None:
    naive = make_ohlcv(300, seed=1).astype({"Volume": "int64"})
    aware = make_ohlcv(120, seed=2, start="2021-03-01").astype({"Volume": "int64"})
    aware.index = aware.index.tz_localize("America/New_York")
    plain = make_ohlcv(50, seed=4).astype({"Volume": "int64"}).reset_index(drop=True)
    source = region(
        "assert list(df.columns) == ['Open', 'High', 'Low', 'Close', 'Volume', 'Adj Close'], list(df.columns)\n"
        "assert str(df['Volume'].dtype) == 'int64' and str(df['Close'].dtype) == 'float64'\n"
        "df['named'] = float(df.index.name == 'Date')\n"
        "if isinstance(df.index, pd.DatetimeIndex):\n"
        "    df['ts'] = df.index.asi8\n"
        "    df['dow'] = df.index.day_of_week\n"
        "    df['tz'] = float(str(df.index.tz) == 'America/New_York')\n"
        "    df['freq'] = float(df.index.freqstr == 'B')\n"
        "else:\n"
        "    df['ix'] = df.index.to_numpy()"
    )
    frames = [naive, aware, plain]
    outcome = sandbox.run(source, frames)
    assert outcome.ok, outcome.reason
    for df, result in zip(frames, outcome.results, strict=True):
        signals, features = in_process(source, df)
        assert list(result.features) == list(features)
        for key in features:
            assert same_arrays(result.features[key], features[key]), key
    assert outcome.results[0].features["named"][0] == 1.0
    assert outcome.results[0].features["freq"][0] == 1.0
    assert outcome.results[1].features["tz"][0] == 1.0
    assert "ix" in outcome.results[2].features


def test_every_frame_runs_in_a_process_of_its_own(sandbox: Sandbox, frame: pd.DataFrame) -> None:
    source = region(ESCAPE + "df['pid'] = float(os.getpid())")
    frames = [frame.iloc[: 100 + 20 * i] for i in range(10)]
    first = sandbox.run(source, frames)
    second = sandbox.run(source, frames[:2])
    assert first.ok and second.ok, (first.reason, second.reason)
    pids = [float(r.features["pid"][0]) for r in (*first.results, *second.results)]
    assert len(set(pids)) == 12  # ten frames, then two more: twelve processes
    assert [len(r.signals) for r in first.results] == [len(f) for f in frames]


def test_a_panel_frame_runs_every_instrument_in_one_process(sandbox: Sandbox, frame: pd.DataFrame) -> None:
    source = region(ESCAPE + "df['pid'] = float(os.getpid())")
    panel = (frame, frame.iloc[:300], frame.iloc[100:])
    outcome = sandbox.run(source, [panel, frame])
    assert outcome.ok, outcome.reason
    per_instrument, alone = outcome.results
    assert isinstance(per_instrument, tuple) and [len(r.signals) for r in per_instrument] == [600, 300, 500]
    assert len({float(r.features["pid"][0]) for r in per_instrument}) == 1
    assert float(alone.features["pid"][0]) != float(per_instrument[0].features["pid"][0])


def test_exception_names_the_candidate_line(sandbox: Sandbox, frame: pd.DataFrame) -> None:
    source = region("x = 1\ny = x / 0")
    outcome = sandbox.run(source, [frame])
    line = source.splitlines().index("    y = x / 0") + 1
    assert outcome.status == "exception"
    assert outcome.reason == f"ZeroDivisionError: division by zero at candidate line {line}: y = x / 0"
    assert outcome.results is None and not outcome.ok


def test_exception_in_strategy_logic(sandbox: Sandbox, frame: pd.DataFrame) -> None:
    source = region("x = 1", "return row['missing']")
    outcome = sandbox.run(source, [frame])
    line = source.splitlines().index("    return row['missing']") + 1
    assert outcome.status == "exception"
    assert outcome.reason == f"KeyError: 'missing' at candidate line {line}: return row['missing']"


@pytest.mark.parametrize("features,logic,fragment", [
    ("df = df.iloc[:-1]", "return 0", "rows for"),
    ("df = df['Close']", "return 0", "must return a DataFrame"),
    ("df = None", "return 0", "must return a DataFrame"),
    ("x = 1", "return 2", "outside {1, -1, 0}"),
    ("x = 1", "return float('nan')", "NaN or infinite"),
    ("x = 1", "return 'buy'", "must be numbers"),
    ("x = 1", "return None", "must be numbers"),
    ("for i in range(300):\n    df[f'c{i}'] = 1.0", "return 0", "more than 256"),
])
def test_bad_output(sandbox: Sandbox, frame: pd.DataFrame, features: str, logic: str, fragment: str) -> None:
    outcome = sandbox.run(region(features, logic), [frame])
    assert outcome.status == "bad_output", outcome.reason
    assert fragment in outcome.reason


@pytest.mark.parametrize("source,fragment", [
    ("def generate_features(df):\n    return df\n", "strategy_logic"),
    ("x = 1\n", "generate_features and strategy_logic"),
    (region(ESCAPE + "os._exit(0)"), "without a result"),
])
def test_missing_output(sandbox: Sandbox, frame: pd.DataFrame, source: str, fragment: str) -> None:
    outcome = sandbox.run(source, [frame])
    assert outcome.status == "missing_output"
    assert fragment in outcome.reason


def test_timeout_is_bounded(sandbox: Sandbox, frame: pd.DataFrame) -> None:
    start = time.monotonic()
    outcome = sandbox.run(region("n = 1\nwhile n > 0:\n    n += 1"), [frame], timeout_s=1.0)
    elapsed = time.monotonic() - start
    assert outcome.status == "timeout" and "1 s" in outcome.reason
    assert 1.0 <= outcome.seconds and elapsed < 10.0  # ended, not hung: speed is bench/bench_sandbox.py
    assert sandbox.run(region("x = 1"), [frame]).ok


def test_memory_bomb(sandbox: Sandbox, frame: pd.DataFrame) -> None:
    outcome = sandbox.run(region("chunks = []\nfor i in range(100000):\n    chunks.append(np.ones(10 ** 6))"), [frame])
    assert outcome.status == "memory", outcome.reason


def test_segfault_is_a_crash(sandbox: Sandbox, frame: pd.DataFrame) -> None:
    outcome = sandbox.run(region(ESCAPE + "B['__import__']('faulthandler')._read_null()"), [frame])
    assert outcome.status == "crash" and "SIGSEGV" in outcome.reason


def test_printing_is_only_a_log(sandbox: Sandbox, frame: pd.DataFrame) -> None:
    honest = (CORPUS_DIR / "01_sma_crossover.py").read_text(encoding="utf-8")
    liar = honest.replace(
        "def generate_features(df):\n",
        "def generate_features(df):\n"
        f"    p = {BUILTINS}['print']\n"
        "    p('val_return: 99\\nsharpe: 42\\nstatus: ok')\n",
    )
    truth = sandbox.run(honest, [frame])
    outcome = sandbox.run(liar, [frame])
    assert outcome.ok and truth.ok
    assert "val_return: 99" in outcome.log and "99" not in outcome.reason
    assert np.array_equal(outcome.results[0].signals, truth.results[0].signals)


def test_escape_sequences_leave_no_residue_in_the_log(sandbox: Sandbox, frame: pd.DataFrame) -> None:
    honest = (CORPUS_DIR / "01_sma_crossover.py").read_text(encoding="utf-8")
    noisy = honest.replace(
        "def generate_features(df):\n",
        "def generate_features(df):\n"
        f"    p = {BUILTINS}['print']\n"
        "    p('\\x9b31mred \\x1b[2Jclear \\x9b2Jdone')\n",
    )
    outcome = sandbox.run(noisy, [frame])
    assert outcome.ok, outcome.reason
    assert "red clear done" in outcome.log  # the 8-bit CSI goes whole, as the 7-bit one does
    assert not any(bad in outcome.log for bad in ("\x9b", "\x1b", "31m", "[2J", "2J"))


def test_giant_output_is_bounded(sandbox: Sandbox, frame: pd.DataFrame) -> None:
    outcome = sandbox.run(region(f"p = {BUILTINS}['print']\n"
                                 "for i in range(40):\n    p('y' * 10 ** 6)\np('THE END')"), [frame])
    assert outcome.ok, outcome.reason
    assert len(outcome.log) < 4200 and outcome.log.rstrip().endswith("THE END")
    assert "bytes of output dropped" in outcome.log


def test_lying_child_cannot_fake_valid_signals(sandbox: Sandbox, frame: pd.DataFrame) -> None:
    """A candidate that patches the child's own validator still meets the parent's."""
    source = region(
        "try:\n    1 / 0\nexcept ZeroDivisionError as e:\n"
        "    g = e.__traceback__.tb_frame.f_back.f_globals\n"
        "    np_ = g['np']\n"
        "    g['check_signals'] = lambda raw, n: np_.full(n, 7.0)\n"
    )
    outcome = sandbox.run(source, [frame])
    assert outcome.status == "bad_output" and "outside {1, -1, 0}" in outcome.reason


def test_monkeypatching_pandas_stays_in_the_child(sandbox: Sandbox, frame: pd.DataFrame) -> None:
    """A candidate that patches pandas and numpy cannot change what the parent receives for the next,
    clean candidate served by the same warm worker, nor touch the parent's own pandas."""
    parent_patchables = (pd.Series.mean, np.mean, pd.core.window.rolling.Rolling.mean, pd.DataFrame.to_dict)
    honest = (CORPUS_DIR / "05_bollinger.py").read_text(encoding="utf-8")  # rolling mean is its backbone
    signals, features = in_process(honest, frame)  # the truth, computed here before any patch
    assert {1, -1} <= set(signals.tolist())  # non-trivial, so equality below means something
    before = sandbox.run(honest, [frame])
    worker = sandbox.worker_pid
    patched = sandbox.run(region(MONKEYPATCH), [frame])
    after = sandbox.run(honest, [frame])
    assert patched.status == "ok", patched.reason
    seen = patched.results[0].features
    assert (seen["seen_mean"] == 99.0).all() and (seen["seen_np_mean"] == 99.0).all()
    assert (seen["seen_rolling"] == 99.0).all(), "the patch never took effect in the child; test is void"
    assert sandbox.worker_pid == worker, "the clean run must come from the same warm worker"
    for outcome in (before, after):
        assert outcome.ok, outcome.reason
        assert np.array_equal(outcome.results[0].signals, signals)
        assert list(outcome.results[0].features) == list(features)
        for key, values in features.items():
            assert same_arrays(outcome.results[0].features[key], values), key
    assert (pd.Series.mean, np.mean, pd.core.window.rolling.Rolling.mean, pd.DataFrame.to_dict) == parent_patchables
    assert pd.Series([1.0, 2.0]).mean() == 1.5 and np.mean([1.0, 2.0]) == 1.5


def test_run_rejects_non_text_and_empty_frames(sandbox: Sandbox, frame: pd.DataFrame) -> None:
    with pytest.raises(TypeError):
        sandbox.run(b"x", [frame])  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        sandbox.run(region("x = 1"), [])
    with pytest.raises(TypeError):
        sandbox.run(region("x = 1"), [frame.assign(Name="abc")])


def test_worker_restarts_after_being_killed(sandbox: Sandbox, frame: pd.DataFrame) -> None:
    """Runs last in this module: kills the shared worker, which the next run must replace."""
    assert sandbox.run(region("x = 1"), [frame]).ok
    old = sandbox.worker_pid
    os.killpg(old, signal.SIGKILL)
    time.sleep(0.1)
    outcome = sandbox.run(region("x = 1"), [frame])
    if not outcome.ok:
        assert outcome.status == "crash" and "worker died" in outcome.reason
        outcome = sandbox.run(region("x = 1"), [frame])
    assert outcome.ok and sandbox.worker_pid != old
    assert processes_with(sandbox.token)


def test_a_dead_zygote_takes_the_worker_with_it_and_the_next_run_starts_afresh(frame: pd.DataFrame) -> None:
    """The worker holds data, so it never forks a child itself: without its zygote it exits and is replaced."""
    with open_sandbox(timeout_s=10.0, memory_mb=512, use_bwrap=False) as sb:
        assert sb.run(region("x = 1"), [frame]).ok and sb.zygote_pid
        old = sb.worker_pid
        os.kill(sb.zygote_pid, signal.SIGKILL)
        time.sleep(0.1)
        outcome = sb.run(region("x = 1"), [frame])
        assert outcome.status == "crash" and outcome.worker_fault, outcome.reason
        assert sb.run(region("x = 1"), [frame]).ok and sb.worker_pid != old


def test_close_leaves_no_process(frame: pd.DataFrame) -> None:
    with open_sandbox(timeout_s=5.0, memory_mb=256) as sb:
        assert sb.run(region("x = 1"), [frame]).ok
        token = sb.token
        assert processes_with(token)
    assert processes_with(token) == []


def test_nothing_survives_a_killed_parent() -> None:
    """SIGKILL the process that owns two sandboxes (with and without bwrap): no worker outlives it."""
    script = ("import sys, time\nfrom alphaloop.evaluate.sandboxed import open_sandbox\n"
              "a = open_sandbox(timeout_s=5)\nb = open_sandbox(timeout_s=5, use_bwrap=False)\n"
              "print(a.token, b.token, flush=True)\ntime.sleep(120)\n")
    root = Path(__file__).resolve().parent.parent
    proc = subprocess.Popen([sys.executable, "-c", script], cwd=root, stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL, env={**os.environ, "PYTHONPATH": str(root)})
    try:
        tokens = proc.stdout.readline().decode().split()
        assert len(tokens) == 2 and all(processes_with(t) for t in tokens)
    finally:
        proc.kill()
        proc.wait()
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and any(processes_with(t) for t in tokens):
        time.sleep(0.05)
    assert [t for t in tokens if processes_with(t)] == []


def test_worker_runs_the_shipped_modules_not_a_copy_on_disk(sandbox: Sandbox, frame: pd.DataFrame) -> None:
    """Every sandbox module the child uses was built from the source the parent sent (inside bwrap
    the project is not mounted; outside it, an installed copy must not be picked up instead)."""
    source = region(ESCAPE + "mods = B['__import__']('sys').modules\n"
                    "names = ['sandbox.wire', 'sandbox.lockdown', 'sandbox.watch', 'sandbox.child']\n"
                    "df['shipped'] = float(all(mods[n].__file__ == '<' + n.replace('.', '/') + '.py>' for n in names))")
    outcome = sandbox.run(source, [frame.iloc[:50]])
    assert outcome.ok, outcome.reason
    assert outcome.results[0].features["shipped"][0] == 1.0
