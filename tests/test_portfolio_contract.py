"""The portfolio contract: the child driver builds ``day`` panels and decodes weights; the parent refuses
any weight that breaks the contract with a reason naming the date, the instrument and the value."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from alphaloop.tasks.portfolio.contract import Calendar, WeightsError, validate_weights
from alphaloop.tasks.portfolio.driver import AllocationError, decode_weights, feature_key, run_frame
from tests.portfolio_support import EQUAL_WEIGHT, MOMENTUM, namespace, universe_frames


def test_day_holds_one_row_per_instrument_with_a_bar_indexed_by_number() -> None:
    frames = universe_frames(n=3, days=120, ragged=True, seed=1)
    seen: list[pd.DataFrame] = []
    ns = namespace(MOMENTUM)
    inner = ns["allocate"]
    ns["allocate"] = lambda day: (seen.append(day), inner(day))[1]
    out = run_frame(ns, frames)
    calendar = Calendar.of(frames)
    assert out["weights"].shape == (len(calendar.dates), 3)
    assert len(seen) == len(calendar.dates)
    for t in (0, 50, 119):
        day = seen[t]
        expected = [k + 1 for k in range(3) if calendar.present[t, k]]
        assert day.index.tolist() == expected
        for k in expected:
            row = frames[k - 1].loc[calendar.dates[t]]
            assert day.loc[k, "Close"] == row["Close"]
    absent = ~calendar.present
    assert absent.any() and np.isnan(out["weights"][absent]).all()
    assert np.isfinite(out["weights"][calendar.present]).all()
    assert feature_key(0, "mom") in out and feature_key(2, "mom") in out


def test_series_dict_and_list_decode_alike_and_missing_is_zero() -> None:
    index = np.array([1, 2, 4])
    as_list = decode_weights([0.2, None, -0.1], index, pd.Timestamp("2020-01-02"))
    as_dict = decode_weights({1: 0.2, 4: -0.1}, index, pd.Timestamp("2020-01-02"))
    as_series = decode_weights(pd.Series({4: -0.1, 1: 0.2, 2: np.nan}), index, pd.Timestamp("2020-01-02"))
    for w in (as_list, as_dict, as_series):
        assert np.nan_to_num(w).tolist() == [0.2, 0.0, -0.1]


@pytest.mark.parametrize(("out", "words"), [
    ({3: 0.5}, ["2020-01-02", "instrument 3", "0.5"]),
    ({1: "0.5"}, ["2020-01-02", "instrument 1", "'0.5'"]),
    ([0.1, 0.2], ["2020-01-02", "2 weights", "3 instruments"]),
    ("long", ["2020-01-02", "str"]),
])
def test_weights_that_are_not_weights_are_named(out: object, words: list[str]) -> None:
    with pytest.raises(AllocationError) as err:
        decode_weights(out, np.array([1, 2, 4]), pd.Timestamp("2020-01-02"))
    for w in words:
        assert w in str(err.value)


def _calendar() -> Calendar:
    return Calendar.of(universe_frames(n=3, days=30, seed=2))


@pytest.mark.parametrize(("value", "cap", "words"), [
    (1.5, 2.0, ["instrument 2", "1.5", "outside [-1, 1]"]),
    (np.inf, 2.0, ["instrument 2", "inf", "not finite"]),
    (0.9, 1.0, ["gross exposure 1.3", "cap 1", "instrument 2 weight 0.9"]),
])
def test_parent_refuses_out_of_range_non_finite_and_gross_above_cap(value: float, cap: float, words: list[str]) -> None:
    cal = _calendar()
    w = np.full(cal.present.shape, 0.2)
    w[7, 1] = value
    with pytest.raises(WeightsError) as err:
        validate_weights(w, cal, max_gross=cap)
    date = str(cal.dates[7].date())
    assert date in str(err.value) and err.value.date == date and err.value.instrument == 2
    for word in words:
        assert word in str(err.value)


def test_parent_reads_nan_as_zero_and_accepts_the_cap_exactly() -> None:
    cal = _calendar()
    w = np.full(cal.present.shape, 1 / 3)
    w[3, 0] = np.nan
    out = validate_weights(w, cal)
    assert out[3, 0] == 0.0 and np.isclose(out[4].sum(), 1.0)
    with pytest.raises(WeightsError, match="shape"):
        validate_weights(w[:, :2], cal)


def test_equal_weight_candidate_runs_through_the_driver() -> None:
    frames = universe_frames(n=4, days=60, seed=3)
    out = run_frame(namespace(EQUAL_WEIGHT), frames)
    assert np.allclose(out["weights"], 0.25)


def test_the_real_sandbox_runs_the_portfolio_driver_on_a_panel() -> None:
    from alphaloop.evaluate.sandboxed import open_sandbox

    frames = universe_frames(n=3, days=200, seed=4)
    with open_sandbox() as box:
        out = box.run(MOMENTUM, [frames], timeout_s=60, task="portfolio")
        missing = box.run("def generate_features(df):\n    return df\n", [frames], timeout_s=60, task="portfolio")
    assert out.ok, out.reason
    result = out.results[0][0]
    assert result.weights.shape == (200, 3) and set(result.features[2]) >= {"mom", "Close"}
    assert missing.status == "missing_output" and "allocate" in missing.reason
