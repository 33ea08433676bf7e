"""The offline portfolio search: every mutation renders a region the gate admits and the driver runs;
on a seeded universe with a planted cross-sectional edge the search finds it (beats the equal-weight
buy and hold on test, SPA significant); with no planted edge nothing is significant."""

from __future__ import annotations

import random

import numpy as np
import pytest

from alphaloop.evaluate.stats import universe_statistics
from alphaloop.propose.base import ProposalContext
from alphaloop.tasks.portfolio.contract import Calendar, validate_weights
from alphaloop.tasks.portfolio.driver import run_frame
from alphaloop.tasks.portfolio.offline import MUTATIONS, OfflinePortfolioProposer, mutate
from alphaloop.tasks.portfolio.render import BASELINE_SPEC, describe, render, spec_of
from alphaloop.tasks.portfolio.scoring import PortfolioScores, score_portfolio
from sandbox.gate import check
from tests.portfolio_support import namespace, split_frames, universe_frames


def _context(iteration: int, parent: str, max_gross: float = 1.0) -> ProposalContext:
    return ProposalContext(iteration=iteration, parent_iteration=0, parent_region=parent, metric="sharpe",
                           population=[], learnings="", last_outcome=None, max_gross=max_gross)


def test_every_mutation_renders_a_region_the_gate_admits_and_the_driver_runs() -> None:
    rng = random.Random(1)
    frames = universe_frames(n=4, days=300, seed=2)
    single = universe_frames(n=1, days=300, seed=2)
    seen, spec = set(), dict(BASELINE_SPEC)
    for _ in range(40):
        spec, name, note = mutate(rng, spec, "sharpe")
        seen.add(name)
        region = render(spec)
        assert check(region, required=("generate_features", "allocate")).ok, region
        assert spec_of(region) == spec and note.change and note.hypothesis
        for panel in (frames, single):
            validate_weights(run_frame(namespace(region), panel)["weights"], Calendar.of(panel))
    assert seen == set(MUTATIONS)
    assert "momentum" in describe(BASELINE_SPEC)


def test_the_proposer_is_deterministic_and_respects_the_gross_cap() -> None:
    a = OfflinePortfolioProposer(seed=3).propose(_context(4, "", max_gross=0.5))
    b = OfflinePortfolioProposer(seed=3).propose(_context(4, "", max_gross=0.5))
    assert a.region == b.region and "GROSS = 0.5" in (a.region or "")
    assert a.expectation is not None and a.change


def _search(edge: float, seed: int, iterations: int = 10) -> tuple[PortfolioScores, float]:
    """A hill climb like the loop's: mutate the best so far, select on validation; the pick's scores
    with test, and the SPA p-value of every candidate against the equal-weight buy and hold on validation."""
    histories = split_frames(universe_frames(n=6, days=1000, edge=edge, seed=seed), ("train", "val", "test"))
    frames = tuple(h.frame for h in histories)
    calendar = Calendar.of(frames)
    proposer = OfflinePortfolioProposer(seed=seed)
    best: tuple[PortfolioScores, str] | None = None
    returns = []
    region = render(BASELINE_SPEC)
    for i in range(iterations):
        if i:
            region = proposer.propose(_context(i, best[1])).region  # type: ignore[index]
        w = validate_weights(run_frame(namespace(region), frames)["weights"], calendar)
        s = score_portfolio(histories, w, splits=("train", "val", "test"))
        returns.append(s.returns["val"])
        if best is None or s.selection > best[0].selection:
            best = (s, region)
    assert best is not None
    k = next(j for j, r in enumerate(returns) if r is best[0].returns["val"])
    stats = universe_statistics(np.column_stack(returns), k, best[0].bh["val"], iterations, instruments=6, reps=300)
    assert stats.spa is not None
    return best[0], stats.spa.consistent


@pytest.mark.parametrize("seed", [0, 2])
def test_a_planted_cross_sectional_edge_is_found_beats_the_benchmark_on_test_and_is_significant(seed: int) -> None:
    pick, p = _search(edge=6.0, seed=seed)
    test = pick.splits["test"]
    assert test["sharpe"] > test["bh_sharpe"] + 0.5
    assert test["information_ratio"] > 0.5
    assert p < 0.05


def test_without_an_edge_nothing_is_significant() -> None:
    _, p = _search(edge=0.0, seed=5)
    assert p >= 0.05


def test_statistics_judge_a_market_neutral_pick_against_cash_too() -> None:
    from alphaloop.tasks.portfolio.stats import portfolio_statistics

    rng = np.random.default_rng(0)
    bh = rng.normal(0.0003, 0.01, 400)
    edge = rng.normal(0.002, 0.005, 400)  # a hedged book that earns steadily
    trials = np.column_stack([edge, rng.normal(0.0, 0.005, 400)])
    s = portfolio_statistics(trials, 0, bh, trials=5, sharpes=[3.0, 0.1, 0.2, -0.1, 0.0], net_exposure=0.0,
                             instruments=6, reps=200)
    assert s.cash is not None and s.cash.significant and "earns more than cash" in s.cash_verdict
    assert s.stats["spa_pvalues"]["consistent"] < 0.05 and "cash" in s.stats["universe"]
    long_only = portfolio_statistics(trials, 0, bh, trials=5, sharpes=[3.0, 0.1, 0.2, -0.1, 0.0], net_exposure=1.0,
                                     instruments=6, reps=200)
    assert long_only.cash is None and "not market-neutral" in long_only.cash_verdict
