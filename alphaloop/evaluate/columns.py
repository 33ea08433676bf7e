"""The trial matrix of the end-of-run statistics, gathered one trial at a time in bounded memory.

A night of 100,000 accepted candidates holds 100,000 validation series of ~1,000 days: 800 MB as
float64, ~3 GB as the Python lists records carry. The statistics read only part of it: the effective
trial count a seeded sample of ``EFFECTIVE_TRIALS_CAP`` columns (``stats.effective_trials``), SPA at most
``SPA_CAP`` distinct series, those with the highest mean (``spa_models``), the DSRs the best column
and one Sharpe per column. ``TrialColumns`` keeps exactly those as the series stream by, so the figures
are those of the whole matrix while memory is bounded by the two caps (~32 MB at 1,000 days).
"""

from __future__ import annotations

import hashlib
import heapq
import math
from collections.abc import Sequence

import numpy as np

from alphaloop.evaluate.backtest import TRADING_DAYS

SPA_REPS = 1000  # stationary-bootstrap draws of Hansen's SPA
SPA_CAP = 2000  # distinct candidates SPA bootstraps at most: those with the highest mean return (docs/bench.md)
EFFECTIVE_TRIALS_CAP = 2000  # trials the effective count reads at most; beyond, a seeded sample, scaled to all


def column_sharpes(returns: np.ndarray, periods_per_year: float = TRADING_DAYS) -> np.ndarray:
    """Annualised Sharpe of each column (ddof=1, as the backtester); 0 for a constant column."""
    r = np.asarray(returns, dtype=np.float64)
    sd = r.std(axis=0, ddof=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        out = np.where(sd > 1e-15, r.mean(axis=0) / sd, 0.0)
    return out * math.sqrt(periods_per_year)


def sample_columns(m: int, cap: int = EFFECTIVE_TRIALS_CAP) -> np.ndarray | None:
    """The seeded sample of columns the effective count reads when there are more than ``cap`` (None: all),
    in the order it reads them (its first half is the half-sample the extrapolation compares with)."""
    return None if m <= cap else np.random.default_rng(0).permutation(m)[:cap]


def column_means(r: np.ndarray) -> np.ndarray:
    """Each column's mean, summed as a lone series' ``mean()`` sums it (so a streamed column ranks the same)."""
    return np.ascontiguousarray(np.asarray(r, dtype=np.float64).T).mean(axis=1)


def spa_test(bh_returns: np.ndarray, accepted_returns: Sequence[np.ndarray], seed: int = 0,
             reps: int = SPA_REPS, cap: int = SPA_CAP) -> dict[str, float] | None:
    """Hansen's SPA p-values of the accepted candidates against buy and hold, or None if none."""
    from arch.bootstrap import SPA

    if not accepted_returns:
        return None
    bench = -np.asarray(bh_returns, dtype=np.float64)
    models = -spa_models(np.column_stack([np.asarray(r, dtype=np.float64) for r in accepted_returns]), cap)
    if models.shape[0] != bench.size:
        raise ValueError(f"returns of {models.shape[0]} days against a benchmark of {bench.size} days")
    spa = SPA(bench, models, reps=reps, bootstrap="stationary", seed=seed)
    spa.compute()
    p = spa.pvalues
    return {"lower": float(p["lower"]), "consistent": float(p["consistent"]), "upper": float(p["upper"])}


def spa_models(returns: np.ndarray, cap: int = SPA_CAP) -> np.ndarray:
    """The columns SPA bootstraps: each distinct series once (a copy adds nothing to the maximum it
    tests), and at most ``cap`` of them, those with the highest mean return. The test's statistic is
    the best standardised mean, and its consistent p-value already sets aside candidates far below the
    best; the ones dropped here are the furthest below. Cost: reps x days x columns, so a night of
    thousands of accepted candidates is bounded."""
    r = np.asarray(returns, dtype=np.float64)
    if r.shape[1] > 1:
        _, first = np.unique(r.T, axis=0, return_index=True)
        r = r[:, np.sort(first)]
    if r.shape[1] > cap:
        keep = np.sort(np.argsort(-column_means(r), kind="stable")[:cap])
        r = r[:, keep]
    return r


class SpaColumns:
    """The series SPA bootstraps, kept as they stream by: each distinct series once (a copy adds nothing to the
    maximum SPA tests) and at most ``cap`` of them, those ranked highest (by default the highest mean return;
    ``spa_models`` is the same choice over a whole matrix)."""

    def __init__(self, cap: int = SPA_CAP) -> None:
        self.cap = cap
        self._seen: set[bytes] = set()
        self._heap: list[tuple[float, int, np.ndarray]] = []  # (rank, -order, series): the cap best kept
        self.candidates = 0  # series offered (copies included)
        self.distinct = 0  # distinct series among them

    def add(self, x: np.ndarray, rank: float | None = None) -> None:
        """The next series; ``rank``: what ``cap`` keeps the highest of (default its mean)."""
        order = self.candidates
        self.candidates += 1
        key = hashlib.sha256((x + 0.0).tobytes()).digest()  # + 0.0: -0.0 and 0.0 are one value, as np.unique
        if key in self._seen:
            return
        self._seen.add(key)
        self.distinct += 1
        item = (float(x.mean()) if rank is None else rank, -order, x)
        if len(self._heap) < self.cap:
            heapq.heappush(self._heap, item)
        else:
            heapq.heappushpop(self._heap, item)

    def series(self) -> list[np.ndarray]:
        """The kept series in the order they came."""
        return [x for _, _, x in sorted(self._heap, key=lambda item: -item[1])]


class TrialColumns:
    """What the statistics read of ``count`` trial columns, fed one at a time in column order by ``add``."""

    def __init__(self, count: int, bh_returns: np.ndarray, periods_per_year: float = TRADING_DAYS,
                 effective_cap: int = EFFECTIVE_TRIALS_CAP, spa_cap: int = SPA_CAP) -> None:
        self.count = int(count)
        self.bh = np.asarray(bh_returns, dtype=np.float64)
        self.periods_per_year = periods_per_year
        pick = sample_columns(self.count, effective_cap)
        self._order = list(range(self.count)) if pick is None else [int(c) for c in pick]
        self._wanted = set(self._order)
        self._sample: dict[int, np.ndarray] = {}
        self.spa = SpaColumns(spa_cap)  # the accepted candidates' series SPA tests
        self.sharpes: list[float] = []  # every column's annualised Sharpe
        self.excess_sharpes: list[float] = []  # and that of its excess over buy and hold
        self.best: np.ndarray | None = None
        self.added = 0

    def add(self, series: Sequence[float] | np.ndarray, best: bool = False, spa: bool = True) -> None:
        """The next column: ``best`` marks the best candidate's, ``spa`` one SPA tests (an accepted candidate)."""
        x = np.asarray(series, dtype=np.float64)
        if x.shape != self.bh.shape:
            raise ValueError(f"returns of {x.size} days against a benchmark of {self.bh.size} days")
        if not np.isfinite(x).all():
            raise ValueError("trial_returns hold non-finite values")
        if self.added >= self.count:
            raise ValueError(f"more than the {self.count} trial columns announced")
        j = self.added
        self.added += 1
        if j in self._wanted:
            self._sample[j] = x
        s = column_sharpes(np.column_stack([x, x - self.bh]), self.periods_per_year)
        self.sharpes.append(float(s[0]))
        self.excess_sharpes.append(float(s[1]))
        if best:
            self.best = x
        if spa:
            self.spa.add(x)

    @property
    def spa_candidates(self) -> int:
        """Columns offered to SPA (copies included)."""
        return self.spa.candidates

    def sample(self) -> np.ndarray:
        """The (days, sampled) matrix the effective count reads, in its reading order."""
        self._complete()
        return np.column_stack([self._sample[c] for c in self._order]) if self._order else np.zeros((self.bh.size, 0))

    def spa_series(self) -> list[np.ndarray]:
        """The series SPA bootstraps: distinct, at most ``spa_cap`` with the highest mean, in column order."""
        self._complete()
        return self.spa.series()

    def _complete(self) -> None:
        if self.added != self.count:
            raise ValueError(f"{self.added} trial columns given of the {self.count} announced")
