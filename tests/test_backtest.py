"""The backtester against hand-computed cases and a plain row-by-row reference loop."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from alphaloop.evaluate.backtest import backtest, max_drawdown, positions_from_signals

ROOT = Path(__file__).resolve().parent.parent


def reference_total_return(close: np.ndarray, signals: np.ndarray, cost_bps: float) -> float:
    """The seed's loop, written the slow obvious way: fill at the signal bar's close."""
    cost = cost_bps / 1e4
    equity, pos = 1.0, 0
    for t in range(len(close)):
        if t > 0:
            equity *= 1 + pos * (close[t] / close[t - 1] - 1)
        new = pos
        if t == len(close) - 1:
            new = 0
        elif signals[t] == 1 and pos == 0:
            new = 1
        elif signals[t] == -1 and pos == 1:
            new = 0
        if new != pos:
            equity *= 1 - cost
        pos = new
    return equity - 1


def test_fill_at_signal_close_earns_the_next_bar() -> None:
    close = np.array([100.0, 110.0, 121.0, 121.0])
    r = backtest(close, np.array([0, 1, 0, 0]), cost_bps=0)
    assert r.returns.tolist() == pytest.approx([0.0, 0.1, 0.0])
    assert r.positions.tolist() == [0, 1, 1, 0]
    assert r.metrics["total_return"] == pytest.approx(0.1)
    assert r.metrics["round_trips"] == 1 and r.metrics["win_rate"] == 1.0


def test_costs_are_charged_on_entry_and_exit() -> None:
    close = np.array([100.0, 100.0, 100.0, 100.0])
    r = backtest(close, np.array([1, 0, -1, 0]), cost_bps=10)
    assert r.metrics["total_return"] == pytest.approx(0.999 * 0.999 - 1)
    assert r.metrics["win_rate"] == 0.0 and r.metrics["turnover"] > 0


def test_open_position_is_closed_at_the_last_bar_with_its_cost() -> None:
    close = np.array([100.0, 105.0, 110.0])
    r = backtest(close, np.array([1, 0, 0]), cost_bps=100)
    assert r.positions[-1] == 0
    assert r.metrics["total_return"] == pytest.approx(0.99 * 1.1 * 0.99 - 1)
    assert r.metrics["round_trips"] == 1


def test_all_flat_earns_nothing_and_always_long_is_buy_and_hold() -> None:
    rng = np.random.default_rng(3)
    close = 100 * np.exp(np.cumsum(rng.normal(0, 0.01, 300)))
    flat = backtest(close, np.zeros(300, dtype=int), cost_bps=2)
    assert flat.metrics["total_return"] == 0 and flat.metrics["round_trips"] == 0 and flat.metrics["exposure"] == 0
    long = backtest(close, np.ones(300, dtype=int), cost_bps=0)
    assert long.metrics["total_return"] == pytest.approx(close[-1] / close[0] - 1)
    assert long.metrics["total_return"] == pytest.approx(long.metrics["bh_total_return"])
    assert long.metrics["sharpe"] == pytest.approx(long.metrics["bh_sharpe"])
    assert long.metrics["max_drawdown"] == pytest.approx(long.metrics["bh_max_drawdown"])


def test_repeated_entries_and_exits_do_not_stack() -> None:
    assert positions_from_signals(np.array([1, 1, 0, -1, -1, 1, 0, 0])).tolist() == [1, 1, 1, 0, 0, 1, 1, 1]
    assert positions_from_signals(np.array([-1, 0, 0])).tolist() == [0, 0, 0]


@pytest.mark.parametrize("seed", range(8))
@pytest.mark.parametrize("cost_bps", [0.0, 2.0, 25.0])
def test_equals_plain_reference_loop_on_random_signals(seed: int, cost_bps: float) -> None:
    rng = np.random.default_rng(seed)
    n = int(rng.integers(2, 700))
    close = 50 * np.exp(np.cumsum(rng.normal(0, 0.02, n)))
    signals = rng.choice([-1, 0, 1], size=n, p=[0.1, 0.8, 0.1])
    got = backtest(close, signals, cost_bps=cost_bps).metrics["total_return"]
    assert got == pytest.approx(reference_total_return(close, signals, cost_bps), rel=1e-12, abs=1e-12)


def test_metrics_by_hand() -> None:
    r = np.array([0.1, -0.2, 0.05])
    assert max_drawdown(r) == pytest.approx(0.88 / 1.1 - 1)
    close = np.array([100.0, 110.0, 88.0, 92.4])
    res = backtest(close, np.array([1, 0, 0, 0]), cost_bps=0)
    assert res.returns == pytest.approx(r)
    assert res.metrics["sharpe"] == pytest.approx(r.mean() / r.std(ddof=1) * np.sqrt(252))
    assert res.metrics["exposure"] == 1.0


def test_next_open_fill_is_a_labelled_option() -> None:
    close = np.array([100.0, 110.0, 120.0, 120.0])
    open_ = np.array([100.0, 105.0, 115.0, 120.0])
    r = backtest(close, np.array([1, 0, -1, 0]), cost_bps=0, fill="next_open", open_=open_)
    assert r.metrics["total_return"] == pytest.approx(120 / 105 - 1)  # in at open 1, out at open 3
    with pytest.raises(ValueError):
        backtest(close, np.zeros(4), fill="tomorrow")


def test_reference_figure_on_the_arch_sample() -> None:
    """SMA 20/50 crossover on the whole S&P 500 sample 1999-2018, no costs: 38.9186%."""
    from arch.data import sp500

    df = sp500.load()
    c = df["Close"]
    fast, slow = c.rolling(20).mean(), c.rolling(50).mean()
    up = (fast > slow) & (fast.shift() <= slow.shift())
    down = (fast < slow) & (fast.shift() >= slow.shift())
    signals = np.where(up, 1, np.where(down, -1, 0))
    assert backtest(c.to_numpy(), signals, cost_bps=0).metrics["total_return"] == pytest.approx(0.389186, abs=5e-7)


def test_trade_py_output_and_reference_equality(tmp_path: Path) -> None:
    data = tmp_path / "data"
    subprocess.run([sys.executable, str(ROOT / "prepare.py"), "--source", "sample", "--out", str(data)],
                   check=True, capture_output=True, timeout=120)
    res = subprocess.run([sys.executable, str(ROOT / "trade.py"), "--cost-bps", "0", "--data", str(data)],
                         capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    lines = res.stdout.strip().splitlines()
    assert lines[0].startswith("train_return: ") and lines[1].startswith("val_return: ")
    train_return = float(lines[0].split(":")[1])
    payload = json.loads(lines[-1])
    assert set(payload["splits"]) == {"train", "val"} and payload["cost_bps"] == 0
    assert "train split" in res.stdout and "val split" in res.stdout

    import pandas as pd

    train = pd.read_csv(data / "train.csv", index_col="Date", parse_dates=True)
    c = train["Close"]
    fast, slow = c.rolling(20).mean(), c.rolling(50).mean()
    sig = np.where(fast > slow, 1, np.where(fast < slow, -1, 0))
    assert train_return == pytest.approx(reference_total_return(c.to_numpy(), sig, 0.0), abs=1e-6)
    assert payload["splits"]["train"]["total_return"] == pytest.approx(train_return, abs=1e-6)
    # iteration 0 of every run: the level rule on the default sample splits, no costs
    assert train_return == pytest.approx(-0.161899, abs=1e-6)
    assert payload["splits"]["val"]["total_return"] == pytest.approx(0.264456, abs=1e-6)
    assert payload["splits"]["train"]["round_trips"] == 38 and payload["splits"]["val"]["round_trips"] == 15
    assert payload["splits"]["val"]["sharpe"] == pytest.approx(0.640863, abs=1e-6)


def test_trade_py_default_cost_pins_iteration_zero(tmp_path: Path) -> None:
    data = tmp_path / "data"
    subprocess.run([sys.executable, str(ROOT / "prepare.py"), "--source", "sample", "--out", str(data)],
                   check=True, capture_output=True, timeout=120)
    res = subprocess.run([sys.executable, str(ROOT / "trade.py"), "--data", str(data)],
                         capture_output=True, text=True, timeout=120, cwd=tmp_path)
    splits = json.loads(res.stdout.strip().splitlines()[-1])["splits"]
    assert splits["train"]["total_return"] == pytest.approx(-0.174543, abs=1e-6)
    assert splits["val"]["total_return"] == pytest.approx(0.256892, abs=1e-6)
    assert splits["val"]["sharpe"] == pytest.approx(0.625760, abs=1e-6)


def region_total_return(path: Path) -> float:
    """Whole-sample total return (0 cost) of a trade.py-style file's own two functions."""
    from arch.data import sp500

    from alphaloop.candidate import compute_signals, validate_signals

    spec = importlib.util.spec_from_file_location(f"region_{path.stem}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    df = sp500.load()
    _, raw = compute_signals(module.generate_features, module.strategy_logic, df)
    return backtest(df["Close"].to_numpy(), validate_signals(raw, len(df)), cost_bps=0).metrics["total_return"]


def test_starting_region_is_the_level_rule_and_the_example_is_the_crossover() -> None:
    """trade.py: long while SMA20 > SMA50 (38.19% on the whole sample); the example: crossover events (38.9186%)."""
    assert region_total_return(ROOT / "trade.py") == pytest.approx(0.381913, abs=5e-7)
    assert region_total_return(ROOT / "examples" / "sma_crossover.py") == pytest.approx(0.389186, abs=5e-7)


def test_trade_py_without_data_says_how_to_fix(tmp_path: Path) -> None:
    res = subprocess.run([sys.executable, str(ROOT / "trade.py"), "--data", str(tmp_path / "none")],
                         capture_output=True, text=True, timeout=120)
    assert res.returncode == 2 and res.stderr.startswith("error: ") and "prepare.py" in res.stderr


def reference_next_open(open_: np.ndarray, close: np.ndarray, signals: np.ndarray, cost_bps: float) -> list[float]:
    """``fill='next_open'`` the slow obvious way: a signal at bar t's close trades at bar t+1's open.

    Returns the net return of each period close[t-1] -> close[t]; the last bar closes any position
    at its close, paying the cost once more."""
    cost = cost_bps / 1e4
    held, target, out = 0, 0, []
    for t in range(len(close)):
        if t > 0:
            equity = 1.0 + held * (open_[t] / close[t - 1] - 1)
            if target != held:
                equity *= 1 - cost
                held = target
            equity *= 1 + held * (close[t] / open_[t] - 1)
            if t == len(close) - 1 and held:
                equity *= 1 - cost
                held = 0
            out.append(equity - 1)
        if signals[t] == 1:
            target = 1
        elif signals[t] == -1:
            target = 0
    return out


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("cost_bps", [1.0, 5.0, 30.0])
def test_next_open_fill_equals_row_by_row_reference_with_costs(seed: int, cost_bps: float) -> None:
    rng = np.random.default_rng(100 + seed)
    n = int(rng.integers(3, 600))
    close = 50 * np.exp(np.cumsum(rng.normal(0, 0.02, n)))
    open_ = close * np.exp(rng.normal(0, 0.01, n))
    signals = rng.choice([-1, 0, 1], size=n, p=[0.15, 0.7, 0.15])
    got = backtest(close, signals, cost_bps=cost_bps, fill="next_open", open_=open_)
    want = reference_next_open(open_, close, signals, cost_bps)
    assert got.returns == pytest.approx(want, rel=1e-12, abs=1e-12)
    assert got.metrics["total_return"] == pytest.approx(np.prod(1 + np.array(want)) - 1, rel=1e-12, abs=1e-12)
    free = backtest(close, signals, cost_bps=0, fill="next_open", open_=open_).metrics["total_return"]
    if got.metrics["round_trips"]:
        assert got.metrics["total_return"] < free  # the cost is charged, not dropped


def test_next_open_costs_by_hand() -> None:
    close = np.array([100.0, 110.0, 120.0, 120.0])
    open_ = np.array([100.0, 105.0, 115.0, 120.0])
    r = backtest(close, np.array([1, 0, -1, 0]), cost_bps=50, fill="next_open", open_=open_)
    assert r.metrics["total_return"] == pytest.approx(0.995 * 120 / 105 * 0.995 - 1)


def test_best_trade_py_run_from_inside_the_workdir_finds_the_project_data(tmp_path: Path) -> None:
    """`cd train && python best_trade.py` reads ../data; with no data anywhere it names --data ../data."""
    project = tmp_path / "project"
    (project / "train").mkdir(parents=True)
    script = project / "train" / "best_trade.py"
    script.write_text((ROOT / "trade.py").read_text())
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    missing = subprocess.run([sys.executable, "best_trade.py"], cwd=script.parent, env=env,
                             capture_output=True, text=True, timeout=120)
    assert missing.returncode == 2 and "--data ../data" in missing.stderr and "Traceback" not in missing.stderr
    subprocess.run([sys.executable, str(ROOT / "prepare.py"), "--source", "sample", "--out", "data"],
                   cwd=project, check=True, capture_output=True, timeout=120)
    res = subprocess.run([sys.executable, "best_trade.py", "--cost-bps", "2"], cwd=script.parent, env=env,
                         capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    assert "data: ../data/" in res.stderr
    assert res.stdout.splitlines()[0] == "train_return: -0.174543"
    assert "returns on: Close as traded (Adj Close equals Close: a price index without dividends)" in res.stdout
