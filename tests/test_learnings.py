"""learnings.md stays bounded, keeps recent entries verbatim, and grades hypotheses honestly."""

from __future__ import annotations

import re

from alphaloop.propose.base import Expectation
from alphaloop.run.learnings import BUDGET_TOKENS, KEEP_RECENT, Entry, Learnings, grade, tokens


def entry(n: int, held: bool | None = True) -> Entry:
    return Entry(iteration=n, parent=n - 1, headline=f"accepted, val sharpe 0.{n % 10}", hypothesis="h " * 60,
                 change=f"change number {n}: " + "swap the fast average for an EMA " * 4, expected="sharpe up",
                 verdict="expected val sharpe up; it moved +0.1 -> held", held=held)


def test_grading_follows_the_direction_and_magnitude() -> None:
    parent, child = {"sharpe": 0.5, "max_drawdown": -0.2}, {"sharpe": 0.6, "max_drawdown": -0.25}
    assert grade(Expectation("sharpe", 1), parent, child)[0] is True
    assert grade(Expectation("sharpe", -1), parent, child)[0] is False
    assert grade(Expectation("sharpe", 1, 0.5), parent, child)[0] is False  # moved 0.1 of a promised 0.5
    assert grade(Expectation("max_drawdown", 1), parent, child)[0] is False  # drawdown got deeper
    assert grade(None, parent, child)[0] is None
    assert grade(Expectation("sharpe", 1), None, child)[0] is None
    assert grade(Expectation("nonsense", 1), parent, child)[0] is None


def test_learnings_stay_bounded_and_keep_recent_entries() -> None:
    ln = Learnings()
    sizes = []
    for n in range(1, 301):
        ln.add(entry(n, held=n % 3 == 0))
        sizes.append(tokens(ln.render()))
    assert max(sizes) <= BUDGET_TOKENS * 1.05
    assert max(sizes[-50:]) <= 1.2 * max(sizes[50:150])  # over whole compaction cycles: no growth with the run
    text = ln.render()
    assert "### iter 300" in text and "### iter 295" in text
    assert re.search(r"Compacted so far: \d+ iterations folded into the lines below; their hypotheses: \d+ held", text)
    assert ln.graded == 300 and ln.hits == 100 and "100/300 hypotheses held (33%)" in text
    assert KEEP_RECENT <= len(ln.entries) < 40


def test_llm_compactor_is_used_and_its_overflow_is_refused() -> None:
    ln = Learnings()
    calls = []

    def compactor(text: str, budget: int) -> str:
        calls.append(budget)
        return "Lesson: EMAs beat SMAs on validation."

    for n in range(1, 60):
        ln.add(entry(n), compactor)
    assert calls and ln.summary == "Lesson: EMAs beat SMAs on validation."
    ln2 = Learnings()
    for n in range(1, 60):
        ln2.add(entry(n), lambda text, budget: "x" * 100_000)
    assert ln2.summary.startswith("Compacted so far")


def test_round_trip_through_json() -> None:
    ln = Learnings()
    for n in range(1, 40):
        ln.add(entry(n, held=None if n % 5 == 0 else True))
    again = Learnings.from_json(ln.to_json())
    assert again.render() == ln.render()
