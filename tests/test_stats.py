"""Deflated Sharpe ratio and SPA on synthetic returns whose answer is known."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from alphaloop.scoring import History, score
from alphaloop.stats import (expected_max_sharpe, format_statistics, probabilistic_sharpe, return_moments,
                             run_statistics, split_bh_returns)
from tests.conftest import make_ohlcv

T = 1005  # about the validation split's length
ANNUAL = math.sqrt(252)


def sharpes_of(rows: np.ndarray) -> list[float]:
    return [float(r.mean() / r.std(ddof=1) * ANNUAL) for r in rows]


@pytest.mark.parametrize("n", [10, 100, 1000])
def test_expected_max_matches_monte_carlo_of_normals(n: int) -> None:
    rng = np.random.default_rng(n)
    mc = rng.normal(0.0, 1.0, (4000, n)).max(axis=1).mean()
    assert expected_max_sharpe(n, 1.0) == pytest.approx(mc, rel=0.03)


def test_expected_max_matches_monte_carlo_of_noise_sharpes() -> None:
    rng = np.random.default_rng(7)
    n, length, reps = 40, 250, 300
    maxima, variances = [], []
    for _ in range(reps):
        r = rng.normal(0.0, 0.01, (n, length))
        sr = r.mean(axis=1) / r.std(axis=1, ddof=1)
        maxima.append(sr.max())
        variances.append(sr.var(ddof=1))
    assert expected_max_sharpe(n, float(np.mean(variances))) == pytest.approx(np.mean(maxima), rel=0.05)


def test_expected_max_degenerate_cases() -> None:
    assert expected_max_sharpe(1, 1.0) == 0.0
    assert expected_max_sharpe(50, 0.0) == 0.0
    assert expected_max_sharpe(100, 4.0) == pytest.approx(2 * expected_max_sharpe(100, 1.0))


def test_psr_reduces_to_normal_test_for_gaussian_returns() -> None:
    assert probabilistic_sharpe(0.0, 0.0, 1000, 0.0, 3.0) == pytest.approx(0.5)
    z = 0.1 * math.sqrt(999) / math.sqrt(1 + 0.5 * 0.01)
    assert probabilistic_sharpe(0.1, 0.0, 1000, 0.0, 3.0) == pytest.approx(0.5 * math.erfc(-z / math.sqrt(2)))
    # negative skew and fat tails make the same Sharpe less convincing
    assert probabilistic_sharpe(0.1, 0.0, 1000, -1.0, 8.0) < probabilistic_sharpe(0.1, 0.0, 1000, 0.0, 3.0)


def test_return_moments_of_gaussian() -> None:
    r = np.random.default_rng(1).normal(0.001, 0.01, 20000)
    sr, skew, kurt, obs = return_moments(r)
    assert sr == pytest.approx(r.mean() / r.std(ddof=1)) and sr == pytest.approx(0.1, abs=0.025) and abs(skew) < 0.1 and kurt == pytest.approx(3.0, abs=0.15)
    assert obs == 20000


@pytest.fixture(scope="module")
def noise_run() -> dict:
    rng = np.random.default_rng(11)
    trials = rng.normal(0.0, 0.01, (60, T))
    bh = rng.normal(0.0, 0.01, T)
    sharpes = sharpes_of(trials)
    best = trials[int(np.argmax(sharpes))]
    return run_statistics(80, sharpes, best, list(trials[:30]), bh, seed=0, reps=500)


def test_pure_noise_is_not_significant(noise_run: dict) -> None:
    d = noise_run
    assert d["best_sharpe"] > 1.0  # the best of many noise trials looks good on its own...
    assert d["dsr"] < 0.95 and "not significant" in d["verdict_dsr"]  # ...but not once deflated
    assert d["spa_pvalues"]["consistent"] > 0.1
    assert d["verdict_spa"].startswith("no candidate beats buy and hold beyond what luck explains at 5%")


def test_planted_edge_is_significant() -> None:
    rng = np.random.default_rng(12)
    trials = rng.normal(0.0, 0.01, (60, T))
    edge = rng.normal(0.0025, 0.01, T)  # about 4 annualised
    bh = rng.normal(0.0, 0.01, T)
    sharpes = sharpes_of(trials) + sharpes_of(edge[None, :])
    d = run_statistics(61, sharpes, edge, [*trials[:20], edge], bh, seed=0, reps=500)
    assert d["dsr"] > 0.99 and "is significant at 5% after deflating for 61 trials" in d["verdict_dsr"]
    assert d["spa_pvalues"]["consistent"] < 0.05
    assert d["verdict_spa"].startswith("the best candidate beats buy and hold at 5% even after accounting for 61 trials")


def test_more_trials_deflate_more() -> None:
    rng = np.random.default_rng(13)
    trials = rng.normal(0.0, 0.01, (30, T))
    best = rng.normal(0.0012, 0.01, T)
    sharpes = sharpes_of(trials)
    few = run_statistics(5, sharpes, best, [], trials[0], reps=100)
    many = run_statistics(500, sharpes, best, [], trials[0], reps=100)
    assert many["expected_max_sharpe"] > few["expected_max_sharpe"] and many["dsr"] < few["dsr"]
    assert few["spa_pvalues"] is None and "no accepted candidate" in few["verdict_spa"]


def test_statistics_are_json_and_say_where_measured(noise_run: dict) -> None:
    assert json.loads(json.dumps(noise_run)) == noise_run
    assert {"trials", "dsr", "dsr_pvalue", "spa_pvalues", "verdict_dsr", "verdict_spa"} <= set(noise_run)
    text = format_statistics(noise_run)
    assert text.count("measured on the validation split") >= 2 and "80 trials" in text


def test_spa_is_seeded() -> None:
    rng = np.random.default_rng(14)
    trials = rng.normal(0.0002, 0.01, (5, 300))
    bh = rng.normal(0.0, 0.01, 300)
    a = run_statistics(5, sharpes_of(trials), trials[0], list(trials), bh, seed=3, reps=200)
    b = run_statistics(5, sharpes_of(trials), trials[0], list(trials), bh, seed=3, reps=200)
    assert a["spa_pvalues"] == b["spa_pvalues"]


def test_bh_returns_align_with_scored_returns() -> None:
    df = make_ohlcv(400, seed=2)
    history = History.from_splits({"train": df.iloc[:300], "val": df.iloc[300:]})
    scores = score(history, np.ones(400, dtype=np.int8), folds=1)
    bh = split_bh_returns(history)
    assert bh.shape == scores.returns["val"].shape
    assert np.prod(1 + bh) - 1 == pytest.approx(scores.splits["val"]["bh_total_return"])
