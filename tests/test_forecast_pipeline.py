"""The forecast task end to end through the real gate, sandbox, look-ahead probes and scores."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from alphaloop.commands.check import run_check
from alphaloop.evaluate.pipeline import EvalContext, evaluate
from alphaloop.tasks import get_task
from alphaloop.tasks.forecast.offline import BASELINE_SPEC, render
from alphaloop.tasks.forecast.scores import GRADES, SUMMARY_KEYS
from sandbox.gate import check, task_check
from tests.forecast_support import history_of, synthetic_bars

THIRDS = """
def generate_features(df):
    return df

def forecast(row):
    return {h: (1 / 3, 1 / 3, 1 / 3) for h in (1, 3, 5, 10)}
"""
OVERCONFIDENT = """
def generate_features(df):
    df["up_day"] = (df["Close"] > df["Close"].shift(1)).astype(float)
    return df

def forecast(row):
    p = (0.01, 0.01, 0.98) if row["up_day"] == 1.0 else (0.98, 0.01, 0.01)
    return {h: p for h in (1, 3, 5, 10)}
"""
PEEKING = """
def generate_features(df):
    df["later"] = df["Close"].shift(-5) / df["Close"] - 1
    return df

def forecast(row):
    up = row["later"] == row["later"] and row["later"] > 0
    p = (0.2, 0.3, 0.5) if up else (0.5, 0.3, 0.2)
    return {h: p for h in (1, 3, 5, 10)}
"""
# The leak hides in a text column, which the sandbox does not send back: only the probabilities show it.
PEEK_IN_FORECAST_ONLY = """
def generate_features(df):
    df["z"] = np.where(df["Close"].shift(-1) > df["Close"], "up", "down")
    return df[["z"]]

def forecast(row):
    return {h: ((0.2, 0.3, 0.5) if row["z"] == "up" else (0.5, 0.3, 0.2)) for h in (1, 3, 5, 10)}
"""


def bad_forecaster(value: str) -> str:
    return f"""
def generate_features(df):
    return df

def forecast(row):
    out = {{h: (1 / 3, 1 / 3, 1 / 3) for h in (1, 3, 5, 10)}}
    {value}
    return out
"""


@pytest.fixture(scope="module")
def history():
    return history_of(synthetic_bars(1500, seed=11))


def run(region: str, history, box) -> object:
    return evaluate(region, EvalContext(histories=(history,), sandbox=box, task=get_task("forecast"),
                                        eval_timeout_s=120.0))


def test_gate_asks_each_task_for_its_own_functions():
    assert task_check("forecast")(THIRDS).ok
    trade = check(THIRDS)
    assert not trade.ok and "strategy_logic" in trade.reason
    missing = task_check("forecast")("def generate_features(df):\n    return df\n\ndef strategy_logic(row):\n"
                                     "    return 0\n")
    assert not missing.ok and missing.rule == "contract" and "forecast" in missing.reason
    two_args = task_check("forecast")("def generate_features(df):\n    return df\n\ndef forecast(a, b):\n"
                                      "    return {}\n")
    assert not two_args.ok and "forecast must accept exactly one positional argument" in two_args.reason


def test_sandbox_returns_validated_probabilities(history, real_sandbox):
    out = real_sandbox.run(render(BASELINE_SPEC), [history.frame], task="forecast")
    assert out.ok, out.reason
    probs = out.results[0].forecasts
    assert probs.shape == (len(history.frame), 4, 3) and probs.dtype == np.float64
    assert np.allclose(probs.sum(axis=2), 1.0) and (probs >= 0).all()


def test_constant_thirds_is_climatology_with_skill_zero(history, real_sandbox):
    ev = run(THIRDS, history, real_sandbox)
    assert ev.accepted, ev.reason
    val = ev.scores.splits["val"]
    # climatology is measured on train, so on train a third each is it exactly (up to the tercile ties)
    assert abs(ev.scores.splits["train"]["rps_skill_mean"]) < 1e-3
    assert abs(val["rps_skill_mean"]) < 0.02
    assert set(val) == set(SUMMARY_KEYS)


def test_overconfident_forecaster_is_punished(history, real_sandbox):
    ev = run(OVERCONFIDENT, history, real_sandbox)
    assert ev.accepted, ev.reason
    val = ev.scores.splits["val"]
    assert val["rps_skill_mean"] < -0.5
    for h in ("1", "10"):
        g = val["grades"][h]
        assert g["overconfident_wrong"] > g["calibrated_correct"]
        assert val["reward"][h] < 0


@pytest.mark.parametrize("region", [PEEKING, PEEK_IN_FORECAST_ONLY])
def test_forecaster_reading_future_closes_is_rejected_at_lookahead(history, real_sandbox, region):
    ev = run(region, history, real_sandbox)
    assert not ev.accepted and ev.stage == "lookahead", (ev.stage, ev.reason)
    assert ev.reason.startswith("look-ahead:")
    if region is PEEK_IN_FORECAST_ONLY:
        assert "forecast h=" in ev.reason


@pytest.mark.parametrize(("line", "words"), [
    ("out[3] = (0.5, 0.5, 0.5)", ["horizon 3", "sum to 1.5"]),
    ("out[5] = (1.2, -0.1, -0.1)", ["horizon 5", "negative"]),
    ("out[10] = (float('nan'), 0.5, 0.5)", ["horizon 10", "not all finite"]),
    ("del out[1]", ["horizon 1", "missing"]),
    ("out[3] = 'up'", ["horizon 3", "not three numbers"]),
])
def test_invalid_probabilities_are_rejected_naming_horizon_date_and_fault(history, real_sandbox, line, words):
    ev = run(bad_forecaster(line), history, real_sandbox)
    assert not ev.accepted and ev.stage == "sandbox"
    first = str(history.frame.index[0].date())
    for w in [*words, first]:
        assert w in ev.reason, ev.reason


def test_planted_predictable_component_has_positive_skill_through_the_sandbox(real_sandbox):
    history = history_of(synthetic_bars(2500, seed=7))
    spec = {"conditions": [{"kind": "vol", "window": 10, "lookback": 250}], "prior": 30, "memory": 0}
    ev = run(render(spec), history, real_sandbox)
    assert ev.accepted, ev.reason
    assert ev.scores.splits["val"]["rps_skill_mean"] > 0.02


def test_check_task_forecast_prints_forecast_verdict(tmp_path: Path, frozen_data: Path, real_sandbox,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    file = tmp_path / "fc.py"
    file.write_text(render(BASELINE_SPEC), encoding="utf-8")
    code = run_check(file, frozen_data, sandbox=real_sandbox, task="forecast", eval_timeout_s=120.0)
    out = capsys.readouterr().out.strip().splitlines()
    verdict = json.loads(out[-1])
    assert code == 0 and verdict["accepted"] and verdict["stage"] == "ok"
    metrics = verdict["metrics"]
    assert metrics["metric"] == "rps_skill_mean"
    for split in ("train", "val"):
        s = metrics["splits"][split]
        assert set(s) == set(SUMMARY_KEYS) and set(s["rps_skill"]) == {"1", "3", "5", "10"}
        assert set(s["grades"]["1"]) == set(GRADES)
    assert metrics["folds"] and "cut_points" in metrics["buckets"]
    # the date and level guards judge a forecaster's probabilities too (the trade guards do not apply)
    assert any("climatology" in line for line in out)
    assert any(line.strip().startswith("guards") and "not" not in line and "REJECTED" not in line for line in out)


def test_check_refuses_unknown_task(tmp_path: Path, frozen_data: Path, capsys: pytest.CaptureFixture[str]) -> None:
    file = tmp_path / "fc.py"
    file.write_text(THIRDS, encoding="utf-8")
    assert run_check(file, frozen_data, task="weather") == 2
    assert "unknown task" in capsys.readouterr().err
