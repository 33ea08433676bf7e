"""The loop judges a candidate on what it does on validation: duplicates and near copies stay out."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np

from alphaloop.evaluate.backtest import positions_key, window_positions
from alphaloop.evaluate.scoring import History, score
from alphaloop.run.records import Member
from alphaloop.run.state import LoopState
from alphaloop.tasks.trade.evidence import judge_diversity
from tests.test_sandbox_support import make_ohlcv


def _history() -> History:
    frame = make_ohlcv(1200, seed=7)
    return History.from_splits({"train": frame.iloc[:900], "val": frame.iloc[900:]})


def _ev(history: History, signals: np.ndarray) -> SimpleNamespace:
    return SimpleNamespace(signals=signals, scores=score(history, signals, folds=0))


def _judge(ev: SimpleNamespace, history: History, value: float, state: LoopState) -> dict:
    """The loop's verdict, with the validation positions key the loop computes once per scored candidate."""
    key = positions_key(window_positions(ev.signals, history.windows["val"]))
    return judge_diversity(key, ev, history, value, state)


def _state(history: History, members: list[tuple[int, np.ndarray]]) -> LoopState:
    state = LoopState(metric="sharpe", population_size=3, data_manifest="x")
    for n, signals in members:
        ev = _ev(history, signals)
        d = _judge(ev, history, ev.scores.selection, state)
        state.population.append(Member(n, ev.scores.selection, 0.0, 0.0, 0, "", {}, None, None, None,
                                       d["positions_sha256"], ev.scores.returns["val"].tolist()))
    return state


def _cycle(n: int, period: int, on: int) -> np.ndarray:
    return np.where(np.arange(n) % period < on, 1, -1)


def test_redundant_entries_and_train_only_filters_are_duplicates_of_the_member() -> None:
    history = _history()
    base = _cycle(len(history.frame), 40, 20)
    state = _state(history, [(1, base)])
    redundant = base.copy()
    redundant[(base == 0)] = 0
    long_days = np.flatnonzero(np.diff(base, prepend=-1) == 0)  # a 1 on a day already long changes nothing
    redundant[long_days[base[long_days] == 1]] = 1
    train_only = base.copy()
    train_only[:900] = -1  # a filter that only acts in train
    for candidate in (redundant, train_only):
        d = _judge(_ev(history, candidate), history, 9.9, state)
        assert d["novelty"]["kind"] == "duplicate" and d["duplicate_of"] == 1 and not d["in_population"]


def test_a_near_copy_only_replaces_its_member_and_only_if_better() -> None:
    history = _history()
    base = _cycle(len(history.frame), 40, 20)
    other = _cycle(len(history.frame), 17, 5)
    state = _state(history, [(1, base), (2, other)])
    near = base.copy()
    entries = np.flatnonzero(np.diff(base, prepend=-1) > 0)
    near[entries[entries > 950][1] + 1] = -1  # one validation day out of the market: nearly the same returns
    worse = _judge(_ev(history, near), history, -99.0, state)
    assert worse["novelty"]["kind"] == "near_copy" and worse["novelty"]["member"] == 1
    assert not worse["in_population"]  # a free slot is not enough for a near copy
    better = _judge(_ev(history, near), history, 99.0, state)
    assert better["in_population"] and better["replaces"] == 1


def test_always_long_but_one_exit_is_reported_as_buy_and_hold_in_disguise() -> None:
    history = _history()
    n = len(history.frame)
    signals = np.ones(n, dtype=int)
    signals[n - 100] = -1
    signals[n - 98] = 1
    d = _judge(_ev(history, signals), history, 1.0, _state(history, []))
    assert d["bh_disguise"]["disguised"] and not d["in_population"]
    assert "buy and hold in disguise" in d["bh_disguise"]["reason"]
