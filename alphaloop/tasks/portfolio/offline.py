"""An offline portfolio search (no model): mutations of small cross-sectional specs (``render``).

Each iteration reads its parent's spec back from the region's first line and changes one thing:
the signal, its window (a step on the log ladder), top/bottom-k against rank-proportional weights,
the leg fraction, the book (long-only, long-short, market-neutral), inverse-volatility sizing, the
holding span or the volatility target. Each change carries a hypothesis and its expected effect in
words and as an ``Expectation``, like the trade search's. Regions without a spec (the baseline, a
model's code) start from ``BASELINE_SPEC``.
"""

from __future__ import annotations

import copy
import random
import time
from collections.abc import Callable

from alphaloop.propose.base import Expectation, Proposal, ProposalContext
from alphaloop.propose.offline.mutate import Note
from alphaloop.tasks.portfolio.contract import DEFAULT_MAX_GROSS
from alphaloop.tasks.portfolio.render import (
    BASELINE_SPEC,
    BOOK_WORDS,
    BOOKS,
    FRACTIONS,
    HOLDS,
    LADDER,
    SIGNAL_WORDS,
    SIGNALS,
    VOL_TARGETS,
    VOL_WINDOWS,
    normalise_spec,
    render,
    spec_json,
    spec_of,
)

SIGNAL_REASON = {
    "momentum": "instruments that rose most over months tend to keep outperforming the rest for a while",
    "reversal": "the biggest losers of the last few days tend to bounce back against the winners",
    "volatility": "calm instruments tend to earn as much as wild ones for less risk (the low-volatility anomaly)",
    "trend": "a steady rise above its average, in units of its own noise, marks a persistent trend",
    "high": "instruments trading near their highs tend to go on outperforming those far below them",
}


def _step(values: tuple, old: object, rng: random.Random, lo: float | None = None, hi: float | None = None) -> object:
    allowed = [v for v in values if (lo is None or v >= lo) and (hi is None or v <= hi)]
    i = allowed.index(old) if old in allowed else 0
    moves = [j for j in (i - 1, i + 1) if 0 <= j < len(allowed)]
    return allowed[rng.choice(moves)] if moves else old


def tune_window(rng: random.Random, spec: dict, metric: str) -> Note:
    old = spec["window"]
    spec["window"] = _step(LADDER, old, rng, *SIGNALS[spec["signal"]])
    shorter = spec["window"] < old
    return Note(f"A {'shorter' if shorter else 'longer'} {spec['signal']} window ({old} -> {spec['window']} bars) "
                f"reads the ranking at a {'faster' if shorter else 'slower'} scale; "
                f"{'more turnover' if shorter else 'less turnover, fewer costs'}.",
                f"{spec['signal']} window {old} -> {spec['window']}", f"turnover {'up' if shorter else 'down'}",
                "turnover", 1 if shorter else -1)


def swap_signal(rng: random.Random, spec: dict, metric: str) -> Note:
    old = spec["signal"]
    spec["signal"] = rng.choice([s for s in SIGNALS if s != old])
    spec.update(normalise_spec(spec) or {})
    return Note(f"Rank on {SIGNAL_WORDS[spec['signal']].format(w=spec['window'])} instead of {old}: "
                f"{SIGNAL_REASON[spec['signal']]}.", f"signal {old} -> {spec['signal']} ({spec['window']} bars)",
                f"{metric} up on validation", metric, 1)


def change_weighting(rng: random.Random, spec: dict, metric: str) -> Note:
    old = spec["weighting"]
    spec["weighting"] = "rank" if old == "top_k" else "top_k"
    if spec["weighting"] == "rank":
        return Note("Weights proportional to rank use every instrument's information, not only the extremes, "
                    "so the book is broader and less exposed to one name.", "top/bottom-k -> rank-proportional",
                    "more instruments held, lower volatility", "long_count", 1)
    return Note("Holding only the extremes concentrates the book where the signal is strongest.",
                "rank-proportional -> top/bottom-k", f"{metric} up if the edge sits in the tails", metric, 1)


def tune_fraction(rng: random.Random, spec: dict, metric: str) -> Note:
    old = spec["fraction"]
    spec["fraction"] = _step(FRACTIONS, old, rng)
    wider = spec["fraction"] > old
    return Note(f"{'Wider' if wider else 'Narrower'} legs ({old:.0%} -> {spec['fraction']:.0%} of the instruments "
                f"each) {'diversify more' if wider else 'keep only the strongest ranks'}.",
                f"leg fraction {old:.0%} -> {spec['fraction']:.0%}",
                f"{'more' if wider else 'fewer'} instruments held", "long_count", 1 if wider else -1)


def change_book(rng: random.Random, spec: dict, metric: str) -> Note:
    old = spec["book"]
    spec["book"] = rng.choice([b for b in BOOKS if b != old])
    neutral = BOOKS[spec["book"]][1] >= BOOKS[old][1]
    effect = "hedges more of the market factor, so what is left is the ranking" if neutral else \
        "keeps more of the market premium"
    return Note(f"A {BOOK_WORDS[spec['book']]} book instead of {BOOK_WORDS[old]} {effect}.",
                f"book {old} -> {spec['book']}", f"beta {'down' if neutral else 'up'}", "beta", -1 if neutral else 1)


def toggle_inverse_vol(rng: random.Random, spec: dict, metric: str) -> Note:
    if spec["inverse_vol"] and rng.random() < 0.5:
        old = spec["vol_window"]
        spec["vol_window"] = next(v for v in VOL_WINDOWS if v != old)
        return Note(f"Estimate volatility over {spec['vol_window']} bars instead of {old} for the sizing.",
                    f"volatility window {old} -> {spec['vol_window']}", f"{metric} up", metric, 1)
    spec["inverse_vol"] = not spec["inverse_vol"]
    if spec["inverse_vol"]:
        return Note("Sizing each position by inverse volatility stops the wildest instruments from dominating "
                    "the book's risk.", "equal sizing -> inverse-volatility sizing", "max drawdown shallower",
                    "max_drawdown", 1)
    return Note("Equal sizing inside each leg lets high-volatility winners count fully.",
                "inverse-volatility sizing -> equal sizing", f"{metric} up", metric, 1)


def tune_hold(rng: random.Random, spec: dict, metric: str) -> Note:
    old = spec["hold"]
    spec["hold"] = _step(HOLDS, old, rng)
    longer = spec["hold"] > old
    return Note(f"Smoothing the score over {spec['hold']} bars instead of {old} holds positions "
                f"{'longer, paying less in costs' if longer else 'for less time, reacting sooner'}.",
                f"holding span {old} -> {spec['hold']} bars", f"turnover {'down' if longer else 'up'}",
                "turnover", -1 if longer else 1)


def tune_vol_target(rng: random.Random, spec: dict, metric: str) -> Note:
    old = spec["vol_target"]
    spec["vol_target"] = _step(VOL_TARGETS, old, rng)
    change = f"volatility target {old:.0%} -> {spec['vol_target']:.0%}"
    if spec["vol_target"] > 0:
        return Note(f"Scaling the book down when the instruments' typical volatility runs above "
                    f"{spec['vol_target']:.0%} cuts exposure in turbulent spells.", change,
                    "max drawdown shallower", "max_drawdown", 1)
    return Note("Without a volatility target the book stays fully invested in turbulent spells too.", change,
                f"{metric} up", metric, 1)


MUTATIONS: dict[str, tuple[Callable[[random.Random, dict, str], Note], float]] = {
    "window": (tune_window, 3.0), "signal": (swap_signal, 3.0), "weighting": (change_weighting, 1.0),
    "fraction": (tune_fraction, 1.5), "book": (change_book, 2.0), "inverse_vol": (toggle_inverse_vol, 1.0),
    "hold": (tune_hold, 1.5), "vol_target": (tune_vol_target, 1.0),
}


def mutate(rng: random.Random, parent: dict, metric: str) -> tuple[dict, str, Note]:
    """One mutation of ``parent`` (never changed in place): (child, mutation name, note)."""
    names = list(MUTATIONS)
    name = rng.choices(names, weights=[MUTATIONS[n][1] for n in names])[0]
    child = copy.deepcopy(parent)
    note = MUTATIONS[name][0](rng, child, metric)
    return normalise_spec(child) or child, name, note


class OfflinePortfolioProposer:
    """Deterministic portfolio search: the same seed, iteration and parent give the same proposal."""

    name = "offline"

    def __init__(self, seed: int = 0, max_gross: float = DEFAULT_MAX_GROSS) -> None:
        self.seed, self.max_gross = seed, max_gross

    def propose(self, ctx: ProposalContext) -> Proposal:
        started = time.monotonic()
        parent = spec_of(ctx.parent_region) or copy.deepcopy(BASELINE_SPEC)
        rng = random.Random(f"portfolio:{self.seed}:{ctx.iteration}")
        child, name, note = mutate(rng, parent, ctx.metric)
        for _ in range(20):
            if spec_json(child) != spec_json(parent):
                break
            child, name, note = mutate(rng, parent, ctx.metric)
        gross = min(ctx.max_gross, self.max_gross, 1.0)  # the run's cap (--max-gross), at most 1
        return Proposal(
            region=render(child, gross), hypothesis=note.hypothesis, change=note.change, expected=note.expected,
            expectation=Expectation(metric=note.metric, direction=note.direction), model="offline",
            seconds=time.monotonic() - started, raw=f"mutations: {name}\nspec: {spec_json(child)}",
        )

    def compact(self, text: str, budget_tokens: int) -> str | None:
        """No model to summarise with: the loop's deterministic compaction applies."""
        return None
