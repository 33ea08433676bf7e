"""What a forecaster returns is decoded and checked by the parent; faults name horizon, date and what."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from alphaloop.tasks.forecast.validate import (
    MISSING_HORIZON,
    NOT_A_MAPPING,
    NOT_THREE_NUMBERS,
    decode_forecasts,
    forecast_problem,
    validate_forecasts,
)

DATES = pd.bdate_range("2010-03-01", periods=4)
GOOD = {1: (0.3, 0.4, 0.3), 3: (1 / 3, 1 / 3, 1 / 3), 5: (0.2, 0.2, 0.6), 10: (0.1, 0.1, 0.8)}


def problem_with(bad: object, row: int = 2) -> str | None:
    raw = [GOOD] * len(DATES)
    raw = raw[:row] + [bad] + raw[row + 1:]
    dec = decode_forecasts(raw)
    return forecast_problem(dec.probs, DATES, dec.codes)


def test_valid_forecasts_pass_and_decode_in_horizon_order():
    dec = decode_forecasts([GOOD] * 4)
    assert forecast_problem(dec.probs, DATES, dec.codes) is None
    probs = validate_forecasts(dec.probs, DATES, dec.codes)
    assert probs.shape == (4, 4, 3) and probs.dtype == np.float64
    assert probs[0, 3].tolist() == [0.1, 0.1, 0.8] and (dec.codes == 0).all()


def test_numpy_values_and_lists_are_read_like_tuples():
    row = {1: np.array([0.3, 0.4, 0.3]), 3: [0.2, 0.3, 0.5], 5: (np.float64(0.5), 0.25, 0.25), 10: (0, 0, 1)}
    dec = decode_forecasts([row] * 4)
    assert forecast_problem(dec.probs, DATES, dec.codes) is None


def test_probabilities_that_do_not_sum_to_one_are_rejected():
    reason = problem_with({**GOOD, 5: (0.5, 0.3, 0.3)})
    assert reason.startswith("horizon 5 on 2010-03-03:") and "sum to 1.1" in reason


def test_a_tiny_rounding_error_is_accepted_but_not_more():
    assert problem_with({**GOOD, 3: (0.3, 0.3, 0.4 + 5e-7)}) is None
    assert "sum to" in problem_with({**GOOD, 3: (0.3, 0.3, 0.4 + 5e-6)})


def test_negative_probability_is_rejected():
    reason = problem_with({**GOOD, 10: (-0.1, 0.3, 0.8)})
    assert reason.startswith("horizon 10 on 2010-03-03:") and "negative" in reason


def test_nan_and_infinite_probabilities_are_rejected():
    assert "not all finite" in problem_with({**GOOD, 1: (np.nan, 0.5, 0.5)})
    assert problem_with({**GOOD, 1: (np.inf, 0.5, 0.5)}).startswith("horizon 1 on 2010-03-03")


def test_a_missing_horizon_is_rejected():
    reason = problem_with({k: v for k, v in GOOD.items() if k != 3}, row=1)
    assert reason.startswith("horizon 3 on 2010-03-02:") and "missing" in reason


def test_malformed_rows_are_pinpointed():
    dec = decode_forecasts([GOOD, {**GOOD, 5: (0.5, 0.5)}, None, {**GOOD, 1: "0.3,0.4,0.3"}])
    assert dec.codes[1].tolist() == [0, 0, NOT_THREE_NUMBERS, 0]
    assert (dec.codes[2] == NOT_A_MAPPING).all() and dec.codes[3, 0] == NOT_THREE_NUMBERS
    reason = forecast_problem(dec.probs, DATES, dec.codes)
    assert reason.startswith("horizon 5 on 2010-03-02:") and "three numbers" in reason and "3 rows fail" in reason
    assert decode_forecasts([{1: GOOD[1]}]).codes[0].tolist() == [0, MISSING_HORIZON, MISSING_HORIZON,
                                                                  MISSING_HORIZON]


def test_the_first_failing_row_is_named_and_validate_raises_it():
    raw = [GOOD, GOOD, {**GOOD, 1: (0.9, 0.9, 0.9)}, {**GOOD, 1: (-1, 1, 1)}]
    dec = decode_forecasts(raw)
    with pytest.raises(ValueError, match=r"^horizon 1 on 2010-03-03: .*sum to 2\.7.*2 rows fail"):
        validate_forecasts(dec.probs, DATES, dec.codes)


def test_wrong_number_of_rows_is_rejected():
    dec = decode_forecasts([GOOD] * 3)
    assert "shape" in forecast_problem(dec.probs, DATES, dec.codes)
