"""What the loop derives for one candidate from earlier records: the prompt's evidence and the
diversity verdict that decides whether an accepted candidate may enter the population."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from alphaloop.evaluate.backtest import TRADING_DAYS
from alphaloop.evaluate.scoring import History
from alphaloop.evaluate.universe import bh_returns, figures_from_record
from alphaloop.propose.base import CandidateFigures, GuardThreshold, WindowFigures
from alphaloop.run.diversity import (
    BH_DISGUISE_CORRELATION,
    BH_DISGUISE_EXPOSURE,
    NEAR_COPY_CORRELATION,
    MemberReturns,
    buy_and_hold_in_disguise,
    novelty,
)
from alphaloop.run.quoting import harness_only
from alphaloop.run.records import IterationRecord
from alphaloop.run.state import LoopState


def candidate_figures(record: IterationRecord | None,
                      periods_per_year: float = TRADING_DAYS) -> CandidateFigures | None:
    """The figures table the prompt shows for one iteration: train, each fold, validation, with buy and hold,
    and each window's length in bars and in years of bars (never its calendar years: dates are withheld, and a
    model's memory of what markets did in those years would be look-ahead)."""
    if record is None:
        return None
    status = outcome_status(record)
    scores = record.scores
    if not scores:
        return CandidateFigures(record.iteration, status=status)
    rows = [("train", scores["splits"]["train"]),
            *((f"train fold {i + 1}", f) for i, f in enumerate(scores["folds"])),
            ("validation", scores["splits"]["val"])]
    windows = tuple(WindowFigures(name, m["sharpe"], m["total_return"], m["max_drawdown"], m["exposure"],
                                  int(m["round_trips"]), m["turnover"], m["bh_sharpe"], m["bh_total_return"],
                                  m["bh_max_drawdown"], bars=int(m["bars"]) if m.get("bars") else None,
                                  years=m["bars"] / periods_per_year if m.get("bars") else None)
                    for name, m in rows)
    return CandidateFigures(record.iteration, windows=windows, universe=figures_from_record(record.universe),
                            status=status)


def evidence(n: int, parent: int, latest: IterationRecord | None, parent_rec: IterationRecord | None,
             grand: IterationRecord | None, limits: Any, last: int | None = None,
             periods_per_year: float = TRADING_DAYS) -> dict[str, Any]:
    """What the researcher needs to reason: the parent's and the latest candidate's figures beside
    buy and hold, why this parent, whether the last change altered any position, the guards as numbers.

    ``latest`` is the record of iteration ``last`` (n-1 in a serial run; n-N with N iterations in
    flight: the last one committed in the state n proposes from) and ``grand`` its parent's; all three
    come from the records alone, so a resume rebuilds the same prompt.
    """
    last = n - 1 if last is None else last
    reason = parent_reason(parent, latest, last, grand)
    unchanged = bool(latest and grand and latest.positions_sha256
                     and latest.positions_sha256 == grand.positions_sha256)
    guards = (GuardThreshold("min round trips on validation", limits.min_round_trips_per_year,
                             "a year"),
              GuardThreshold("max turnover", limits.max_turnover_per_year, "position changes/year"),
              GuardThreshold("always long (= buy and hold) at exposure", 100 * limits.always_long_exposure,
                             "% of days"),
              GuardThreshold("buy and hold in disguise: correlation with buy and hold above",
                             BH_DISGUISE_CORRELATION, f"at exposure above {BH_DISGUISE_EXPOSURE:.0%}"),
              GuardThreshold("near copy of a member: validation return correlation above",
                             NEAR_COPY_CORRELATION, "(may only replace that member, if better)"))
    return {"parent_figures": candidate_figures(parent_rec, periods_per_year),
            "latest_figures": candidate_figures(latest, periods_per_year) if last != parent else None,
            "parent_reason": reason, "unchanged_positions": unchanged, "guards": guards}


def outcome_status(record: IterationRecord) -> str:
    """"accepted", or where it was rejected and why, in the harness's words only: the candidate's own (names,
    messages) reach a prompt only in its latest-outcome block."""
    return "accepted" if record.accepted else f"rejected at {record.stage}: {harness_only(record.reason, 200)}"


def parent_reason(parent: int, latest: IterationRecord | None, last: int,
                  grand: IterationRecord | None = None) -> str | None:
    """Why this parent: building on the latest candidate (and how it fared against its own parent), or
    reverting to a member drawn at random after the latest did not enter the population; None before any."""
    if latest is None or parent == last:
        return building_on(parent, latest, grand) if latest is not None else None
    what = ("was rejected at " + latest.stage) if not latest.accepted else "did not enter the population"
    return (f"reverting to iter {parent}, a population member drawn at random (seeded) so the search does not "
            f"stack changes on one line: iter {last} {what}")


def building_on(parent: int, latest: IterationRecord, grand: IterationRecord | None) -> str:
    """Why the latest candidate is the parent, with how it compared with its own parent: entering the
    population is not improving (a population with room takes a worse candidate too)."""
    head = f"building on iter {parent}: it entered the population"
    if grand is None or not grand.scores or not latest.scores:
        return head
    metric = latest.metric
    now, before = latest.split("val").get(metric), grand.split("val").get(metric)
    if now is None or before is None or not np.isfinite(now) or not np.isfinite(before):
        return head
    change = now - before
    if change >= 0:
        return f"{head}, {change:+.3f} val {metric} against its parent iter {grand.iteration}"
    return (f"{head} but was worse than its parent iter {grand.iteration} ({change:+.3f} val {metric}): the "
            f"population had room for it, so check whether its change deserves building on")


def member_correlations(state: LoopState) -> str:
    """How alike the members trade: the correlation of each pair's daily validation returns. A population of
    one family moves together, and the model should know before proposing one more of it."""
    members = [m for m in state.population if m.val_returns]
    if len(members) < 2 or len({len(m.val_returns) for m in members}) != 1:
        return ""
    matrix = np.corrcoef(np.asarray([m.val_returns for m in members], dtype=np.float64))
    pairs = [f"iter {a.iteration} ~ iter {b.iteration}: {matrix[i, j]:.2f}" for i, a in enumerate(members)
             for j, b in enumerate(members) if i < j and np.isfinite(matrix[i, j])]
    if not pairs:
        return ""
    return ("Members' correlation of daily validation returns (above " f"{NEAR_COPY_CORRELATION:g} is a near copy; "
            "high values mean one family of strategy): " + "; ".join(pairs))


def judge_diversity(key: str, ev: Any, histories: History | Sequence[History], value: float,
                    state: LoopState) -> dict[str, Any]:
    """Judge a scored candidate on what it does on validation: a duplicate (same positions on every
    instrument), a near copy of a member (returns correlate above the threshold: may only replace it,
    if better), buy and hold in disguise (kept out), or new (the top-K rule). For a universe the
    returns are the equal-weight portfolio's and buy and hold the equal-weight buy and hold.
    Returns the record's fields it decides."""
    universe = [histories] if isinstance(histories, History) else list(histories)
    return admission(key, ev.scores.returns["val"], value, bh_returns(universe, "val"),
                     float(ev.scores.splits["val"]["exposure"]), state)


def admission(key: str, val_returns: Any, value: float, bh_val_returns: Any, exposure: float,
              state: LoopState) -> dict[str, Any]:
    """The record's admission fields for a candidate with validation returns ``val_returns`` (``key``: what it
    holds on validation, ``exposure``: how much of it): a duplicate of a member's key, a near copy of a member's
    returns (may only replace it, if better), buy and hold in disguise against ``bh_val_returns`` (kept out),
    or new (the top-K rule on ``value``).

    Why shared: every task that holds positions or weights is admitted by this one rule."""
    returns = np.asarray(val_returns, dtype=np.float64)
    disguise = buy_and_hold_in_disguise(returns, bh_val_returns, exposure)
    members = [MemberReturns(m.iteration, m.value, m.positions_sha256 or "", np.asarray(m.val_returns))
               for m in state.population if m.val_returns is not None and len(m.val_returns) == returns.size]
    verdict = novelty(key, returns, value, members, state.population_size)
    return {"positions_sha256": key, "novelty": verdict.to_json(), "bh_disguise": disguise.to_json(),
            "duplicate_of": verdict.member if verdict.kind == "duplicate" else None,
            "replaces": verdict.replaces if verdict.enters else None,
            "in_population": bool(verdict.enters and not disguise.disguised)}
