"""Degenerate and reward-hacking guards that fit portfolios, on the validation split where selection
happens: hard-coded dates, the invariance probes' findings (other years, another level, rows moved) and
non-finite features first (reward hacking), then no positions, the equal-weight portfolio (the
benchmark itself, reported as such), a fixed allocation that never trades, and absurd turnover.
Duplicates are judged elsewhere, on validation weights and returns."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from alphaloop.evaluate.backtest import TRADING_DAYS
from alphaloop.evaluate.guards import NO_FINDINGS, GuardReport, date_and_invariance_guards, non_finite
from alphaloop.evaluate.invariance import InvarianceFindings
from alphaloop.evaluate.scoring import History

EQUAL_WEIGHT_TOLERANCE = 1e-6


@dataclass(frozen=True)
class PortfolioLimits:
    """Thresholds of the portfolio guards (sane defaults for daily bars)."""

    min_rebalances_per_year: float = 1.0  # dates a year on which some target weight changes
    max_turnover_per_year: float = 250.0  # summed absolute weight changes a year; 504 turns a full book daily


def is_equal_weight(weights: np.ndarray, present: np.ndarray) -> bool:
    """Whether allocate set 1/n on each of the n instruments with a bar on every date (the benchmark's
    holdings); ``weights`` are what it set, so a ragged calendar's kept weights do not hide it."""
    n = present.sum(axis=1, keepdims=True)
    target = np.where(present, 1.0 / np.maximum(n, 1), 0.0)
    given = np.where(present, np.nan_to_num(weights), 0.0)
    return bool(given.size) and bool(np.all(np.abs(given - target) <= EQUAL_WEIGHT_TOLERANCE))


def portfolio_guards(region: str, val: Mapping[str, float], weights: np.ndarray, present: np.ndarray,
                     histories: Sequence[History], features: Sequence[Mapping[str, np.ndarray]],
                     limits: PortfolioLimits = PortfolioLimits(),
                     invariance: InvarianceFindings = NO_FINDINGS) -> GuardReport:
    """Every failing guard in priority order (reward hacking first), with the values looked at; ``weights``
    and ``present`` are what allocate set on the validation dates and their bars ((dates, instruments)),
    ``features`` each instrument's columns, ``invariance`` what the look-ahead stage's invariance probes
    found on allocate's weights."""
    report = date_and_invariance_guards(region, invariance, "weights")
    for k, (h, cols) in enumerate(zip(histories, features, strict=True)):
        bad = non_finite(cols, h.frame.index, [h.windows[s] for s in ("train", "val") if s in h.windows])
        if bad:
            name, info = next(iter(bad.items()))
            report.values["non_finite"] = {"instrument": k + 1, **bad}
            report.failures.append(("non_finite", f"instrument {k + 1}: feature '{name}' is infinite on "
                                                  f"{info['rows']} bar(s) after its warm-up (first {info['first']})"))
            break
    per_year = histories[0].periods_per_year if histories else TRADING_DAYS  # the data's bars a year
    years = max(float(val["bars"]) - 1.0, 1.0) / per_year
    gross, turnover = float(val["gross_exposure"]), float(val["turnover"])
    rebalances = float(val["rebalances"]) / years
    report.values.update({"val_gross_exposure": gross, "val_net_exposure": float(val["net_exposure"]),
                          "val_turnover_per_year": turnover, "val_rebalances_per_year": rebalances})
    if gross <= 0.0:
        report.failures.append(("no_positions", "no positions on validation: every weight is 0, so there is "
                                                "nothing to score"))
    elif is_equal_weight(weights, present):
        report.failures.append(("equal_weight", "equal weight on every validation date: that is the benchmark "
                                                "(the equal-weight buy and hold), not a strategy"))
    elif rebalances < limits.min_rebalances_per_year:
        report.failures.append(("no_trades", f"the weights change on {val['rebalances']:.0f} date(s) in "
                                             f"{years:.1f} validation years, fewer than "
                                             f"{limits.min_rebalances_per_year:g} a year: a fixed allocation, "
                                             "not a signal"))
    if turnover > limits.max_turnover_per_year:
        report.failures.append(("turnover", f"turnover {turnover:.0f}x the book a year on validation (bound "
                                            f"{limits.max_turnover_per_year:g}x): such a portfolio lives on "
                                            "fills and costs, not on a signal"))
    return report
