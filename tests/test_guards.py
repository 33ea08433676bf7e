"""Degenerate and reward-hacking guards: each fires with a clear reason, and only when it should."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from alphaloop.evaluate.guards import (
    GuardLimits,
    InvarianceProbe,
    check_guards,
    date_dependence,
    date_shifted_frame,
    judge_invariance,
    non_finite,
    static_date_findings,
    trade_guards,
)
from alphaloop.evaluate.scoring import History, score
from tests.conftest import InProcessSandbox, make_ohlcv

OK_STRATEGY = """
def strategy_logic(row):
    return 1 if row['f'] > 0 else -1
"""


@pytest.fixture(scope="module")
def history() -> History:
    df = make_ohlcv(900, seed=5)
    return History.from_splits({"train": df.iloc[:500], "val": df.iloc[500:]})


def val_metrics(history: History, signals: np.ndarray) -> dict[str, float]:
    return score(history, signals, folds=2).splits["val"]


@pytest.mark.parametrize("code, expect", [
    ("x = df[df.index > '2008-09-15']", "'2008-09-15'"),
    ("x = df.loc['2008':'2009']", "'2008'"),
    ("x = df.index < pd.Timestamp(2008, 9, 15)", "Timestamp(2008, 9, 15)"),
    ("x = pd.to_datetime(df.index) > pd.Timestamp(year=2009, month=3, day=9)", "Timestamp(2009, 3, 9)"),
    ("x = df.index.year >= 2010", "dates compared with year(s) [2010]"),
    ("x = 2008 <= df.index.year <= 2009", "[2008, 2009]"),
    ("x = df.index.year.isin([2008, 2011])", "dates matched against year(s) [2008, 2011]"),
    ("x = row['year'] == 2008", "dates compared with year(s) [2008]"),
    ("x = df.index.strftime('%Y').astype(int) > 2012", "[2012]"),
    ("x = {'2008-09-15': -1, '2009-03-09': 1}", "'2008-09-15'"),
    ("x = d == 20080915", "date-like number 20080915"),
    ("x = s == '15/09/2008'", "'15/09/2008'"),
    ("x = s == 'Sep 15, 2008'", "'Sep 15, 2008'"),
    ("x = np.datetime64('2020-03-16T00:00')", "'2020-03-16T00:00'"),
])
def test_static_date_literals_are_found(code: str, expect: str) -> None:
    found = static_date_findings(code)
    assert found and found[0].startswith("line 1: ") and any(expect in f for f in found), found


@pytest.mark.parametrize("code", [
    "x = df['Close'].rolling(200).mean()",
    "x = df['Close'] > 2000",
    "x = len(df) > 2000 and df.index.day_of_week == 4",
    "x = df['Close'].resample('ME').last()",
    "x = df.index.month.isin([11, 12, 1])",
    "x = df['Volume'] > 20080915.5",
    "x = 'sma_2000'",
    "x = (",  # a syntax error is the gate's business
])
def test_ordinary_code_has_no_date_findings(code: str) -> None:
    assert static_date_findings(code) == []


def run_pair(code: str, frame: pd.DataFrame):
    out = InProcessSandbox().run(code, [frame, date_shifted_frame(frame)])
    assert out.ok, out.reason
    return out.results


def test_date_shift_keeps_calendar_and_moves_years() -> None:
    frame = make_ohlcv(300, seed=1)
    moved = date_shifted_frame(frame)
    assert (moved.index.year - frame.index.year == 28).all()
    assert (moved.index.day_of_week == frame.index.day_of_week).all()
    assert (moved.index.month == frame.index.month).all() and (moved.index.day == frame.index.day).all()
    pd.testing.assert_frame_equal(moved.reset_index(drop=True), frame.reset_index(drop=True))
    late = frame.set_axis(frame.index + pd.Timedelta(days=365 * 80))
    assert (date_shifted_frame(late).index.year - late.index.year == -28).all()


def test_behavioural_check_catches_year_read_through_a_variable() -> None:
    frame = make_ohlcv(800, seed=2)
    code = """
def generate_features(df):
    cutoff = 2000 + 2
    df['f'] = np.where(df.index.year == cutoff, 1.0, -1.0)
    return df
""" + OK_STRATEGY
    assert static_date_findings(code) == []  # the literal hides in arithmetic...
    full, shifted = run_pair(code, frame)
    reason = date_dependence(full, shifted, frame.index)
    assert reason and "every date moved 28 years" in reason and "2002-01-01" in reason  # ...its behaviour does not


def test_behavioural_check_catches_lookup_table_of_dates() -> None:
    frame = make_ohlcv(800, seed=2)
    code = """
CRASHES = ['2001-09-17', '2002-07-19', '2002-10-09']

def generate_features(df):
    df['f'] = np.where(df.index.strftime('%Y-%m-%d').isin(CRASHES), -1.0, 1.0)
    return df
""" + OK_STRATEGY
    assert len(static_date_findings(code)) == 3
    full, shifted = run_pair(code, frame)
    assert date_dependence(full, shifted, frame.index) is not None


@pytest.mark.parametrize("body", [
    "df['f'] = np.where(df.index.day_of_week == 0, 1.0, -1.0)",  # weekday effect
    "df['f'] = np.where(df.index.month.isin([11, 12, 1, 2, 3, 4]), 1.0, -1.0)",  # sell in May
    "df['f'] = np.where(df.index.day <= 3, 1.0, -1.0)",  # turn of the month
    "df['f'] = df['Close'].pct_change(5)",
])
def test_calendar_seasonality_is_not_date_hacking(body: str) -> None:
    frame = make_ohlcv(800, seed=2)
    code = f"def generate_features(df):\n    {body}\n    return df\n{OK_STRATEGY}"
    full, shifted = run_pair(code, frame)
    assert date_dependence(full, shifted, frame.index) is None
    assert static_date_findings(code) == []


def test_non_finite_after_warmup_in_scoring_windows() -> None:
    index = pd.bdate_range("2005-01-03", periods=10)
    feats = {
        "inf_late": np.r_[np.nan, np.nan, 1.0, 1.0, np.inf, 1.0, 1.0, -np.inf, 1.0, 1.0],
        "nan_holes": np.r_[np.nan, 1.0, np.nan, 1.0, 1.0, np.nan, 1.0, 1.0, 1.0, 1.0],
        "inf_outside": np.r_[1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, np.inf],
    }
    bad = non_finite(feats, index, [slice(0, 5), slice(5, 9)])
    assert bad == {"inf_late": {"rows": 2, "first": "2005-01-07"}}


@pytest.mark.parametrize("kind, guard, words", [
    ("flat", "always_flat", "always flat on validation"),
    ("long", "always_long", "that is buy and hold"),
    ("one_trip", "too_few_trades", "too few trades on validation"),
    ("flip", "turnover", "turnover"),
])
def test_trade_guards(kind: str, guard: str, words: str, history: History) -> None:
    n = len(history.frame)
    signals = {
        "flat": np.zeros(n),
        "long": np.ones(n),
        "one_trip": np.r_[np.zeros(550), 1, np.zeros(100), -1, np.zeros(n - 652)],
        "flip": np.where(np.arange(n) % 2 == 0, 1, -1),
    }[kind].astype(np.int8)
    failures, values = trade_guards(val_metrics(history, signals), GuardLimits())
    assert failures and failures[0][0] == guard and words in failures[0][1]
    assert values["val_round_trips_per_year"] >= 0


def test_reasonable_trading_passes(history: History) -> None:
    close = history.frame["Close"]
    fast, slow = close.rolling(10).mean(), close.rolling(40).mean()
    signals = np.where(fast > slow, 1, -1).astype(np.int8)
    failures, values = trade_guards(val_metrics(history, signals), GuardLimits())
    assert failures == [] and 1 <= values["val_round_trips_per_year"] <= 50


def test_check_guards_orders_hacking_first_and_lists_the_rest(history: History) -> None:
    frame = history.frame
    code = """
def generate_features(df):
    df['f'] = np.where(df.index > '2002-06-03', 1.0, 0.0)
    df['g'] = np.log(df['Volume'] * 0)
    return df

def strategy_logic(row):
    return 1 if row['f'] > 0 else 0
"""
    full, shifted = run_pair(code, frame)
    moved = InvarianceProbe(date_shifted_frame(frame), "date_shift", 0, 0)
    report = check_guards(code, frame.index, list(history.windows.values()), val_metrics(history, full.signals),
                          full, judge_invariance(full, [(moved, shifted)], frame.index, 0))
    names = [name for name, _ in report.failures]
    assert names[:3] == ["hard_coded_dates", "date_dependence", "non_finite"] and "always_long" in names
    assert report.reason.startswith("hard-coded dates in the region (line 3: date-like string '2002-06-03')")
    assert "also failed: date_dependence, non_finite, always_long" in report.reason
    assert not report.ok


ROW_KEYED = """
def generate_features(df):
    df['row'] = np.arange(len(df))
    df['f'] = df['Close'].pct_change().rolling(10).mean()
    return df

def strategy_logic(row):
    return 1 if row['row'] % 7 < 3 else -1
"""
PRICE_KEYED = """
def generate_features(df):
    df['fast'] = df['Close'].rolling(10).mean()
    df['slow'] = df['Close'].ewm(span=40, adjust=False).mean()
    return df

def strategy_logic(row):
    return 1 if row['fast'] > row['slow'] else -1
"""


def judge_positions(code: str, frame: pd.DataFrame, seed: int = 0) -> list[tuple[str, str]]:
    from alphaloop.evaluate.guards import invariance_failures, invariance_probes
    from alphaloop.evaluate.probes import warmup_rows

    probes = invariance_probes(frame, seed)
    out = InProcessSandbox().run(code, [frame] + [p.frame for p in probes])
    assert out.ok, out.reason
    full = out.results[0]
    return invariance_failures(full, list(zip(probes, out.results[1:], strict=True)), frame.index,
                               warmup_rows(full.features))


def test_prepended_history_is_earlier_plausible_and_keeps_the_bars(history: History) -> None:
    from alphaloop.evaluate.guards import PREPEND_ROWS, TRIM_ROWS, invariance_probes, prepended_frame

    frame = history.frame
    out = prepended_frame(frame, 120, seed=3)
    assert len(out) == len(frame) + 120 and out.index.is_monotonic_increasing and out.index.is_unique
    assert out.index[119] < frame.index[0] and (out.index[:120].day_of_week < 5).all()
    pd.testing.assert_frame_equal(out.iloc[120:], frame)
    head = out.iloc[:120]
    assert (head["High"] >= head["Low"]).all() and (head[["Open", "High", "Low", "Close"]] > 0).all().all()
    assert not head["Close"].equals(frame["Close"].iloc[:120].set_axis(head.index))
    kinds = [(p.kind, p.offset) for p in invariance_probes(frame, seed=1)]
    assert [k for k, _ in kinds] == ["date_shift", "level", "prepend", "trim"]
    assert PREPEND_ROWS[0] <= kinds[2][1] <= PREPEND_ROWS[1] and TRIM_ROWS[0] <= -kinds[3][1] <= TRIM_ROWS[1]


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_row_numbers_are_caught_and_prices_are_not(seed: int, history: History) -> None:
    failures = judge_positions(ROW_KEYED, history.frame, seed)
    assert [name for name, _ in failures] == ["position_dependence"]
    reason = failures[0][1]
    assert reason.startswith("signals depend on row positions, not on prices:") and "range(len(df))" in reason
    assert judge_positions(PRICE_KEYED, history.frame, seed) == []


def test_position_reason_names_the_probe_and_first_differing_date(history: History) -> None:
    from alphaloop.evaluate.guards import InvarianceProbe, position_dependence

    frame = history.frame
    out = InProcessSandbox().run(ROW_KEYED, [frame, frame.iloc[30:]])
    probe = InvarianceProbe(frame.iloc[30:], "trim", 30, -30)
    reason = position_dependence(out.results[0], probe, out.results[1], frame.index, 10)
    first = 30 + 10 + 300  # the rows removed, the warm-up, SETTLE_ROWS
    a, b = out.results[0].signals[first:], out.results[1].signals[first - 30:]
    assert f"first {frame.index[first + int(np.argmax(a != b))].date()}" in reason
    assert "when the first 30 rows are removed" in reason
