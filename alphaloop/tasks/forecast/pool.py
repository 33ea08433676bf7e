"""Score one forecaster over a universe: every instrument's days pooled into one set of figures.

Each instrument's outcomes are bucketed by ITS OWN train terciles (a volatile instrument's "up" is a
bigger move than a quiet one's), and each day's climatology is its instrument's. The days of every
instrument are then concatenated per window (split or fold) and scored as one window, so the skill
is ``1 - mean RPS / mean climatology RPS`` over the pooled days, and the calibration, grades,
direction accuracy and best and worst days are over the pooled days too (each day naming its
instrument by number). With one instrument this is ``score_forecasts`` exactly.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from alphaloop.evaluate.scoring import DEFAULT_FOLDS, History, fold_windows
from alphaloop.tasks.forecast.buckets import BucketScheme
from alphaloop.tasks.forecast.scores import (
    ForecastScores,
    WindowScores,
    rolling_climatology,
    score_forecasts,
    score_window,
)


def _pooled(parts: list[tuple[slice, int]], histories: Sequence[History], probs: Sequence[np.ndarray],
            schemes: Sequence[BucketScheme]) -> WindowScores:
    """One window pooled over instruments: ``parts`` holds (window, instrument index) pairs."""
    p, b, r, clim, roll, dates, inst = [], [], [], [], [], [], []
    for window, k in parts:
        whole = histories[k].frame["Close"].to_numpy(dtype=np.float64)
        close = whole[window]
        out = schemes[k].outcomes(close)
        roll.append(rolling_climatology(schemes[k].outcomes(whole).buckets, schemes[k].horizons,
                                        schemes[k].climatology)[window])
        p.append(np.asarray(probs[k], dtype=np.float64)[window])
        b.append(out.buckets)
        r.append(out.returns)
        clim.append(np.broadcast_to(schemes[k].climatology, (len(close), *schemes[k].climatology.shape)))
        dates.extend(histories[k].frame.index[window])
        inst.append(np.full(len(close), k + 1, dtype=np.int64))
    return score_window(np.concatenate(p), np.concatenate(b), np.concatenate(r), dates, schemes[0],
                        climatology=np.concatenate(clim), instruments=np.concatenate(inst),
                        rolling=np.concatenate(roll))


def score_forecast_universe(histories: Sequence[History], probs: Sequence[np.ndarray], folds: int = DEFAULT_FOLDS,
                            splits: tuple[str, ...] = ("train", "val")) -> ForecastScores:
    """Score validated (N_k, H, 3) forecasts of every instrument, pooled over the instruments' days.

    The per-day losses (``losses``) are concatenated instrument after instrument, so their dates repeat
    across instruments; the block bootstrap of the statistics resamples them as one series.
    """
    if len(histories) != len(probs):
        raise ValueError(f"{len(probs)} forecast arrays for {len(histories)} instruments")
    if len(histories) == 1:
        return score_forecasts(histories[0], probs[0], folds=folds, splits=splits)
    schemes = [BucketScheme.from_train(h.frame["Close"].to_numpy(dtype=np.float64)[h.windows["train"]])
               for h in histories]
    for k, (h, pk) in enumerate(zip(histories, probs, strict=True)):
        shape = np.shape(pk)
        if shape != (len(h.frame), len(schemes[k].horizons), 3):
            raise ValueError(f"instrument {k + 1}: forecasts of shape {shape} for {len(h.frame)} rows")
    results = {name: _pooled([(h.windows[name], k) for k, h in enumerate(histories)], histories, probs, schemes)
               for name in splits}
    per_fold: dict[int, list[tuple[slice, int]]] = {}
    for k, h in enumerate(histories):  # folds of train only, as the single instrument's (validation is in none)
        train = h.windows.get("train")
        if train is None:
            continue
        base = train.start
        for i, w in enumerate(fold_windows(train.stop - base, folds)):
            per_fold.setdefault(i, []).append((slice(base + w.start, base + w.stop), k))
    fold_rows = []
    for i in sorted(per_fold):
        parts = per_fold[i]
        starts = [histories[k].frame.index[w.start] for w, k in parts]
        ends = [histories[k].frame.index[w.stop - 1] for w, k in parts]
        fold_rows.append({**_pooled(parts, histories, probs, schemes).summary, "start": str(min(starts).date()),
                          "end": str(max(ends).date())})
    return ForecastScores.of(results, fold_rows, schemes[0], tuple(schemes))
