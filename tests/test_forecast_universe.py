"""A forecaster on a universe: every instrument bucketed by its own train terciles, scores pooled over all
instruments' days, look-ahead probed per instrument and named by number, and one instrument unchanged."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import prepare
from alphaloop.commands.check import run_check
from alphaloop.evaluate.pipeline import EvalContext, evaluate
from alphaloop.tasks import get_task
from alphaloop.tasks.forecast.offline import BASELINE_SPEC, render
from alphaloop.tasks.forecast.pool import score_forecast_universe
from alphaloop.tasks.forecast.scores import GRADES, score_forecasts
from tests.forecast_support import history_of, scheme_of, synthetic_bars
from tests.test_forecast_pipeline import THIRDS

# Peeks at tomorrow's close only on an instrument whose first close is above 150: the second one below.
PEEK_ON_HIGH = """
def generate_features(df):
    high = df["Close"].iloc[0] > 150
    later = df["Close"].shift(-1) / df["Close"] - 1
    df["peek"] = np.where(high & (later == later) & (later > 0), 1.0, 0.0)
    return df

def forecast(row):
    return {h: ((0.2, 0.3, 0.5) if row["peek"] == 1.0 else (1 / 3, 1 / 3, 1 / 3)) for h in (1, 3, 5, 10)}
"""


def wilder(df: pd.DataFrame, factor: float = 3.0, level: float = 1.0) -> pd.DataFrame:
    """The same bars with every log return scaled by ``factor``: the same ranks, bigger moves."""
    close = df["Close"].to_numpy()
    new = level * close[0] * np.exp(factor * np.log(close / close[0]))
    out = df.copy()
    for col in ("Open", "High", "Low", "Close"):
        out[col] = df[col].to_numpy() / close * new
    return out


def random_probs(n: int, seed: int) -> np.ndarray:
    p = np.random.default_rng(seed).dirichlet(np.ones(3), size=(n, 4))
    return p / p.sum(axis=2, keepdims=True)


def test_one_instrument_scores_exactly_as_before() -> None:
    h = history_of(synthetic_bars(1200, seed=5))
    p = random_probs(len(h.frame), 1)
    one, before = score_forecast_universe([h], [p]), score_forecasts(h, p)
    assert json.dumps(one.to_json(), sort_keys=True) == json.dumps(before.to_json(), sort_keys=True)
    assert one.details == before.details and "buckets_by_instrument" not in one.to_json()
    assert all(np.array_equal(one.losses[k], before.losses[k]) for k in ("train", "val"))


def test_each_instrument_uses_its_own_terciles() -> None:
    """A copy with triple the moves has the same buckets under its own cut points, so the pooled figures
    are the first instrument's (grades counted twice); one shared scheme would call its moves all extreme."""
    base = synthetic_bars(1200, seed=5)
    h1, h2 = history_of(base), history_of(wilder(base))
    p = random_probs(len(base), 2)
    one, pooled = score_forecasts(h1, p), score_forecast_universe([h1, h2], [p, p])
    cuts = [c["cut_points"]["10"] for c in pooled.to_json()["buckets_by_instrument"]]
    assert cuts[0] == scheme_of(h1).to_json()["cut_points"]["10"]
    assert cuts[1] == scheme_of(h2).to_json()["cut_points"]["10"] and cuts[1]["upper"] > 2 * cuts[0]["upper"]
    for split in ("train", "val"):
        a, b = one.splits[split], pooled.splits[split]
        assert b["rps_skill_mean"] == pytest.approx(a["rps_skill_mean"], rel=1e-12)
        assert b["ece"] == pytest.approx(a["ece"], rel=1e-12)
        for h in ("1", "3", "5", "10"):
            assert b["grades"][h] == {g: 2 * a["grades"][h][g] for g in GRADES}
        assert pooled.losses[split].size == 2 * one.losses[split].size
    assert len(pooled.folds) == len(one.folds)
    assert [f["rps_skill_mean"] for f in pooled.folds] == pytest.approx([f["rps_skill_mean"] for f in one.folds])


def test_pooled_skill_is_over_all_days_not_a_mean_of_skills() -> None:
    h1, h2 = history_of(synthetic_bars(1200, seed=5)), history_of(synthetic_bars(900, seed=9, wild=0.05))
    p1, p2 = random_probs(len(h1.frame), 3), random_probs(len(h2.frame), 4)
    a, b, pooled = score_forecasts(h1, p1), score_forecasts(h2, p2), score_forecast_universe([h1, h2], [p1, p2])
    for h in ("1", "3", "5", "10"):
        da, db = a.details["val"][h], b.details["val"][h]
        n = da["n"] + db["n"]
        rps = (da["n"] * da["rps"] + db["n"] * db["rps"]) / n
        clim = (da["n"] * da["rps_climatology"] + db["n"] * db["rps_climatology"]) / n
        assert pooled.details["val"][h]["n"] == n
        assert pooled.splits["val"]["rps_skill"][h] == pytest.approx(1 - rps / clim, rel=1e-9)
        ga, gb = a.splits["val"]["grades"][h], b.splits["val"]["grades"][h]
        assert pooled.splits["val"]["grades"][h] == {g: ga[g] + gb[g] for g in GRADES}
        days = pooled.details["val"][h]["worst_days"]
        assert {d["instrument"] for d in days} <= {1, 2}
    with pytest.raises(ValueError, match="2 forecast arrays for 1 instruments"):
        score_forecast_universe([h1], [p1, p2])


def test_pipeline_runs_every_instrument_and_names_a_leak_by_number(real_sandbox) -> None:
    base = synthetic_bars(900, seed=5)
    h1, h2 = history_of(base), history_of(wilder(base, 1.5, level=2.0))  # the second starts at 200
    universe = (h1, h2)

    def run(region: str):
        return evaluate(region, EvalContext(histories=universe, sandbox=real_sandbox, task=get_task("forecast"),
                                            eval_timeout_s=120.0))

    ev = run(THIRDS)
    assert ev.accepted, ev.reason
    assert len(ev.outputs) == 2 and len(ev.details["lookahead"]["instruments"]) == 2
    expected = score_forecast_universe(universe, list(ev.outputs))
    assert ev.scores.to_json()["splits"] == expected.to_json()["splits"]
    assert ev.scores.to_json()["instruments"] == 2
    leak = run(PEEK_ON_HIGH)
    assert not leak.accepted and leak.stage == "lookahead"
    assert leak.reason.startswith("instrument 2 of 2: "), leak.reason


def test_check_task_forecast_on_a_universe(tmp_path: Path, real_sandbox, capsys: pytest.CaptureFixture[str]) -> None:
    csv = tmp_path / "csv"
    csv.mkdir()
    base = synthetic_bars(1000, seed=5)
    for name, frame in {"AAA": base, "BBB": wilder(base, 2.0)}.items():
        frame.to_csv(csv / f"{name}.csv", index_label="Date")
    data = tmp_path / "data"
    assert prepare.main(["--source", "csv", "--csv-dir", str(csv), "--out", str(data)]) == 0
    capsys.readouterr()
    file = tmp_path / "fc.py"
    file.write_text(render(BASELINE_SPEC), encoding="utf-8")
    code = run_check(file, data, sandbox=real_sandbox, task="forecast", eval_timeout_s=120.0)
    out = capsys.readouterr().out.strip().splitlines()
    verdict = json.loads(out[-1])
    assert code == 0 and verdict["accepted"], verdict["reason"]
    metrics = verdict["metrics"]
    assert metrics["instruments"] == 2 and len(metrics["buckets_by_instrument"]) == 2
    assert any("scores pool over all instruments' days" in line for line in out)
    assert any("instrument 2: h=1: down <" in line for line in out)  # each instrument's own cut points, by number
    prompt_facing = json.dumps(metrics)
    assert "AAA" not in prompt_facing and "BBB" not in prompt_facing


def test_loop_and_final_pool_a_universe_and_prompts_name_instruments_by_number(tmp_path: Path) -> None:
    from tests.fake_openai import FakeOpenAI, good
    from tests.test_forecast_loop import FORECASTER, harness
    from tests.test_loop_llm import local_env

    csv = tmp_path / "csv"
    csv.mkdir()
    for name, frame in {"AAA": synthetic_bars(1200, seed=5), "BBB": wilder(synthetic_bars(1200, seed=8), 2.0)}.items():
        frame.to_csv(csv / f"{name}.csv", index_label="Date")
    data, wd = tmp_path / "data", tmp_path / "run"
    assert prepare.main(["--source", "csv", "--csv-dir", str(csv), "--out", str(data)]) == 0
    with FakeOpenAI() as fake:
        fake.models = ["fake-model"]
        fake.script(good(FORECASTER), good(FORECASTER))
        env = local_env(OPENAI_BASE_URL=fake.base_url, OPENAI_API_KEY="sk-test", OPENAI_MODEL="fake-model")
        res = harness("--task", "forecast", "--iterations", "1", "--max-fails", "0", "--timeout", "10",
                      "--workdir", str(wd), "--data", str(data), cwd=tmp_path, env=env)
        assert res.returncode == 0, res.stdout + res.stderr
        prompt = json.dumps([r["json"]["messages"] for r in fake.requests if r["path"].endswith("/chat/completions")])
    assert "instrument 1: h=1: down <" in prompt and "instrument 2: h=1: down <" in prompt
    assert "AAA" not in prompt and "BBB" not in prompt
    record = json.loads((wd / "iter_1_results.json").read_text())
    assert record["status"] == "accepted", record["reason"]
    assert record["scores"]["instruments"] == 2
    res = harness("final", "--workdir", str(wd), "--data", str(data), "--iter", "1", cwd=tmp_path, env=env)
    assert res.returncode == 0, res.stdout + res.stderr
    reading = json.loads(res.stdout.strip().splitlines()[-1])
    # final pools validation the same way the loop did, so its validation figure is the loop's
    assert reading["val_metric"] == pytest.approx(record["scores"]["splits"]["val"]["rps_skill_mean"], abs=1e-12)


def test_invalid_probabilities_on_one_instrument_name_it_by_number(real_sandbox) -> None:
    base = synthetic_bars(600, seed=5)
    universe = (history_of(base), history_of(wilder(base, 1.5, level=2.0)))
    region = (THIRDS.replace("return df", "df['hi'] = float(df['Close'].iloc[0] > 150)\n    return df")
              .replace("return {h: (1 / 3, 1 / 3, 1 / 3) for h in (1, 3, 5, 10)}",
                       "return {h: ((0.5, 0.5, 0.5) if row['hi'] == 1.0 else (1 / 3, 1 / 3, 1 / 3)) "
                       "for h in (1, 3, 5, 10)}"))
    ev = evaluate(region, EvalContext(histories=universe, sandbox=real_sandbox, task=get_task("forecast"),
                                      eval_timeout_s=120.0))
    assert not ev.accepted and ev.stage == "sandbox"
    assert "instrument 2 of 2: horizon 1 on " in ev.reason and "sum to 1.5" in ev.reason, ev.reason
