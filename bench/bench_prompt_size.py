"""Does the proposal prompt stay flat as a run grows? Simulate 200 iterations and measure it.

The offline proposer writes the candidates; a seeded stand-in scores them and keeps a top-3
population; every iteration adds an entry to the loop's real ``Learnings`` (which compacts past
its ~3,000-token budget, with a compactor that always writes the longest lessons accepted), and the
request is built with ``build_messages`` from ``Learnings.prompt_view()`` exactly as the loop sends
it: the distilled section whole (best so far, what helped, what did not, every rejection reason)
and the same five recent entries before and after each compaction. Every prompt also carries the parent's and
the latest candidate's figure tables (train, 4 folds, validation, buy and hold beside them), the
parent's reason and the guard thresholds, as the loop will fill them.

    python bench/bench_prompt_size.py [--iterations 200] [--seed 0]

Exits 1 when the prompt at the last iteration is more than 1.2x the prompt at iteration 50 (by then
the distilled section's lists, best ideas, failed ones and rejection reasons, have filled to their
caps; before it they grow), or when any prompt exceeds the bound the caps in prompting.py
guarantee (``variable_bound()`` plus the prompt files themselves).
"""

from __future__ import annotations

import argparse
import random
import sys

from alphaloop.candidate import extract_region, template_text
from alphaloop.propose.base import CandidateFigures, GuardThreshold, MemberSummary, ProposalContext, WindowFigures
from alphaloop.propose.offline import OfflineProposer
from alphaloop.propose.prompting import build_messages, load_prompts, prompt_chars, variable_bound
from alphaloop.run.learnings import PROMPT_CHARS, Entry, Learnings

POPULATION = 3
STAGES = ("gate", "sandbox", "lookahead", "guards", "score", "proposal")
REASONS = ("too few round trips on validation against the floor of the guard", "a feature changed when future rows "
           "were removed: column 'z' at row 310", "ZeroDivisionError in strategy_logic: division by zero at row 12")
LIMIT = 1.2
REFERENCE = 50  # the iteration the flatness check compares the last one with
CHECKPOINTS = (10, 50, 100, 150, 200)
FOLDS = 4
GUARDS = (GuardThreshold("min validation round trips", 3, "trades"), GuardThreshold("max exposure", 99, "% of days"),
          GuardThreshold("min exposure", 1, "% of days"), GuardThreshold("max turnover", 52, "changes a year"))


def fake_figures(rng: random.Random, iteration: int, status: str) -> CandidateFigures:
    """A seeded stand-in for the table the loop fills: train, the folds, validation, buy and hold beside each."""
    names = ["train"] + [f"fold {k}" for k in range(1, FOLDS + 1)] + ["validation"]
    windows = tuple(WindowFigures(name, rng.gauss(0.5, 0.4), rng.gauss(0.1, 0.2), -abs(rng.gauss(0.15, 0.05)),
                                  rng.random(), rng.randrange(2, 40), rng.uniform(0.5, 8), rng.gauss(0.6, 0.3),
                                  rng.gauss(0.12, 0.2), -abs(rng.gauss(0.2, 0.05))) for name in names)
    return CandidateFigures(iteration, windows, status=status)


def simulate(iterations: int, seed: int) -> list[tuple[int, int, int, int]]:
    """Per iteration: (iteration, system chars, user chars, total chars)."""
    program, template = load_prompts()
    proposer = OfflineProposer(seed=seed)
    rng = random.Random(f"bench:{seed}")
    baseline = extract_region(template_text())
    population = [(MemberSummary(0, 0.45, 0.52, 8, "baseline SMA 20/50 cross"), baseline)]
    learnings = Learnings()
    last_outcome: str | None = None
    latest: CandidateFigures | None = None
    sizes = []

    def compactor(text: str, budget_tokens: int) -> str:
        """A model that always writes the longest lessons the loop accepts (the worst case for the prompt)."""
        return "\n".join(f"- lesson {k}: " + "volatility filters lowered validation Sharpe " * 2
                         for k in range(40))[: budget_tokens * 4 - 1].rsplit(" ", 1)[0]

    for it in range(1, iterations + 1):
        parent_summary, parent_region = population[rng.randrange(len(population))]
        reason = f"reverting to iter {parent_summary.iteration}: iter {it - 1} did not enter the population"
        ctx = ProposalContext(iteration=it, parent_iteration=parent_summary.iteration, parent_region=parent_region,
                              metric="sharpe", population=[m for m, _ in population],
                              learnings=learnings.prompt_view(), last_outcome=last_outcome,
                              parent_figures=fake_figures(rng, parent_summary.iteration, "accepted"),
                              latest_figures=latest, parent_reason=reason, unchanged_positions=rng.random() < 0.1,
                              guards=GUARDS)
        messages = build_messages(ctx, program, template)
        system = sum(len(m["content"]) for m in messages if m["role"] == "system")
        sizes.append((it, system, prompt_chars(messages) - system, prompt_chars(messages)))
        proposal = proposer.propose(ctx)
        val, train = rng.gauss(0.45, 0.25), rng.gauss(0.55, 0.25)
        trades = rng.randrange(2, 40)
        entered = False
        if trades < 4:
            last_outcome = f"iter {it} rejected at guards: too few trades ({trades} on validation)"
        else:
            last_outcome = f"iter {it} scored: val sharpe {val:.3f}, train sharpe {train:.3f}, {trades} trades"
            population.append((MemberSummary(it, val, train, trades, proposal.change), proposal.region or baseline))
            population = sorted(population, key=lambda m: m[0].val_metric, reverse=True)[:POPULATION]
            entered = any(m.iteration == it for m, _ in population)
        latest = fake_figures(rng, it, last_outcome.split(": ", 1)[0])
        held = rng.random() < 0.4
        stage = rng.choice(STAGES) if trades < 4 else "guards"
        learnings.add(Entry(iteration=it, parent=parent_summary.iteration, headline=last_outcome.split(": ", 1)[1],
                            hypothesis=proposal.hypothesis, change=proposal.change, expected=proposal.expected,
                            verdict=f"expected val sharpe up; {'held' if held else 'did not hold'}", held=held,
                            status="rejected" if trades < 4 else "accepted", stage=stage,
                            reason=f"{stage}: {rng.choice(REASONS)} (seen {trades} times)", metric="sharpe",
                            val=None if trades < 4 else val, bh=1.04, selection=None if trades < 4 else val,
                            entered=entered),
                      compactor=compactor)
    return sizes


def static_bound(program: str, template: str) -> int:
    """The largest prompt build_messages can produce, from the caps in prompting.py."""
    return len(program) + len(template) + variable_bound()


def report(iterations: int, seed: int) -> tuple[float, int]:
    """Print one simulated run; return its iteration-N / iteration-10 ratio and its largest prompt."""
    sizes = simulate(iterations, seed)
    print(f"{'iteration':>9} {'system':>8} {'user':>8} {'chars':>8} {'~tokens':>8}")
    for it, system, user, total in sizes:
        if it in CHECKPOINTS or it == iterations:
            print(f"{it:>9} {system:>8} {user:>8} {total:>8} {total // 4:>8}")
    at10, last = sizes[REFERENCE - 1][3], sizes[-1][3]
    peak = max(s[3] for s in sizes)
    print(f"ratio iteration {iterations} / iteration {REFERENCE}: {last / at10:.3f}; largest prompt of the run: "
          f"{peak} chars (~{peak // 4} tokens, {peak / at10:.3f}x iteration {REFERENCE}, "
          f"{peak / sizes[9][3]:.3f}x iteration 10)")
    return last / at10, peak


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--iterations", type=int, default=200)
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    if args.iterations < REFERENCE:
        p.error(f"--iterations must be at least {REFERENCE}")
    program, template = load_prompts()
    bound = static_bound(program, template)
    print(f"prompt size over {args.iterations} iterations (offline proposer, top-{POPULATION} population); "
          f"bound by construction: {bound} chars (~{bound // 4} tokens), of which learnings {PROMPT_CHARS} chars")
    ratio, peak = report(args.iterations, args.seed)
    print(f"flatness check: {ratio:.3f} (limit {LIMIT}): {'ok' if ratio <= LIMIT else 'FAILED'}")
    return 0 if ratio <= LIMIT and peak <= bound else 1


if __name__ == "__main__":
    sys.exit(main())
