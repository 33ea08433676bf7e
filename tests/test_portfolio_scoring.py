"""Portfolio scoring in the parent: equal weight is the benchmark, the fill and costs are the trade task's,
and every split and fold carries both benchmarks' figures."""

from __future__ import annotations

import numpy as np
import pandas as pd

from alphaloop.evaluate.universe import bh_returns, score_universe
from alphaloop.tasks.portfolio.contract import Calendar, validate_weights
from alphaloop.tasks.portfolio.driver import run_frame
from alphaloop.tasks.portfolio.guards import is_equal_weight
from alphaloop.tasks.portfolio.scoring import Panel, held_weights, score_portfolio
from tests.portfolio_support import EQUAL_WEIGHT, MOMENTUM, namespace, split_frames, universe_frames


def _weights(histories, region: str) -> np.ndarray:
    frames = tuple(h.frame for h in histories)
    return validate_weights(run_frame(namespace(region), frames)["weights"], Calendar.of(frames))


def test_equal_weight_reproduces_the_benchmark_figures() -> None:
    histories = split_frames(universe_frames(n=5, days=900, seed=4))
    s = score_portfolio(histories, _weights(histories, EQUAL_WEIGHT), cost_bps=2.0)
    for split in ("train", "val"):
        m = s.splits[split]
        assert np.allclose(s.returns[split], bh_returns(histories, split))
        assert np.isclose(m["sharpe"], m["bh_sharpe"]) and np.isclose(m["total_return"], m["bh_total_return"])
        assert np.isclose(m["max_drawdown"], m["bh_max_drawdown"])
        assert np.isclose(m["beta"], 1.0) and np.isclose(m["correlation"], 1.0)
        assert m["information_ratio"] == 0.0 and m["turnover"] == 0.0
        assert np.isclose(m["gross_exposure"], 1.0) and np.isclose(m["net_exposure"], 1.0)
        assert m["long_count"] == 5 and m["short_count"] == 0
    universe = score_universe(histories, [np.ones(len(h.frame), dtype=np.int8) for h in histories])
    assert np.isclose(s.splits["val"]["bh_sharpe"], universe.portfolio.splits["val"]["bh_sharpe"])
    assert all(np.isclose(f["sharpe"], f["bh_sharpe"]) for f in s.folds) and len(s.folds) == 4
    assert np.isclose(s.splits["train"]["sharpe"], s.splits["train"]["bh_sharpe"], rtol=1e-12)


def test_one_instrument_fully_long_is_its_buy_and_hold_and_short_is_its_mirror() -> None:
    histories = split_frames(universe_frames(n=1, days=600, seed=5))
    w = np.ones((len(histories[0].frame), 1))
    long = score_portfolio(histories, w, cost_bps=0.0)
    short = score_portfolio(histories, -w, cost_bps=0.0)
    assert np.allclose(long.returns["val"], histories[0].bh_returns("val"))
    assert np.allclose(short.returns["val"], -histories[0].bh_returns("val"))
    assert np.isclose(short.splits["val"]["net_exposure"], -1.0) and short.splits["val"]["short_count"] == 1


def test_weights_set_at_a_close_earn_the_next_period_and_changes_pay_costs() -> None:
    histories = split_frames(universe_frames(n=2, days=300, seed=6))
    panel = Panel.of(histories)
    a, b = panel.windows["val"]
    w = np.zeros(panel.close.shape)
    w[a + 10, 0] = 1.0  # one day long instrument 1, set at date a+10's close
    s = score_portfolio(histories, w, cost_bps=10.0, panel=panel)
    r = s.returns["val"]  # r[j] is the period ending at date a+1+j
    earned = panel.close[a + 11, 0] / panel.close[a + 10, 0] - 1
    assert np.isclose(r[10], earned - 10e-4)  # bought at a+10: held for the period ending a+11, entry cost
    assert np.isclose(r[11], -10e-4)  # sold at a+11's close: the exit cost, nothing earned
    assert np.count_nonzero(r) == 2
    assert np.isclose(sum(s.contributions["val"]), r.sum())
    assert s.splits["val"]["rebalances"] == 2


def test_ragged_calendars_keep_each_instruments_own_bars() -> None:
    histories = split_frames(universe_frames(n=3, days=400, seed=7, ragged=True))
    cal = Panel.of(histories).calendar
    assert not cal.present.all()
    s = score_portfolio(histories, _weights(histories, EQUAL_WEIGHT), cost_bps=0.0)
    full = np.prod(1 + s.returns["val"]) - 1
    assert np.isfinite(full) and abs(s.splits["val"]["beta"] - 1.0) < 0.05


LONG_HEAVY = '''
def generate_features(df):
    return df

def allocate(day):
    rank = day["Close"].rank()
    return 0.6 * rank / rank.sum()
'''


def test_ragged_calendars_never_hold_more_than_the_cap() -> None:
    """An instrument without a bar keeps its weight; what allocate sets that date is scaled to the room left,
    so the book held stays within --max-gross on every date while a shared calendar is left untouched."""
    histories = split_frames(universe_frames(n=16, days=600, seed=11, ragged=True), ("train", "val", "test"))
    present = Panel.of(histories).calendar.present
    for region, cap in ((EQUAL_WEIGHT, 1.0), (MOMENTUM, 1.0), (LONG_HEAVY, 0.6)):
        frames = tuple(h.frame for h in histories)
        w = validate_weights(run_frame(namespace(region), frames)["weights"], Calendar.of(frames), cap)
        carried = np.abs(np.nan_to_num(pd.DataFrame(w).ffill().to_numpy())).sum(axis=1)
        assert carried.max() > cap + 0.01  # kept weights on top of allocate's would break the cap
        held = held_weights(w, cap)
        assert np.abs(held).sum(axis=1).max() <= cap + 1e-9
        same = present.all(axis=1) & (np.abs(held) > 0).any(axis=1)
        prior = np.r_[False, present.all(axis=1)[:-1]]
        assert np.allclose(held[same & prior], w[same & prior])  # full dates after full dates: as allocate set
        s = score_portfolio(histories, w, splits=("train", "val", "test"), max_gross=cap)
        assert all(np.abs(s.weights[k]).sum(axis=1).max() <= cap + 1e-9 for k in s.weights)
        assert all(s.splits[k]["gross_exposure"] <= cap + 1e-9 for k in s.splits)
    assert is_equal_weight(_weights(histories, EQUAL_WEIGHT), present)  # the guard judges what allocate set
    assert not is_equal_weight(_weights(histories, MOMENTUM), present)


def test_equal_weight_on_a_ragged_calendar_earns_the_benchmark_wherever_every_bar_is_there() -> None:
    """The benchmark averages each date over the instruments with a bar that date, a book no allocator can
    hold without knowing the next date's calendar; where every instrument has a bar on a date and the date
    before, equal weight earns it exactly."""
    histories = split_frames(universe_frames(n=6, days=800, seed=12, ragged=True))
    panel = Panel.of(histories)
    s = score_portfolio(histories, _weights(histories, EQUAL_WEIGHT), cost_bps=0.0)  # the benchmark pays none
    a, b = panel.windows["val"]
    full = panel.calendar.present.all(axis=1)
    both = (full & np.r_[False, full[:-1]])[a + 1:b]
    assert 0 < both.sum() < both.size
    assert np.allclose(s.returns["val"][both], panel.bh[a + 1:b][both], rtol=1e-12, atol=1e-15)
    assert np.corrcoef(s.returns["val"], s.bh["val"])[0, 1] > 0.99


def test_kept_weights_take_their_place_in_the_cap_and_end_with_the_bars() -> None:
    nan = np.nan
    w = np.array([[0.5, 0.5, nan],  # instrument 3 has not started: nothing kept
                  [nan, 0.5, 0.5],  # 1 has no bar and keeps 0.5: allocate's 1.0 is scaled into the 0.5 left
                  [0.5, 0.5, nan],  # 3 keeps 0.25: 0.75 left
                  [0.4, nan, 0.4],  # 2 has no bar again and never will: closed, not kept
                  [1.0, nan, nan]])  # 3's bars have ended too
    assert np.allclose(held_weights(w, 1.0), [[0.5, 0.5, 0], [0.5, 0.25, 0.25], [0.375, 0.375, 0.25],
                                              [0.4, 0, 0.4], [1.0, 0, 0]])
    assert np.allclose(held_weights(w, 2.0)[1], [0.5, 0.5, 0.5])  # room enough: what allocate set is kept whole


def test_momentum_is_scored_with_both_legs_and_information_ratio() -> None:
    histories = split_frames(universe_frames(n=6, days=700, seed=8))
    s = score_portfolio(histories, _weights(histories, MOMENTUM), metric="information_ratio")
    m = s.splits["val"]
    assert m["long_count"] == 2 and m["short_count"] == 2 and abs(m["net_exposure"]) < 1e-9
    assert s.selection == m["information_ratio"] and m["turnover"] > 0
    assert len(s.contributions["val"]) == 6
