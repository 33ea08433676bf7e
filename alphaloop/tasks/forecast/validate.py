"""Turn what a forecaster returned into a probability array and check it, in the trusted parent.

``forecast(row)`` returns ``{1: (p_down, p_flat, p_up), 3: ..., 5: ..., 10: ...}`` for every row.
``decode_forecasts`` (``alphaloop/tasks/forecast/driver.py``, whose text the sandbox child runs, sending
back the two arrays instead of Python objects) turns the per-row mappings into a float64 array
(n_rows, horizons, 3) plus a code per row and horizon saying whether the entry could be read at all.
``forecast_problem`` then finds the first entry that is not a probability distribution and names
its horizon, its date and what was wrong.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from alphaloop.tasks.forecast.buckets import HORIZONS
from alphaloop.tasks.forecast.driver import (
    CODE_TEXT,
    MISSING_HORIZON,
    NOT_A_MAPPING,
    NOT_THREE_NUMBERS,
    OK,
    DecodedForecasts,
)
from alphaloop.tasks.forecast.driver import decode_forecasts as decode_with

__all__ = ["CODE_TEXT", "MISSING_HORIZON", "NOT_A_MAPPING", "NOT_THREE_NUMBERS", "OK", "DecodedForecasts",
           "decode_forecasts", "forecast_problem", "read_forecasts", "validate_forecasts"]

SUM_TOLERANCE = 1e-6


def decode_forecasts(raw: Sequence[object], horizons: Sequence[int] = HORIZONS) -> DecodedForecasts:
    """Per-row mappings -> (n, H, 3) float64 and (n, H) int8 codes (the sandbox child runs the same)."""
    return decode_with(raw, horizons)


def forecast_problem(probs: np.ndarray, dates: Sequence[object] | pd.Index, codes: np.ndarray | None = None,
                     horizons: Sequence[int] = HORIZONS) -> str | None:
    """None when every row holds a distribution per horizon, else the first failure in words."""
    p = np.asarray(probs, dtype=np.float64)
    hs = tuple(horizons)
    n = len(dates)
    if p.shape != (n, len(hs), 3):
        return f"expected forecasts of shape ({n}, {len(hs)}, 3) (rows, horizons {hs}, buckets), got {p.shape}"
    c = np.zeros((n, len(hs)), dtype=np.int8) if codes is None else np.asarray(codes)
    readable = c == OK
    finite = np.isfinite(p).all(axis=2)
    nonneg = (np.where(np.isfinite(p), p, 0.0) >= 0).all(axis=2)
    total = np.where(finite, p.sum(axis=2), np.nan)
    sums = np.abs(total - 1.0) <= SUM_TOLERANCE
    bad = ~readable | ~finite | ~nonneg | ~sums
    if not bad.any():
        return None
    i, j = (int(v) for v in np.argwhere(bad)[0])
    h, date, values = hs[j], pd.Timestamp(dates[i]).date() if is_date(dates[i]) else dates[i], p[i, j]
    if not readable[i, j]:
        what = CODE_TEXT.get(int(c[i, j]), f"unreadable entry (code {int(c[i, j])})")
    elif not finite[i, j]:
        what = f"probabilities {fmt_triple(values)} are not all finite"
    elif not nonneg[i, j]:
        what = f"probabilities {fmt_triple(values)} include a negative value"
    else:
        what = f"probabilities {fmt_triple(values)} sum to {total[i, j]:.9g}, not 1 within {SUM_TOLERANCE:g}"
    rows = int(bad.any(axis=1).sum())
    more = f" ({rows} rows fail in all; the first is shown)" if rows > 1 else ""
    return f"horizon {h} on {date}: {what}{more}"


def validate_forecasts(probs: np.ndarray, dates: Sequence[object] | pd.Index, codes: np.ndarray | None = None,
                       horizons: Sequence[int] = HORIZONS) -> np.ndarray:
    """The probabilities as float64 (n, H, 3), or ValueError naming the horizon, date and fault."""
    problem = forecast_problem(probs, dates, codes, horizons)
    if problem is not None:
        raise ValueError(problem)
    return np.asarray(probs, dtype=np.float64)


def read_forecasts(arrays: dict[str, np.ndarray], i: int, index: pd.Index, prefix: str = "") -> np.ndarray:
    """Instrument ``i``'s probabilities from the sandbox child's arrays, validated.

    A fault is a ValueError naming its horizon, date and what was wrong, after ``prefix``.
    """
    n, h = len(index), len(HORIZONS)
    probs, codes = arrays.get(f"forecasts/{i}"), arrays.get(f"codes/{i}")
    if probs is None or codes is None or probs.shape != (n, h, 3) or codes.shape != (n, h):
        raise ValueError(f"{prefix}forecasts of shape ({n}, {h}, 3) and codes of shape ({n}, {h}) expected")
    if not np.isin(codes, (OK, MISSING_HORIZON, NOT_THREE_NUMBERS, NOT_A_MAPPING)).all():
        raise ValueError(f"{prefix}unknown read codes")
    problem = forecast_problem(probs, index, codes.astype(np.int8), HORIZONS)
    if problem is not None:
        raise ValueError(prefix + problem)
    return np.asarray(probs, dtype=np.float64)


def is_date(value: object) -> bool:
    try:
        pd.Timestamp(value)
    except (TypeError, ValueError):
        return False
    return not isinstance(value, (int, float, np.integer, np.floating))


def fmt_triple(values: np.ndarray) -> str:
    return "(" + ", ".join(format(float(v), ".6g") for v in values) + ")"
