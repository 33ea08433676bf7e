"""Deflated Sharpe ratio and SPA on synthetic returns whose answer is known."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from alphaloop.evaluate.scoring import History, score
from alphaloop.evaluate.stats import (
    expected_max_sharpe,
    format_statistics,
    probabilistic_sharpe,
    return_moments,
    run_statistics,
    spa_result,
)
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
    assert sr == pytest.approx(r.mean() / r.std(ddof=1)) and sr == pytest.approx(0.1, abs=0.025)
    assert abs(skew) < 0.1 and kurt == pytest.approx(3.0, abs=0.15)
    assert obs == 20000


@pytest.fixture(scope="module")
def noise_run() -> dict:
    rng = np.random.default_rng(11)
    trials = rng.normal(0.0, 0.01, (60, T))
    bh = rng.normal(0.0, 0.01, T)
    sharpes = sharpes_of(trials)
    best = trials[int(np.argmax(sharpes))]
    return run_statistics(80, sharpes, best, spa_result(bh, list(trials[:30]), seed=0, reps=500), reps=500)


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
    d = run_statistics(61, sharpes, edge, spa_result(bh, [*trials[:20], edge], seed=0, reps=500), reps=500)
    assert d["dsr"] > 0.99 and "is significant at 5% after deflating for 61 trials" in d["verdict_dsr"]
    assert d["spa_pvalues"]["consistent"] < 0.05
    assert d["verdict_spa"].startswith("the best candidate beats buy and hold at 5% even after accounting for "
                                       "61 trials")


def test_more_trials_deflate_more() -> None:
    rng = np.random.default_rng(13)
    trials = rng.normal(0.0, 0.01, (30, T))
    best = rng.normal(0.0012, 0.01, T)
    sharpes = sharpes_of(trials)
    few = run_statistics(5, sharpes, best, spa_result(trials[0], [], reps=100), reps=100)
    many = run_statistics(500, sharpes, best, spa_result(trials[0], [], reps=100), reps=100)
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
    a = run_statistics(5, sharpes_of(trials), trials[0], spa_result(bh, list(trials), seed=3, reps=200), reps=200)
    b = run_statistics(5, sharpes_of(trials), trials[0], spa_result(bh, list(trials), seed=3, reps=200), reps=200)
    assert a["spa_pvalues"] == b["spa_pvalues"]


def test_bh_returns_align_with_scored_returns() -> None:
    df = make_ohlcv(400, seed=2)
    history = History.from_splits({"train": df.iloc[:300], "val": df.iloc[300:]})
    scores = score(history, np.ones(400, dtype=np.int8), folds=1)
    bh = history.bh_returns("val")
    assert bh.shape == scores.returns["val"].shape
    assert np.prod(1 + bh) - 1 == pytest.approx(scores.splits["val"]["bh_total_return"])


# ----- statistics over a universe ------------------------------------------------------------------
from alphaloop.evaluate.backtest import backtest  # noqa: E402
from alphaloop.evaluate.stats import DeflatedSharpe, SpaResult, effective_trials, universe_statistics, verdicts  # noqa: E402

WARM, VAL = 250, 1000  # a year of warm-up, then about four years of validation
EDGE = 0.0015  # daily drift of the hidden trend regime, the same wherever it is planted


def regime_prices(rng: np.random.Generator, edge: float, drift: float = 0.0) -> np.ndarray:
    """A random walk whose drift is +edge or -edge in persistent hidden regimes (about 100 days each):
    a trend a momentum rule can follow. With edge 0 it is a plain random walk with ``drift``."""
    n = WARM + VAL + 1
    state = np.cumsum(rng.random(n) > 0.99) % 2
    r = drift + np.where(state == 0, edge, -edge) * (1 if rng.random() < 0.5 else -1) + 0.01 * rng.normal(size=n)
    return 100.0 * np.cumprod(1.0 + r)


def universe(seed: int, edged: set[int], drift: float = 0.0, k: int = 8) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [regime_prices(rng, EDGE if i in edged else 0.0, drift) for i in range(k)]


def momentum_signals(close: np.ndarray, k: int) -> np.ndarray:
    """Enter when the k-day return is positive, exit when negative (a trend rule)."""
    mom = np.full(close.size, np.nan)
    mom[k:] = close[k:] / close[:-k] - 1.0
    return np.where(mom > 0, 1, np.where(mom < 0, -1, 0))


def long_biased_signals(close: np.ndarray, k: int) -> np.ndarray:
    """Long unless the k-day return is below -3%: long most of the time, whatever the prices do."""
    mom = np.full(close.size, np.nan)
    mom[k:] = close[k:] / close[:-k] - 1.0
    return np.where(mom < -0.03, -1, 1)


def search(prices: list[np.ndarray], rule, lookbacks: range, seed: int = 0):
    """Every lookback is a trial scored on the equal-weight portfolio's validation returns, as the loop does."""
    cols, per = [], []
    for k in lookbacks:
        runs = [backtest(c[WARM:], rule(c, k)[WARM:], cost_bps=2.0) for c in prices]
        cols.append(np.mean([b.returns for b in runs], axis=0))
        per.append(runs)
    bh = np.mean([b.bh_returns for b in per[0]], axis=0)
    m = np.column_stack(cols)
    best = int(np.argmax(sharpes_of(m.T)))
    figures = {f"instrument {i + 1}": (b.returns, b.bh_returns) for i, b in enumerate(per[best])}
    return universe_statistics(m, best, bh, trials=len(cols), instruments=len(prices), per_instrument=figures,
                               seed=seed, reps=500)


@pytest.mark.parametrize("seed", [10, 11, 12])
def test_edge_in_every_instrument_is_found_and_beats_buy_and_hold(seed: int) -> None:
    st = search(universe(seed, set(range(8))), momentum_signals, range(5, 125, 5))
    assert st.dsr_excess.dsr >= 0.95 and st.spa.consistent < 0.05
    assert st.beats_buy_and_hold and st.verdict.startswith("Beats buy and hold beyond luck")
    assert len(st.per_instrument) == 8 and st.instruments == 8


@pytest.mark.parametrize("seed", [20, 21, 22])
def test_edge_in_one_instrument_of_eight_is_not_significant_on_the_universe(seed: int) -> None:
    st = search(universe(seed, {0}), momentum_signals, range(5, 125, 5))
    assert st.dsr_excess.dsr < 0.95 and st.spa.consistent > 0.05 and not st.beats_buy_and_hold
    assert "beats buy and hold" not in st.verdict.lower() and "not shown to beat buy and hold" in st.verdict
    if seed == 21:  # the edged instrument alone looks convincing: a search picking the best instrument fools itself
        assert st.per_instrument[0].psr_zero > 0.95


@pytest.mark.parametrize("seed", [30, 31, 32])
def test_long_bias_on_drifting_walks_is_significant_only_against_zero(seed: int) -> None:
    """The issue's trap: DSR's null is a Sharpe of zero, which any long-biased rule beats on rising prices."""
    st = search(universe(seed, set(), drift=0.0006), long_biased_signals, range(2, 26))
    assert st.dsr_returns.dsr >= 0.95  # significant against zero...
    assert st.dsr_excess.dsr < 0.5 and st.spa.consistent > 0.5  # ...but not against buy and hold
    assert st.verdict.startswith("Sharpe above zero beyond luck (DSR")
    assert "but not shown to beat buy and hold (SPA p" in st.verdict
    assert "beats buy and hold" not in st.verdict.lower() and "not buy and hold" in st.verdict_dsr


def test_effective_trials_of_known_structures() -> None:
    rng = np.random.default_rng(40)
    base = rng.normal(0, 0.01, (VAL, 3))
    blocks = np.repeat(base, 5, axis=1)  # 3 ideas, 5 identical variants each
    assert effective_trials(blocks).effective == pytest.approx(3.0, abs=0.01)
    assert effective_trials(np.repeat(base[:, :1], 10, axis=1)).effective == pytest.approx(1.0, abs=0.01)
    independent = effective_trials(rng.normal(0, 0.01, (VAL, 20)))
    assert independent.effective == pytest.approx(20.0, abs=0.5) and independent.sampled == independent.raw == 20
    flat = np.column_stack([base, np.zeros(VAL)])  # an always-flat trial is its own (harmless) trial
    assert effective_trials(flat).effective == pytest.approx(4.0, abs=0.01)
    scaled = effective_trials(blocks, raw=30)
    assert scaled.raw == 30 and scaled.effective == pytest.approx(6.0, abs=0.02)
    assert "scaled to the 30 run" in scaled.describe()
    assert "Galwey (2009)" in scaled.estimator


def test_dsr_reports_the_trial_count_it_used() -> None:
    rng = np.random.default_rng(41)
    noise = rng.normal(0, 0.01, (VAL, 4))
    trials = np.repeat(noise, 5, axis=1) + rng.normal(0, 0.001, (VAL, 20))  # 20 trials, about 4 ideas
    bh = rng.normal(0.0003, 0.01, VAL)
    raw = universe_statistics(trials, 0, bh, trials=20, reps=100)
    eff = universe_statistics(trials, 0, bh, trials=20, trials_count="effective", reps=100)
    assert raw.dsr_returns.trials_count == "raw" and raw.dsr_returns.trials_used == 20
    assert eff.dsr_returns.trials_count == eff.dsr_excess.trials_count == "effective"
    assert eff.dsr_returns.trials_used == pytest.approx(eff.effective_trials.effective)
    assert 3 < eff.dsr_returns.trials_used < 8
    assert eff.dsr_returns.expected_max_sharpe < raw.dsr_returns.expected_max_sharpe
    assert eff.dsr_returns.dsr > raw.dsr_returns.dsr
    assert "effective" in eff.verdict_dsr


def test_run_statistics_record_is_json_and_says_where_measured() -> None:
    st = search(universe(20, {0}), momentum_signals, range(5, 65, 10))
    d = st.to_json()
    assert json.loads(json.dumps(d)) == d and d["beats_buy_and_hold"] is False
    assert {"effective_trials", "dsr_returns", "dsr_excess", "spa", "per_instrument", "verdict"} <= set(d)
    text = st.format()
    assert "validation split" in text and "equal-weight portfolio of 8 instruments" in text
    assert "Galwey (2009)" in text and "6 raw trials" in text and "instrument 8:" in text and "not deflated" in text


def test_universe_statistics_refuses_bad_shapes() -> None:
    r = np.zeros((100, 3))
    with pytest.raises(ValueError, match="benchmark of 99 days"):
        universe_statistics(r, 0, np.zeros(99), trials=3)
    with pytest.raises(ValueError, match="best column 3"):
        universe_statistics(r, 3, np.zeros(100), trials=3)
    with pytest.raises(ValueError, match="non-finite"):
        universe_statistics(np.full((100, 3), np.nan), 0, np.zeros(100), trials=3)
    with pytest.raises(ValueError, match="trials_count"):
        universe_statistics(r, 0, np.zeros(100), trials=3, trials_count="some")


def _dsr(value: float) -> DeflatedSharpe:
    return DeflatedSharpe("returns", value, 1 - value, 1.0, 0.5, 0.3, 10.0, "raw", 0.0, 3.0, 1000)


@pytest.mark.parametrize("raw", [0.2, 0.97])
@pytest.mark.parametrize("excess", [0.2, 0.97])
@pytest.mark.parametrize("p", [None, 0.01, 0.67])
def test_only_spa_may_say_beats_buy_and_hold(raw: float, excess: float, p: float | None) -> None:
    spa = None if p is None else SpaResult(p, p, p, 5, 100, "the equal-weight buy and hold of the 8 instruments")
    texts = verdicts(_dsr(raw), _dsr(excess), spa)
    says = [t for t in texts if "beats buy and hold" in t.lower() or "beat buy and hold beyond" in t.lower()]
    if p is not None and p < 0.05:
        assert texts[3].startswith("Beats buy and hold beyond luck") and len(says) == 2  # the SPA and overall verdicts
    else:
        assert says == [] and "not shown to beat buy and hold" in texts[3]
    if p is not None and p < 0.05 and raw < 0.95:
        assert "not shown to be above zero" in texts[3]
    if raw >= 0.95 and not (p is not None and p < 0.05):
        assert texts[3].startswith(f"Sharpe above zero beyond luck (DSR {raw:.2f}), but not shown to beat buy and hold")
