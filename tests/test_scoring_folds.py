"""Walk-forward folds are a diagnostic over train; validation stays the selection split."""

from __future__ import annotations

import numpy as np
import pandas as pd

from alphaloop.evaluate.scoring import History, score
from tests.test_sandbox_support import make_ohlcv


def _history(rows: int = 1500, val_rows: int = 300) -> History:
    frame = make_ohlcv(rows, seed=3)
    return History.from_splits({"train": frame.iloc[:-val_rows], "val": frame.iloc[-val_rows:]})


def test_folds_cover_train_only_and_never_touch_validation() -> None:
    history = _history()
    signals = np.where(np.arange(len(history.frame)) % 40 < 20, 1, -1)
    scores = score(history, signals, folds=4)
    val_start = history.frame.index[history.windows["val"].start]
    assert len(scores.folds) == 4
    assert all(pd.Timestamp(f["end"]) < val_start for f in scores.folds)
    train_end = history.frame.index[history.windows["train"].stop - 1]
    assert pd.Timestamp(scores.folds[-1]["end"]) == train_end


def test_validation_score_does_not_depend_on_the_fold_count() -> None:
    history = _history()
    signals = np.where(np.arange(len(history.frame)) % 30 < 12, 1, -1)
    a, b = score(history, signals, folds=2), score(history, signals, folds=6)
    assert a.splits["val"] == b.splits["val"]
    assert len(a.folds) == 2 and len(b.folds) == 6
