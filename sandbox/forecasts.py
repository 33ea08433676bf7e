"""Turn what a forecaster's ``forecast(row)`` returned into two arrays, inside or outside the sandbox.

``forecast(row)`` returns ``{1: (p_down, p_flat, p_up), 3: ..., 5: ..., 10: ...}`` for every row.
``decode_forecasts`` turns the per-row mappings into a float64 array (n_rows, horizons, 3) plus an
int8 code per row and horizon saying whether the entry could be read at all. The sandbox child runs
it and sends back only those two arrays, never Python objects; the trusted parent then checks them
(``alphaloop.tasks.forecast.validate``). This module is shipped to the sandbox worker as source text (see
``runner.SHIPPED``), so it imports only the standard library and numpy, never alphaloop.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

OK, MISSING_HORIZON, NOT_THREE_NUMBERS, NOT_A_MAPPING = 0, 1, 2, 3
CODE_TEXT = {
    MISSING_HORIZON: "the horizon is missing from the returned mapping",
    NOT_THREE_NUMBERS: "the value is not three numbers (p_down, p_flat, p_up)",
    NOT_A_MAPPING: "forecast(row) did not return a mapping from horizon to probabilities",
}


@dataclass(frozen=True)
class DecodedForecasts:
    """Probabilities (n, H, 3), NaN where unreadable, and a code (n, H) per entry (0 = read)."""

    probs: np.ndarray
    codes: np.ndarray


def decode_entry(value: object) -> tuple[np.ndarray | None, int]:
    """Three floats from one horizon's value, or None and the code saying why not."""
    if isinstance(value, (str, bytes)):
        return None, NOT_THREE_NUMBERS
    try:
        arr = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError, OverflowError):
        return None, NOT_THREE_NUMBERS
    if arr.shape != (3,):
        return None, NOT_THREE_NUMBERS
    return arr, OK


def decode_forecasts(raw: Sequence[object], horizons: Sequence[int]) -> DecodedForecasts:
    """Per-row mappings -> (n, H, 3) float64 and (n, H) int8 codes; never raises on bad rows.

    The fast path builds the array in one go when every row is a well-formed mapping; otherwise each
    row is read on its own so one bad entry is pinpointed rather than failing the whole array.
    """
    n, hs = len(raw), tuple(horizons)
    try:
        if not all(isinstance(m, Mapping) for m in raw):
            raise TypeError("not every row is a mapping")
        probs = np.array([[m[h] for h in hs] for m in raw], dtype=np.float64)
        if probs.shape == (n, len(hs), 3):
            return DecodedForecasts(probs=probs, codes=np.zeros((n, len(hs)), dtype=np.int8))
    except (TypeError, ValueError, KeyError, OverflowError):
        pass
    probs = np.full((n, len(hs), 3), np.nan)
    codes = np.zeros((n, len(hs)), dtype=np.int8)
    for i, m in enumerate(raw):
        if not isinstance(m, Mapping):
            codes[i] = NOT_A_MAPPING
            continue
        for j, h in enumerate(hs):
            if h not in m:
                codes[i, j] = MISSING_HORIZON
                continue
            arr, code = decode_entry(m[h])
            codes[i, j] = code
            if arr is not None:
                probs[i, j] = arr
    return DecodedForecasts(probs=probs, codes=codes)
