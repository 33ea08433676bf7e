"""Turn what a forecaster returned into a probability array and check it, in the trusted parent.

``forecast(row)`` returns ``{1: (p_down, p_flat, p_up), 3: ..., 5: ..., 10: ...}`` for every row.
``decode_forecasts`` (``sandbox/forecasts.py``, shipped to the sandbox child, which runs it and sends
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
from sandbox.forecasts import CODE_TEXT, MISSING_HORIZON, NOT_A_MAPPING, NOT_THREE_NUMBERS, OK, DecodedForecasts
from sandbox.forecasts import decode_forecasts as decode_with
from sandbox.wire import array_at

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


def read_forecasts(body: bytearray, desc: dict, index: pd.Index, horizons: Sequence[int],
                   prefix: str = "") -> np.ndarray | None:
    """The sandbox child's probabilities and codes for one frame, validated (None for the trade task).

    The buffers are located by the child's description but bounds-checked by ``sandbox.wire``; a
    fault is a ValueError naming its horizon, date and what was wrong, after ``prefix``.
    """
    if not horizons:
        return None
    n, h = len(index), len(horizons)
    probs = array_at(body, desc.get("forecasts"), n * h * 3).reshape(n, h, 3)
    codes = array_at(body, desc.get("codes"), n * h, "<i1").reshape(n, h)
    problem = forecast_problem(probs, index, codes, horizons)
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
