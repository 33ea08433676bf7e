"""Duplicates on validation positions, near copies, buy and hold in disguise, member correlations."""

from __future__ import annotations

import json

import numpy as np
import pytest

from alphaloop.evaluate.backtest import backtest, positions_key, window_positions
from alphaloop.evaluate.scoring import History, score_window
from alphaloop.run.diversity import (
    BH_LABEL,
    MemberReturns,
    buy_and_hold_in_disguise,
    correlation,
    correlation_matrix,
    novelty,
)
from tests.conftest import make_ohlcv

TRAIN, VAL = 600, 400
VAL_WINDOW = slice(TRAIN, TRAIN + VAL)


@pytest.fixture(scope="module")
def close() -> np.ndarray:
    return make_ohlcv(TRAIN + VAL, seed=5)["Close"].to_numpy()


def sma_signals(close: np.ndarray, fast: int = 10, slow: int = 40) -> np.ndarray:
    f = np.convolve(close, np.ones(fast) / fast)[: close.size]
    s = np.convolve(close, np.ones(slow) / slow)[: close.size]
    sig = np.where(f > s, 1, -1)
    sig[:slow] = 0
    return sig


def val_returns(close: np.ndarray, signals: np.ndarray) -> np.ndarray:
    return backtest(close[VAL_WINDOW], signals[VAL_WINDOW]).returns


def test_window_positions_are_the_backtesters(close: np.ndarray) -> None:
    sig = sma_signals(close)
    history = History.from_splits({"train": make_ohlcv(TRAIN + VAL, seed=5).iloc[:TRAIN],
                                   "val": make_ohlcv(TRAIN + VAL, seed=5).iloc[TRAIN:]})
    expected = score_window(history, sig, history.windows["val"]).positions
    assert np.array_equal(window_positions(sig, VAL_WINDOW), expected) and window_positions(sig, VAL_WINDOW)[-1] == 0


def test_redundant_signals_and_train_only_filters_are_duplicates(close: np.ndarray) -> None:
    level = sma_signals(close)
    sig = np.where(np.diff(level, prepend=0) != 0, level, 0)  # signals only on crossings
    key = positions_key(window_positions(sig, VAL_WINDOW))
    pos = window_positions(sig, VAL_WINDOW)
    assert key == positions_key(window_positions(level, VAL_WINDOW))
    redundant = sig.copy()
    redundant[TRAIN:][pos == 1] = 1  # a `1` on every day already long changes nothing
    assert not np.array_equal(redundant, sig) and positions_key(window_positions(redundant, VAL_WINDOW)) == key
    train_only = sig.copy()
    train_only[: TRAIN - 1] = -1  # a filter that only acts in train
    assert positions_key(window_positions(train_only, VAL_WINDOW)) == key
    other = sma_signals(close, 5, 20)
    assert positions_key(window_positions(other, VAL_WINDOW)) != key
    member = MemberReturns(0, 1.0, key, val_returns(close, sig))
    redundant_key = positions_key(window_positions(redundant, VAL_WINDOW))
    copy = novelty(redundant_key, val_returns(close, redundant), 5.0, [member], 3)
    assert copy.kind == "duplicate" and not copy.enters  # kept out of the population however well it scores


def test_positions_key_is_per_instrument() -> None:
    a, b = np.array([0, 1, 1, 0]), np.array([1, 1, 0, 0])
    assert positions_key({"x": a, "y": b}) == positions_key({"y": b, "x": a})
    assert positions_key({"x": a, "y": b}) != positions_key({"x": b, "y": a})
    assert positions_key({"x": a}) != positions_key({"z": a})
    assert positions_key(np.array([0, 1])) != positions_key(np.array([0, 1, 0]))


def test_correlation() -> None:
    rng = np.random.default_rng(1)
    a, b = rng.normal(size=300), rng.normal(size=300)
    assert correlation(a, b) == pytest.approx(np.corrcoef(a, b)[0, 1])
    assert correlation(a, 2 * a + 1) == pytest.approx(1.0) and correlation(a, -a) == pytest.approx(-1.0)
    assert correlation(a, np.zeros(300)) == 0.0  # an always-flat strategy moves with nothing
    with pytest.raises(ValueError, match="shapes"):
        correlation(a, b[:-1])


def _members(rng: np.random.Generator) -> list[MemberReturns]:
    return [MemberReturns(iteration=i, value=v, positions_key=f"k{i}", returns=rng.normal(0, 0.01, VAL))
            for i, v in ((3, 1.2), (5, 0.9), (8, 0.5))]


def test_novelty_rule() -> None:
    rng = np.random.default_rng(2)
    members = _members(rng)
    dup = novelty("k5", rng.normal(0, 0.01, VAL), 9.0, members, 3)
    assert dup.kind == "duplicate" and dup.member == 5 and not dup.enters and "same validation positions" in dup.reason
    near = members[1].returns + rng.normal(0, 0.001, VAL)  # correlates about 0.995 with iter 5
    better = novelty("kn", near, 1.0, members, 3)
    assert better.kind == "near_copy" and better.member == 5 and better.enters and better.replaces == 5
    assert better.correlation > 0.95 and "near copy of iter 5" in better.reason
    worse = novelty("kn", near, 0.8, members, 3)
    assert worse.kind == "near_copy" and not worse.enters and worse.replaces is None
    # a near copy that beats the weakest member still may not take its slot
    assert not novelty("kn", near, 0.7, members, 3).enters
    fresh = rng.normal(0, 0.01, VAL)
    assert novelty("kf", fresh, 0.6, members, 3).replaces == 8
    assert not novelty("kf", fresh, 0.4, members, 3).enters
    assert novelty("kf", fresh, 0.1, members, 4).enters and novelty("kf", fresh, 0.1, members, 4).replaces is None
    assert novelty("kf", fresh, 0.1, [], 3).enters and novelty("kf", fresh, 0.1, [], 3).correlation is None
    assert not novelty("kf", fresh, float("nan"), members, 3).enters
    assert json.loads(json.dumps(better.to_json())) == better.to_json()


def test_near_copy_of_two_members_must_beat_both() -> None:
    rng = np.random.default_rng(3)
    base = rng.normal(0, 0.01, VAL)
    members = [MemberReturns(1, 1.0, "a", base + rng.normal(0, 0.0005, VAL)),
               MemberReturns(2, 0.5, "b", base + rng.normal(0, 0.0005, VAL))]
    cand = base + rng.normal(0, 0.0005, VAL)
    assert not novelty("c", cand, 0.8, members, 2).enters
    assert novelty("c", cand, 1.1, members, 2).enters


def test_buy_and_hold_in_disguise(close: np.ndarray) -> None:
    bh = backtest(close[VAL_WINDOW], np.ones(VAL)).bh_returns
    sig = np.ones(close.size, dtype=np.int64)
    sig[TRAIN + 100] = -1  # buy and hold with one exit for a day
    pos = window_positions(sig, VAL_WINDOW)
    d = buy_and_hold_in_disguise(val_returns(close, sig), bh, float(pos[:-1].mean()))
    assert d.disguised and d.exposure > 0.99 and d.correlation > 0.95
    assert d.reason.startswith("buy and hold in disguise")
    trend = sma_signals(close)
    tpos = window_positions(trend, VAL_WINDOW)
    t = buy_and_hold_in_disguise(val_returns(close, trend), bh, float(tpos[:-1].mean()))
    assert not t.disguised and t.reason.startswith("not buy and hold") and t.exposure < 0.9
    # a high correlation alone is not enough: exposure below the threshold keeps it a strategy
    assert not buy_and_hold_in_disguise(bh, bh, 0.85).disguised
    assert json.loads(json.dumps(d.to_json())) == d.to_json()


def test_correlation_matrix(close: np.ndarray) -> None:
    bh = backtest(close[VAL_WINDOW], np.ones(VAL)).bh_returns
    rets = {f"iter {k}": val_returns(close, sma_signals(close, f, s)) for k, (f, s) in enumerate([(10, 40), (11, 40),
                                                                                                 (3, 80)])}
    cm = correlation_matrix(rets, bh)
    assert cm.labels == [*rets, BH_LABEL] and cm.matrix.shape == (4, 4)
    assert np.allclose(cm.matrix, cm.matrix.T) and np.allclose(np.diag(cm.matrix), 1.0)
    assert cm.with_bh()["iter 1"] == pytest.approx(correlation(rets["iter 1"], bh))
    a, b, c = cm.max_pair()
    assert {a, b} == {"iter 0", "iter 1"} and c == pytest.approx(correlation(rets["iter 0"], rets["iter 1"]))
    assert json.loads(json.dumps(cm.to_json()))["labels"][-1] == BH_LABEL
    assert "validation" in cm.format() and cm.format().count("\n") == 5
    assert correlation_matrix({"iter 0": bh}, bh).max_pair() is None
