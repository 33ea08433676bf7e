"""Dividend-adjusted returns: with an Adj Close that carries dividends, returns and buy and hold rest on it
(``data.return_column`` picks it, once), while features still see Close as traded; without, nothing changes."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from alphaloop.data.frozen import freeze, load_splits, return_column, return_prices
from alphaloop.evaluate.backtest import TRADING_DAYS
from alphaloop.evaluate.scoring import History, score
from alphaloop.evaluate.stress import run_stress
from tests.conftest import InProcessSandbox

YIELD = 0.02  # a year
DAILY = np.log1p(YIELD) / TRADING_DAYS


def frames(dividends: bool, n: int = 2520, seed: int = 1) -> dict[str, pd.DataFrame]:
    """Ten years of a seeded random walk; Adj Close = Close grown by 2% a year (backward-adjusted: equal at the end)."""
    rng = np.random.default_rng(seed)
    close = 100 * np.exp(np.cumsum(rng.normal(0.0002, 0.01, n)))
    dates = pd.bdate_range("2000-01-03", periods=n, name="Date")
    frame = pd.DataFrame({"Open": close * (1 + rng.normal(0, 0.002, n)), "High": close * 1.01,
                          "Low": close * 0.99, "Close": close, "Volume": 1e6}, index=dates)
    frame["High"] = frame[["Open", "High", "Close"]].max(axis=1)
    frame["Low"] = frame[["Open", "Low", "Close"]].min(axis=1)
    frame["Adj Close"] = close * np.exp(DAILY * (np.arange(n) - (n - 1))) if dividends else close
    cut = int(n * 0.75)
    return {"train": frame.iloc[:cut], "val": frame.iloc[cut:]}


def half_invested(n: int) -> np.ndarray:
    """Long 10 bars, flat 10 bars, over and over: about half the days invested, whatever the prices."""
    phase = np.arange(n) % 20
    return np.where(phase == 0, 1, np.where(phase == 10, -1, 0)).astype(np.int8)


def test_the_one_choice_and_its_words() -> None:
    assert return_column(frames(True).values()) == "Adj Close"
    assert return_column(frames(False).values()) == "Close"
    assert return_column([f.drop(columns="Adj Close") for f in frames(True).values()]) == "Close"
    assert return_prices(frames(True).values()).startswith("Adj Close (dividends reinvested")
    assert "equals Close" in return_prices(frames(False).values())
    assert "no Adj Close" in return_prices([f.drop(columns="Adj Close") for f in frames(True).values()])


def test_buy_and_hold_gains_the_dividend_and_a_half_invested_rule_about_half() -> None:
    plain, adjusted = History.from_splits(frames(False)), History.from_splits(frames(True))
    assert (plain.prices, adjusted.prices) == ("Close", "Adj Close")
    signals = half_invested(len(plain.frame))
    a, b = score(plain, signals), score(adjusted, signals)
    for split in ("train", "val"):
        years = (b.splits[split]["bars"] - 1) / TRADING_DAYS
        bh_gain = ((1 + b.splits[split]["bh_total_return"]) / (1 + a.splits[split]["bh_total_return"])) ** (1 / years)
        assert bh_gain - 1 == pytest.approx(YIELD, rel=1e-6)  # buy and hold: the whole 2% a year
        gain = ((1 + b.splits[split]["total_return"]) / (1 + a.splits[split]["total_return"])) ** (1 / years) - 1
        exposure = b.splits[split]["exposure"]
        assert 0.45 < exposure < 0.55
        assert gain == pytest.approx((1 + YIELD) ** exposure - 1, rel=1e-6)  # only while invested: about 1%
        # positions and trades do not move: the features and signals saw the same Close
        assert b.splits[split]["round_trips"] == a.splits[split]["round_trips"]
        assert adjusted.bh_returns(split).mean() > plain.bh_returns(split).mean()


def test_next_open_fill_uses_adjusted_opens_too() -> None:
    plain, adjusted = History.from_splits(frames(False)), History.from_splits(frames(True))
    signals = half_invested(len(plain.frame))
    a = score(plain, signals, fill="next_open").splits["val"]
    b = score(adjusted, signals, fill="next_open").splits["val"]
    years = (b["bars"] - 1) / TRADING_DAYS
    assert ((1 + b["bh_total_return"]) / (1 + a["bh_total_return"])) ** (1 / years) - 1 == pytest.approx(YIELD)
    assert 0 < ((1 + b["total_return"]) / (1 + a["total_return"])) ** (1 / years) - 1 < YIELD


def test_stress_paths_keep_each_bar_dividend() -> None:
    region = """
def generate_features(df):
    df["f"] = df["Close"].rolling(10).mean()
    return df


def strategy_logic(row):
    return 1
"""
    plain, adjusted = History.from_splits(frames(False)), History.from_splits(frames(True))
    box = InProcessSandbox()
    a = run_stress(region, plain, box, n_paths=3, seed=0)
    b = run_stress(region, adjusted, box, n_paths=3, seed=0)
    assert a["status"] == b["status"] == "ok"
    growth = np.exp(DAILY * (a["window_bars"] - 1))  # n bars, n - 1 daily returns
    for name in a["scenarios"]:
        for q in ("p5", "p50", "p95"):
            bh_a = a["scenarios"][name]["buy_hold"]["total_return"][q]
            bh_b = b["scenarios"][name]["buy_hold"]["total_return"][q]
            assert 1 + bh_b == pytest.approx((1 + bh_a) * growth, rel=1e-9), (name, q)


def test_the_report_and_manifest_name_the_adjusted_prices(tmp_path: Path) -> None:
    from alphaloop.present.report import load_run, render_report

    parts = frames(True)
    n = len(parts["val"])
    parts = {"train": parts["train"], "val": parts["val"].iloc[: n // 2], "test": parts["val"].iloc[n // 2:]}
    out = tmp_path / "data"
    freeze(parts, out, "csv:synthetic.csv", "SYN", [])
    manifest = json.loads((out / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["return_prices"].startswith("Adj Close (dividends reinvested")
    wd = tmp_path / "run"
    wd.mkdir()
    (wd / "state.json").write_text("{}", encoding="utf-8")
    run = load_run(wd, out)
    assert run.prices == "Adj Close" and History.from_splits(load_splits(out)).prices == "Adj Close"
    assert "returns and buy and hold on Adj Close (dividends reinvested" in render_report(run)
