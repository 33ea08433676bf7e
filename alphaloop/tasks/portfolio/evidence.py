"""What the portfolio task derives from earlier records: the prompt's evidence (why this parent, the
parent's and latest candidate's figures beside both benchmarks, whether the last change moved any
weight, the guards as numbers) and an accepted candidate's record fields (returns, the weights key and
the admission verdict, judged on validation weights and returns as the trade task judges positions)."""

from __future__ import annotations

import hashlib
from typing import Any

import numpy as np

from alphaloop.evaluate.backtest import TRADING_DAYS
from alphaloop.propose.base import GuardThreshold
from alphaloop.propose.prompting import format_guards
from alphaloop.run.diversity import BH_DISGUISE_CORRELATION, BH_DISGUISE_EXPOSURE, NEAR_COPY_CORRELATION
from alphaloop.tasks.portfolio.guards import EQUAL_WEIGHT_TOLERANCE, PortfolioLimits
from alphaloop.tasks.portfolio.text import figures_section
from alphaloop.tasks.trade.evidence import member_correlations, outcome_status, parent_reason

WEIGHT_DECIMALS = 9  # weights equal to this many decimals hold the same book


def weights_key(held: np.ndarray) -> str:
    """sha256 of the validation weights held (rounded): equal keys hold the same book every validation date."""
    w = np.round(np.nan_to_num(np.asarray(held, dtype=np.float64)), WEIGHT_DECIMALS) + 0.0  # -0.0 -> 0.0
    h = hashlib.sha256(f"{w.shape}".encode())
    h.update(np.ascontiguousarray(w).tobytes())
    return h.hexdigest()


def guards_thresholds(limits: PortfolioLimits | None = None) -> tuple[GuardThreshold, ...]:
    limits = limits or PortfolioLimits()
    return (GuardThreshold("min dates a year with a weight change on validation", limits.min_rebalances_per_year,
                           "dates/year"),
            GuardThreshold("max turnover", limits.max_turnover_per_year, "x the book a year"),
            GuardThreshold("equal weight (= the benchmark) on every validation date, each weight within",
                           EQUAL_WEIGHT_TOLERANCE, "of 1/N"),
            GuardThreshold("buy and hold in disguise: correlation with the equal-weight buy and hold above",
                           BH_DISGUISE_CORRELATION, f"at gross exposure above {BH_DISGUISE_EXPOSURE:.0%}"),
            GuardThreshold("near copy of a member: validation return correlation above", NEAR_COPY_CORRELATION,
                           "(may only replace that member, if better)"))


def portfolio_evidence(n: int, parent: int, latest: Any, parent_rec: Any, grand: Any, last: int | None = None,
                       prepared: dict | None = None, state: Any = None) -> dict[str, Any]:
    """``ProposalContext`` fields for iteration ``n`` from the records alone (so a resume rebuilds the prompt):
    the whole figures section goes in ``extra`` (the portfolio template's ``{{portfolio_figures}}``)."""
    last = n - 1 if last is None else last
    shown_latest = latest if latest is not None and last != parent else None
    label = "Latest candidate" if shown_latest is None else f"Latest candidate (iteration {shown_latest.iteration}, " \
        f"{outcome_status(shown_latest)})"
    unchanged = bool(latest and grand and latest.positions_sha256
                     and latest.positions_sha256 == grand.positions_sha256)
    prepared = prepared or {}
    reason = parent_reason(parent, latest, last, grand)
    guards = guards_thresholds()
    figures = figures_section(parent_rec.scores if parent_rec is not None else None,
                              shown_latest.scores if shown_latest is not None else None, label, reason=reason,
                              unchanged=unchanged, guards=format_guards(guards),
                              periods_per_year=float(prepared.get("periods_per_year", TRADING_DAYS)))
    return {"parent_reason": reason, "unchanged_positions": unchanged, "guards": guards,
            "correlations": member_correlations(state) if state is not None else "",
            "extra": {"portfolio_figures": figures,
                      "instruments": str(prepared.get("instruments", 1)),
                      "columns": prepared.get("columns", "`Open`, `High`, `Low`, `Close`, `Volume`")}}
