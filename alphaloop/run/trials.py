"""The trials of a run folder as the end-of-run statistics read them: a few figures of every iteration from
the index, then the accepted candidates' daily series one at a time.

Why: a night of 100,000 accepted candidates holds ~3 GB of returns as the records carry them; every task's
statistics read each series once and keep only what they test (``evaluate.columns``), so memory stays
bounded however long the night (docs/bench.md "End-of-run statistics at scale"). The files are read through
``Workdir``, their one owner.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

from alphaloop.evaluate.columns import TrialColumns
from alphaloop.run.workdir import Workdir


@dataclass(frozen=True)
class Trial:
    """What the statistics keep of one iteration's index entry."""

    iteration: int
    accepted: bool
    sharpe: float | None  # validation Sharpe: None when never scored, NaN when stored as null
    metric: float | None  # the run's own metric on validation (``IterationRecord.val_metric``)


def _trial(entry: dict[str, Any]) -> Trial:
    val = ((entry.get("scores") or {}).get("splits") or {}).get("val")
    sharpe = None if not val else float("nan") if val.get("sharpe") is None else float(val["sharpe"])
    metric = (val or {}).get(entry.get("metric") or "sharpe")
    return Trial(int(entry["iteration"]), entry.get("status") == "accepted", sharpe,
                 None if metric is None else float(metric))


def run_trials(wd: Workdir) -> list[Trial]:
    """Every iteration of the run, in order, from its index (a record file only where the index lacks a line)."""
    return wd.index_entries(_trial)


def accepted_with_returns(wd: Workdir, trials: Iterable[Trial]) -> list[int]:
    """The accepted iterations that kept daily returns: the columns of the statistics' trial matrix."""
    return [t.iteration for t in trials if t.accepted and wd.has_returns(t.iteration)]


def stream_series(wd: Workdir, iterations: Iterable[int], key: str = "val") -> Iterator[tuple[int, np.ndarray]]:
    """Each iteration's ``key`` series (a split's returns, or a task's per-day losses), read one at a time;
    an iteration that kept none is skipped."""
    for n in iterations:
        series = wd.split_returns(n, key)
        if series is not None:
            yield n, series


def trial_columns(wd: Workdir, iterations: list[int], bh_returns: np.ndarray, periods_per_year: float,
                  best: int) -> TrialColumns:
    """The validation returns of ``iterations`` streamed into ``TrialColumns`` (``best``: the best's iteration)."""
    columns = TrialColumns(len(iterations), bh_returns, periods_per_year)
    for n in iterations:
        columns.add(wd.split_returns(n, "val"), best=n == best)
    return columns
