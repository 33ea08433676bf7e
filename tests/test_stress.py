"""Stress paths have the statistical properties alphaloop/evaluate/stress.py claims, for a fixed seed."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from alphaloop.candidate import extract_region, template_text
from alphaloop.evaluate.scoring import History
from alphaloop.evaluate.stress import (
    CRASH_GAPS,
    FAILED_PENALTY,
    REGIME_VOL,
    VOL_FACTORS,
    StressPath,
    run_stress,
    stress_adjusted,
    stress_frames,
    stress_penalty,
)
from tests.conftest import InProcessSandbox
from tests.test_sandbox_support import make_ohlcv

N_PATHS = 40
ALWAYS_LONG = """
def generate_features(df):
    df["one"] = 1.0
    return df


def strategy_logic(row):
    return 1
"""


@pytest.fixture(scope="module")
def history() -> History:
    frame = make_ohlcv(1500, seed=11)
    return History.from_splits({"train": frame.iloc[:1000], "val": frame.iloc[1000:]})


@pytest.fixture(scope="module")
def paths(history: History) -> list[StressPath]:
    return stress_frames(history, "val", n_paths=N_PATHS, seed=7)


def log_returns(p: StressPath) -> np.ndarray:
    """Close-to-close log returns of the synthetic window, the first one from the warm-up's close."""
    close = p.frame["Close"].to_numpy()
    return np.diff(np.log(close[p.window.start - 1 : p.window.stop]))


def by_scenario(paths: list[StressPath], name: str) -> list[StressPath]:
    return [p for p in paths if p.scenario == name]


def source_moments(history: History) -> tuple[float, float]:
    close = history.frame["Close"].to_numpy()
    w = history.windows["val"]
    r = np.diff(np.log(close[w.start - 1 : w.stop]))
    return float(r.mean()), float(r.std(ddof=1))


def test_scenarios_and_shapes(history: History, paths: list[StressPath]) -> None:
    names = ["bootstrap", "vol_1.5x", "vol_2x", "crash_10", "crash_20", "regimes"]
    assert [p.scenario for p in paths[::N_PATHS]] == names
    assert len(paths) == len(names) * N_PATHS
    val = history.windows["val"]
    for p in paths[:: N_PATHS // 2]:
        assert p.window.stop - p.window.start == val.stop - val.start
        assert p.frame.index[p.window].equals(history.frame.index[val])  # the split's own dates
        warm = history.frame.iloc[val.start - p.window.start : val.start]
        pd.testing.assert_frame_equal(p.frame.iloc[: p.window.start], warm)  # real warm-up, untouched
        assert list(p.frame.columns) == list(history.frame.columns)


def test_every_synthetic_bar_is_consistent(paths: list[StressPath]) -> None:
    for p in paths:
        w = p.frame.iloc[p.window]
        o, h, lo, c, v = (w[k].to_numpy() for k in ("Open", "High", "Low", "Close", "Volume"))
        assert np.isfinite(w.to_numpy()).all()
        assert (lo > 0).all() and (v >= 0).all()
        assert (lo <= np.minimum(o, c)).all() and (np.maximum(o, c) <= h).all()
        np.testing.assert_allclose(w["Adj Close"].to_numpy() / c, 1.0)


def test_bootstrap_keeps_mean_and_volatility(history: History, paths: list[StressPath]) -> None:
    mu, sigma = source_moments(history)
    pooled = np.concatenate([log_returns(p) for p in by_scenario(paths, "bootstrap")])
    assert abs(pooled.mean() - mu) < 3e-4  # ~3.5 standard errors for 40 paths of 500 bars
    assert pooled.std(ddof=1) == pytest.approx(sigma, rel=0.05)
    firsts = [log_returns(p)[:5] for p in by_scenario(paths, "bootstrap")]
    assert len({tuple(np.round(f, 12)) for f in firsts}) > N_PATHS // 2  # paths differ from each other


@pytest.mark.parametrize("factor", VOL_FACTORS)
def test_volatility_scaled_with_the_same_drift(history: History, paths: list[StressPath], factor: float) -> None:
    mu, sigma = source_moments(history)
    base = by_scenario(paths, "bootstrap")
    scaled = by_scenario(paths, f"vol_{factor:g}x")
    for b, s in zip(base, scaled, strict=True):  # paired draws: exactly the factor on every path
        assert log_returns(s).std(ddof=1) == pytest.approx(factor * log_returns(b).std(ddof=1), rel=1e-9)
    pooled = np.concatenate([log_returns(p) for p in scaled])
    assert pooled.std(ddof=1) == pytest.approx(factor * sigma, rel=0.05)
    assert abs(pooled.mean() - mu) < factor * 3e-4


@pytest.mark.parametrize("gap", CRASH_GAPS)
def test_crash_paths_hold_exactly_the_gap_on_one_day(paths: list[StressPath], gap: float) -> None:
    base = by_scenario(paths, "bootstrap")
    crashed = by_scenario(paths, f"crash_{round(-gap * 100)}")
    for b, c in zip(base, crashed, strict=True):
        rb = np.expm1(log_returns(b))
        rc = np.expm1(log_returns(c))
        differs = np.flatnonzero(~np.isclose(rb, rc, rtol=0, atol=1e-12))
        assert differs.tolist() == [c.info["crash_row"]]
        assert rc[c.info["crash_row"]] == pytest.approx(gap, abs=1e-12)
        bar = c.frame.iloc[c.window.start + c.info["crash_row"]]
        assert bar["Open"] == pytest.approx(bar["Close"])  # a gap, not an intraday slide
    days = {c.info["crash_row"] for c in crashed}
    assert len(days) > N_PATHS // 2  # random days, not one fixed date


def test_regime_path_has_two_volatility_regimes(paths: list[StressPath]) -> None:
    calm, turbulent = [], []
    for p in by_scenario(paths, "regimes"):
        r, s = log_returns(p), p.info["states"]
        calm.append(r[s == 0])
        turbulent.append(r[s == 1])
    calm_sd, turb_sd = np.concatenate(calm).std(), np.concatenate(turbulent).std()
    share = sum(t.size for t in turbulent) / sum(t.size + c.size for t, c in zip(turbulent, calm, strict=True))
    assert turb_sd / calm_sd == pytest.approx(REGIME_VOL[1] / REGIME_VOL[0], rel=0.15)
    assert 0.1 < share < 0.4  # stationary share of the turbulent state is ~0.23
    switches = [int(np.count_nonzero(np.diff(p.info["states"]))) for p in by_scenario(paths, "regimes")]
    assert np.median(switches) >= 4  # spells, not one regime per path


def test_deterministic_for_a_seed(history: History) -> None:
    a = stress_frames(history, "val", n_paths=3, seed=5)
    b = stress_frames(history, "val", n_paths=3, seed=5)
    c = stress_frames(history, "val", n_paths=3, seed=6)
    for x, y in zip(a, b, strict=True):
        pd.testing.assert_frame_equal(x.frame, y.frame)
    assert not all(x.frame.equals(z.frame) for x, z in zip(a, c, strict=True))


def test_refuses_the_test_split(history: History) -> None:
    with pytest.raises(ValueError):
        stress_frames(history, "test", n_paths=2)


def test_run_stress_one_runner_call_and_json(history: History) -> None:
    sandbox = InProcessSandbox()
    region = extract_region(template_text())
    out = run_stress(region, history, sandbox, cost_bps=2.0, n_paths=4, seed=1)
    assert sandbox.calls == [1 + 6 * 4]  # the real history plus every path, in one fork
    assert out["status"] == "ok"
    json.dumps(out, allow_nan=False)
    for scen in out["scenarios"].values():
        for side in ("strategy", "buy_hold"):
            for key in ("total_return", "max_drawdown"):
                q = scen[side][key]
                assert q["p5"] <= q["p50"] <= q["p95"]
    costs = out["costs"]
    assert costs["5x"]["total_return"] <= costs["2x"]["total_return"] <= costs["1x"]["total_return"]
    assert costs["1x"]["round_trips"] > 0
    worst = min(s["strategy"]["max_drawdown"]["p5"] for s in out["scenarios"].values())
    assert stress_penalty(out) == out["penalty"] == worst < 0
    assert stress_adjusted(1.0, out) == pytest.approx(1.0 + worst)


def test_always_long_matches_buy_and_hold(history: History) -> None:
    calls: list[int] = []

    def plain_runner(region: str, frames: list[pd.DataFrame]) -> list[np.ndarray]:
        calls.append(len(frames))
        return [np.ones(len(f), dtype=np.int8) for f in frames]

    real = np.ones(len(history.frame), dtype=np.int8)
    out = run_stress(ALWAYS_LONG, history, plain_runner, cost_bps=0.0, n_paths=3, seed=2, real_signals=real)
    assert calls == [6 * 3]
    for scen in out["scenarios"].values():
        for key in ("total_return", "max_drawdown"):
            for q in ("p5", "p50", "p95"):
                assert scen["strategy"][key][q] == pytest.approx(scen["buy_hold"][key][q], abs=1e-12)
    assert out["costs"]["5x"]["total_return"] == pytest.approx(out["costs"]["1x"]["bh_total_return"])


def test_failed_runner_is_an_outcome_not_a_crash(history: History) -> None:
    region = "def generate_features(df):\n    raise RuntimeError('boom')\n\n\ndef strategy_logic(row):\n    return 0\n"
    out = run_stress(region, history, InProcessSandbox(), n_paths=2)
    assert out["status"] == "failed" and "boom" in out["reason"]
    assert stress_penalty(out) == FAILED_PENALTY
    assert stress_penalty(None) == stress_penalty({"error": "x"}) == FAILED_PENALTY


def test_cross_market_splits_on_the_primary_dates_and_drops_the_test_period(frozen_data) -> None:
    from alphaloop.data.frozen import read_manifest
    from alphaloop.evaluate.cross_market import load_cross_history

    manifest = read_manifest(frozen_data)
    cross, label = load_cross_history(manifest, None)
    assert "NASDAQ" in label
    idx, sp = cross.frame.index, manifest["splits"]
    train, val = idx[cross.windows["train"]], idx[cross.windows["val"]]
    assert str(train[0].date()) >= sp["train"]["start"] and str(train[-1].date()) <= sp["train"]["end"]
    assert str(val[0].date()) > sp["train"]["end"] and str(val[-1].date()) <= sp["val"]["end"]
    assert set(cross.windows) == {"train", "val"} and idx[-1] == val[-1]  # nothing from the test period


def test_cross_market_falls_back_loudly_to_the_sample(frozen_data, monkeypatch: pytest.MonkeyPatch) -> None:
    import alphaloop.evaluate.cross_market as cm
    from alphaloop.data.frozen import DataError, read_manifest

    def offline(ticker: str, start: str | None) -> pd.DataFrame:
        raise DataError(f"yfinance download of {ticker} failed: no network")

    shown: list[str] = []
    monkeypatch.setattr(cm, "download_yfinance", offline)
    monkeypatch.setattr(cm, "warn_loudly", lambda title, body: shown.append(body))
    cross, label = cm.load_cross_history(read_manifest(frozen_data), "^IXIC")
    assert "fallback" in label and "^IXIC" in label and "NASDAQ" in label
    assert shown and "no network" in shown[0]


def test_score_cross_per_member_with_a_failure(frozen_data) -> None:
    from rich.console import Console

    from alphaloop.data.frozen import read_manifest
    from alphaloop.evaluate.cross_market import format_cross, load_cross_history, score_cross

    cross, label = load_cross_history(read_manifest(frozen_data), None)
    sandbox = InProcessSandbox()
    members = score_cross({4: ALWAYS_LONG, 9: "x = 1\n"}, cross, sandbox, "sharpe", 0.0)
    assert sandbox.calls == [1, 1]
    assert set(members[4]) == {"train", "val"} and "error" in members[9]
    val = members[4]["val"]
    assert val["total_return"] == pytest.approx(val["bh_total_return"]) and val["start"] > members[4]["train"]["end"]
    console = Console(record=True, width=140)
    summary = {"label": label, "metric": "sharpe", "members": {str(k): v for k, v in members.items()}}
    console.print(format_cross(summary))
    text = console.export_text()
    assert "Second market" in text and "val sharpe" in text and "iter 9 failed" in text


def test_the_real_sandbox_gives_the_same_stress_figures(history: History, real_sandbox) -> None:
    region = extract_region(template_text())
    local = run_stress(region, history, InProcessSandbox(), n_paths=2, seed=3)
    isolated = run_stress(region, history, real_sandbox, n_paths=2, seed=3, timeout_s=60.0)
    assert isolated["status"] == "ok", isolated.get("reason")
    drop = ("seconds",)
    assert {k: v for k, v in isolated.items() if k not in drop} == {k: v for k, v in local.items() if k not in drop}
