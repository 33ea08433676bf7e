"""A proposer that needs no model: a mutation search over small strategy specs.

A strategy is a spec (one entry rule, one or two exit rules, up to two filters, their
parameters). The spec renders to plain region code whose first line records the spec as JSON,
so the next iteration can read its parent's spec back and mutate it: tune a parameter, swap the
entry indicator, add/drop/swap a filter, change the exits. Regions without a spec (the
hand-written baseline, LLM code) start from the spec equivalent to the baseline SMA 20/50 cross.

Generated code only uses rolling/ewm windows, ``diff`` and positive ``shift``, so every feature
at row t depends on rows up to t; it has no imports, no underscore names and no lambdas, and
``strategy_logic`` returns 0 while any value it reads is NaN.
"""


from __future__ import annotations

import copy
import random
import time

from alphaloop.propose.base import Expectation, Proposal, ProposalContext
from alphaloop.propose.offline.mutate import MUTATIONS, Note, mutate, mutation_weights, restart
from alphaloop.propose.offline.render import render
from alphaloop.propose.offline.spec import (
    BASELINE_SPEC,
    ENTRY_SPACE,
    EXIT_SPACE,
    FILTER_SPACE,
    columns_needed,
    describe,
    fit_columns,
    indicator_families,
    normalise_spec,
    spec_json,
    spec_of,
)

__all__ = [
    "BASELINE_SPEC", "ENTRY_SPACE", "EXIT_SPACE", "FILTER_SPACE", "MUTATIONS", "Note", "OfflineProposer", "describe",
    "indicator_families", "mutate", "mutation_weights", "normalise_spec", "render", "spec_json", "spec_of",
]


class OfflineProposer:
    """Deterministic mutation search: the same seed, iteration and parent give the same proposal."""

    name = "offline"

    def __init__(self, seed: int = 0) -> None:
        self.seed = seed

    def propose(self, ctx: ProposalContext) -> Proposal:
        started = time.monotonic()
        parent = spec_of(ctx.parent_region) or copy.deepcopy(BASELINE_SPEC)
        rng = random.Random(f"{self.seed}:{ctx.iteration}")
        have = set(ctx.columns) if ctx.columns else None  # None: an older manifest, every column assumed
        if have is not None:  # a parent reading a column the data lacks (it failed) is judged without it
            parent = fit_columns(parent, have, BASELINE_SPEC)

        def draw(first: bool) -> tuple[dict, list[str], list[Note]]:
            if first and ctx.stalled:  # widen the search: another family, not one more variation of the same
                child, note = restart(rng, parent, ctx.metric, ctx.stalled)
                return child, ["restart"], [note]
            return mutate(rng, parent, ctx.metric, ctx.last_outcome, ctx.unchanged_positions)

        child, names, notes = draw(True)
        for _ in range(40):  # a new spec that reads only columns the data has (close-only data: no ATR, volume)
            if spec_json(child) != spec_json(parent) and (have is None or columns_needed(child) <= have):
                break
            child, names, notes = draw(ctx.stalled > 0)
        if have is not None:
            child = fit_columns(child, have, BASELINE_SPEC)
        lead = notes[0]
        return Proposal(
            region=render(child),
            hypothesis=" ".join(n.hypothesis for n in notes),
            change="; ".join(n.change for n in notes),
            expected="; ".join(n.expected for n in notes),
            expectation=Expectation(metric=lead.metric, direction=lead.direction),
            model="offline",
            seconds=time.monotonic() - started,
            raw=f"mutations: {', '.join(names)}\nspec: {spec_json(child)}",
        )

    def compact(self, text: str, budget_tokens: int) -> str | None:
        """No model to summarise with: the loop's deterministic compaction applies."""
        return None

