"""Is a candidate a new strategy, a copy of a population member, or buy and hold in disguise?

Judged on what a strategy does on validation, the split the population is ranked on: its
positions after the backtester's state machine (a ``1`` on a day already long changes nothing, a
filter that only acts in train changes nothing on validation) and its daily validation returns.
A population is only useful if its members trade differently.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

# Two strategies whose daily returns correlate above 0.95 share over 90% of their variance
# (0.95^2): the second tells the researcher almost nothing the first did not, so it may only take
# the first's slot, and only if it scores better.
NEAR_COPY_CORRELATION = 0.95
# Buy and hold in disguise: returns that move with buy and hold's (correlation above 0.95) while
# long at least 90% of the time. Either alone is ordinary (a trend filter correlates highly with
# buy and hold while it is long; a frequently-long rule can still time exits); both together is
# buy and hold with a few exits, just under the always-long guard's 99%.
BH_DISGUISE_CORRELATION = 0.95
BH_DISGUISE_EXPOSURE = 0.90


def correlation(a_returns: np.ndarray, b_returns: np.ndarray) -> float:
    """Pearson correlation of two daily return series; 0.0 when either is constant (no co-movement to measure)."""
    a, b = np.asarray(a_returns, dtype=np.float64), np.asarray(b_returns, dtype=np.float64)
    if a.shape != b.shape or a.ndim != 1:
        raise ValueError(f"return series of shapes {a.shape} and {b.shape}; need two equal 1-d series")
    return float(_corr_rows(np.vstack([a, b]))[0, 1])


def _corr_rows(rows: np.ndarray) -> np.ndarray:
    """Correlation matrix of the rows; a constant row correlates 0 with the others and 1 with itself."""
    centred = rows - rows.mean(axis=1, keepdims=True)
    norm = np.sqrt(np.einsum("ij,ij->i", centred, centred))
    ok = norm > 1e-15
    z = np.where(ok[:, None], centred / np.where(ok, norm, 1.0)[:, None], 0.0)
    corr = np.clip(z @ z.T, -1.0, 1.0)
    np.fill_diagonal(corr, 1.0)
    return corr


@dataclass(frozen=True)
class MemberReturns:
    """What the novelty rule needs of one population member."""

    iteration: int
    value: float  # the selection value it is ranked by
    positions_key: str | None  # the task's duplicate key (positions for a strategy, probabilities for a forecaster)
    returns: np.ndarray | None = None  # daily validation returns (the equal-weight portfolio's); None: not compared


@dataclass(frozen=True)
class Novelty:
    """The rule's decision for one candidate against the population."""

    kind: str  # "duplicate", "near_copy" or "new"
    member: int | None  # the member it duplicates or nearly copies
    correlation: float | None  # its highest correlation with a member (None for an empty population)
    enters: bool
    replaces: int | None  # the member whose slot it takes, if it enters a full population or is a near copy
    reason: str

    def to_json(self) -> dict:
        return {"kind": self.kind, "member": self.member, "correlation": self.correlation, "enters": self.enters,
                "replaces": self.replaces, "reason": self.reason}


def novelty(key: str | None, returns: np.ndarray | None, value: float | None, members: Sequence[MemberReturns],
            population_size: int, threshold: float = NEAR_COPY_CORRELATION) -> Novelty:
    """The one admission rule of every task: duplicate (the same key as a member: never enters), near copy
    of member i (validation returns correlate above ``threshold``: may only take i's slot, and only if
    better than every member it nearly copies, so the population never holds two near copies), or new
    (the top-K rule). A task without returns to compare (``returns`` None) has no near copies."""
    if value is None or not np.isfinite(value):
        return Novelty("new", None, None, False, None, "no finite selection value")
    same = next((m for m in members if key and m.positions_key == key), None)
    compared = returns is not None and members
    corr = (_corr_rows(np.vstack([np.asarray(returns, dtype=np.float64), *[m.returns for m in members]]))[0, 1:]
            if compared else np.empty(0))
    top = float(corr.max()) if corr.size else None
    if same is not None:
        return Novelty("duplicate", same.iteration, top, False, None,
                       f"holds the same validation positions as iter {same.iteration}, so it adds nothing")
    near = np.flatnonzero(corr > threshold)
    if near.size:
        i = int(near[np.argmax(corr[near])])
        m = members[i]
        better = all(value > members[j].value for j in near)
        verb = "replaces it (better)" if better else "does not beat it, so it stays out"
        return Novelty("near_copy", m.iteration, top, better, m.iteration if better else None,
                       f"near copy of iter {m.iteration} (validation returns correlate {corr[i]:.3f} > "
                       f"{threshold:.2f}); {verb}")
    if len(members) < population_size:
        return Novelty("new", None, top, True, None, "new strategy; the population has a free slot")
    worst = min(members, key=lambda m: m.value)
    enters = value > worst.value
    return Novelty("new", None, top, enters, worst.iteration if enters else None,
                   f"new strategy; {'beats' if enters else 'does not beat'} the weakest member, iter {worst.iteration}")


@dataclass(frozen=True)
class Disguise:
    """Whether a strategy is buy and hold with a few exits."""

    disguised: bool
    correlation: float
    exposure: float
    reason: str

    def to_json(self) -> dict:
        return {"disguised": self.disguised, "correlation": self.correlation, "exposure": self.exposure,
                "reason": self.reason}


def buy_and_hold_in_disguise(returns: np.ndarray, bh_returns: np.ndarray, exposure: float,
                             corr_threshold: float = BH_DISGUISE_CORRELATION,
                             exposure_threshold: float = BH_DISGUISE_EXPOSURE) -> Disguise:
    """High correlation with buy and hold AND high exposure (for a universe: the mean exposure over
    instruments and the equal-weight buy and hold) is reported as buy and hold, not a new strategy."""
    c = correlation(returns, bh_returns)
    disguised = c > corr_threshold and exposure > exposure_threshold
    if disguised:
        reason = (f"buy and hold in disguise: validation returns correlate {c:.3f} with buy and hold "
                  f"(> {corr_threshold:.2f}) at {exposure:.1%} exposure (> {exposure_threshold:.0%})")
    else:
        reason = (f"not buy and hold: correlation {c:.3f} with it (threshold {corr_threshold:.2f}), exposure "
                  f"{exposure:.1%} (threshold {exposure_threshold:.0%})")
    return Disguise(disguised, c, float(exposure), reason)


BH_LABEL = "buy and hold"


@dataclass(frozen=True)
class CorrelationMatrix:
    """Members' validation-return correlations with each other and with buy and hold (last row/column)."""

    labels: list[str]
    matrix: np.ndarray

    def with_bh(self) -> dict[str, float]:
        """Each member's correlation with buy and hold."""
        return {lab: float(v) for lab, v in zip(self.labels[:-1], self.matrix[-1, :-1], strict=True)}

    def max_pair(self) -> tuple[str, str, float] | None:
        """The most correlated pair of members (buy and hold excluded), or None with fewer than two."""
        k = len(self.labels) - 1
        if k < 2:
            return None
        sub = self.matrix[:k, :k].copy()
        np.fill_diagonal(sub, -np.inf)
        i, j = np.unravel_index(np.argmax(sub), sub.shape)
        return self.labels[int(i)], self.labels[int(j)], float(sub[i, j])

    def to_json(self) -> dict:
        return {"labels": self.labels, "matrix": np.round(self.matrix, 6).tolist(), "with_buy_and_hold": self.with_bh()}

    def format(self) -> str:
        """A plain-text table, labelled with the split it was measured on."""
        width = max(len(s) for s in self.labels) + 2
        head = " " * width + "".join(f"{s:>{width}}" for s in self.labels)
        rows = [f"{lab:<{width}}" + "".join(f"{v:>{width}.2f}" for v in row)
                for lab, row in zip(self.labels, self.matrix, strict=True)]
        return "\n".join(["correlation of daily validation returns", head, *rows])


def correlation_matrix(members: Mapping[str, np.ndarray], bh_returns: np.ndarray) -> CorrelationMatrix:
    """Correlations of the members' daily validation returns with each other and with buy and hold."""
    labels = [*members, BH_LABEL]
    rows = np.vstack([*(np.asarray(r, dtype=np.float64) for r in members.values()),
                      np.asarray(bh_returns, dtype=np.float64)])
    return CorrelationMatrix(labels=labels, matrix=_corr_rows(rows))
