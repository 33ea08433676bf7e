"""The best forecaster day by day: its probabilities beside what happened, with scores and grades.

One row per bar of a split: the date and close, then per horizon h the three probabilities, the
called bucket (the most probable by more than ``CALL_MARGIN``, else "tie"), the cut points as
h-bar returns and as price levels from this close, the realised h-bar return and bucket
(measured inside the split, blank where t+h lies past its end), the
RPS and the grade. ``final`` writes the test split's (``forecasts_test.csv``), the loop's end the
validation split's (``forecasts_val.csv``); the report draws its charts from them.
"""

from __future__ import annotations

import io

import numpy as np
import pandas as pd

from alphaloop.tasks.forecast.buckets import BUCKETS, BucketScheme
from alphaloop.tasks.forecast.scores import CALL_MARGIN, GRADES, grade, rps


def forecast_frame(frame: pd.DataFrame, probs: np.ndarray, scheme: BucketScheme, window: slice) -> pd.DataFrame:
    """The rows of ``window``: date, close, and per horizon p_down/p_flat/p_up, return, bucket, rps, grade."""
    close = frame["Close"].to_numpy(dtype=np.float64)[window]
    out = scheme.outcomes(close)
    p = np.asarray(probs, dtype=np.float64)[window]
    cols: dict[str, object] = {"date": [str(d.date()) for d in frame.index[window]], "close": close}
    for j, h in enumerate(scheme.horizons):
        for k, name in enumerate(BUCKETS):
            cols[f"p_{name}_{h}"] = p[:, j, k]
        b = out.buckets[:, j]
        ok = np.isfinite(b)
        score = np.full(b.shape, np.nan)
        grades = np.array([""] * b.size, dtype=object)
        if ok.any():
            score[ok] = rps(p[ok, j], b[ok])
            grades[ok] = [GRADES[g] for g in grade(p[ok, j], b[ok])]
        cols[f"return_{h}"] = out.returns[:, j]
        cols[f"bucket_{h}"] = [BUCKETS[int(x)] if np.isfinite(x) else "" for x in b]
        cols[f"rps_{h}"] = score
        cols[f"grade_{h}"] = grades
        order = np.sort(p[:, j], axis=1)
        called = np.where(order[:, -1] - order[:, -2] > CALL_MARGIN, np.asarray(BUCKETS, dtype=object)[
            p[:, j].argmax(axis=1)], "tie")
        lower, upper = scheme.cuts[j]
        cols[f"called_{h}"] = called  # the most probable bucket by more than CALL_MARGIN, else "tie"
        cols[f"cut_lower_{h}"] = lower  # the h-bar return below which the outcome is "down" (train tercile)
        cols[f"cut_upper_{h}"] = upper  # ... above which it is "up"
        cols[f"price_lower_{h}"] = close * (1.0 + lower)  # the same cut points as price levels h bars ahead
        cols[f"price_upper_{h}"] = close * (1.0 + upper)
    return pd.DataFrame(cols)


def to_csv(df: pd.DataFrame) -> str:
    buf = io.StringIO()
    df.to_csv(buf, index=False, float_format="%.10g")
    return buf.getvalue()
