"""An iteration's own work does not grow with the run (issue 22: a flat cost per iteration over a night).

Counted, never timed: what each iteration reads of the run folder, on its proposing thread and at its commit."""

from __future__ import annotations

import io
import json
import random
import threading
from collections import Counter
from pathlib import Path

import pytest
from rich.console import Console

from alphaloop.config import LoopConfig
from alphaloop.present.ui import PlainView
from alphaloop.propose.offline import OfflineProposer
from alphaloop.run.learnings import Learnings
from alphaloop.run.loop import Loop
from alphaloop.run.records import IterationRecord
from alphaloop.run.rows import entry_from_record
from alphaloop.run.state import LoopState
from alphaloop.run.workdir import Workdir
from alphaloop.tasks import get_task
from tests.test_records import OLD_RECORD


def test_proposing_reads_a_few_records_without_their_returns_at_any_iteration(
        frozen_data: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """An iteration's thread reads the latest record, its parent's and the parent of the latest (and, with
    several workers, the parents of those in flight): the same few small files at iteration 3 as at 14,
    never a returns sidecar, which only the commit of a record reads back."""
    reads: Counter[tuple[str, bool]] = Counter()
    original = Workdir.record

    def counted(self: Workdir, n: int, returns: bool = True):  # type: ignore[no-untyped-def]
        reads[(threading.current_thread().name, returns)] += 1
        return original(self, n, returns)

    monkeypatch.setattr(Workdir, "record", counted)
    monkeypatch.setattr(Loop, "_finish", lambda self, state, manifest: True)  # the end of run reads every record
    cfg = LoopConfig(workdir=tmp_path / "run", data_dir=frozen_data, iterations=14, max_fails=0, stress_paths=0,
                     seed=5)
    assert Loop(cfg, OfflineProposer(seed=5), "offline", PlainView(14, Console(file=io.StringIO()))).run() == 0
    on_threads = {name: count for (name, returns), count in reads.items() if name.startswith("alphaloop-iter-")}
    assert not any(returns for (name, returns) in reads if name.startswith("alphaloop-iter-")), reads
    assert set(on_threads) == {f"alphaloop-iter-{k}" for k in range(1, 15)}
    assert max(on_threads.values()) <= 3, on_threads
    main = sum(count for (name, _), count in reads.items() if not name.startswith("alphaloop-iter-"))
    assert main <= 2 * 15, reads  # the commit reads its record back (twice when the learnings compact)


def _fold(iterations: int, workers: int, measure: tuple[int, ...], seed: int = 3) -> tuple[LoopState, Learnings,
                                                                                     list[int]]:
    """Fold synthetic records as the loop commits them with ``workers`` in flight: iteration k proposes from the
    state after k - workers, builds on a member of that state's population and enters about one time in four.
    Returns the state, the same notes folded on their own (nothing forgotten) and state.json's bytes after each
    record counted in ``measure``."""
    rng = random.Random(seed)
    task = get_task("trade")
    state, learnings, plain = LoopState(metric="sharpe", population_size=3, data_manifest="x"), Learnings(), Learnings()
    sizes: list[int] = []
    populations: dict[int, list[int]] = {-1: []}
    for k in range(iterations):
        base = -1 if k == 0 else max(k - workers, 0)
        members = populations[base]
        val = rng.uniform(-1, 2)
        record = IterationRecord.from_json({
            **OLD_RECORD, "iteration": k, "parent": rng.choice(members) if members else (None if k == 0 else 0),
            "proposed_from": None if base < 0 else base, "in_population": k == 0 or rng.random() < 0.25,
            "selection_value": val,
            "scores": {**OLD_RECORD["scores"], "splits": {"val": {"sharpe": val, "round_trips": 9.0},
                                                          "train": {"sharpe": 0.2, "round_trips": 30.0}}},
            "proposal": {"hypothesis": f"h{k}", "change": f"change {k}", "expected": "e", "expectation": None}})
        state.apply(record, learnings, task)
        plain.add(entry_from_record(record, "sharpe", task))
        populations[k] = [m.iteration for m in state.population]
        if k + 1 in measure:
            sizes.append(len(json.dumps(state.to_json())))
    return state, plain, sizes


@pytest.mark.parametrize("workers", [1, 4])
def test_the_state_stays_the_same_size_through_a_long_run(workers: int) -> None:
    """state.json (rewritten at each checkpoint, copied into the snapshot every iteration proposes from) holds no
    list that grows with the run: as large at 1,200 records as at 400 (the notes fill and compact in between); and
    the notes it carries say exactly what the same notes folded with nothing forgotten say."""
    state, plain, sizes = _fold(1_200, workers, (*range(300, 400), *range(1_100, 1_200)))
    assert max(sizes[100:]) < 1.02 * max(sizes[:100]), (max(sizes[:100]), max(sizes[100:]))  # notes fill, then compact
    assert len(state.to_json()["learnings"]["distilled"]["member_vals"]) <= 3 + workers
    assert Learnings.from_json(state.learnings).render() == plain.render()


def test_the_notes_are_rendered_once_a_fold(monkeypatch: pytest.MonkeyPatch) -> None:
    """A fold measures learnings.md to decide on a compaction; the loop then writes learnings.md: one rendering
    serves both, and it reads as the same notes read back from the state."""
    task, notes, rendered = get_task("trade"), Learnings(), []
    original = Learnings._render
    monkeypatch.setattr(Learnings, "_render", lambda self, entries: rendered.append(1) or original(self, entries))
    for k in range(40):
        record = IterationRecord.from_json({**OLD_RECORD, "iteration": k, "in_population": k % 3 == 0,
                                            "proposal": {"hypothesis": f"h{k}", "change": f"change {k}" * 20}})
        before, kept = len(rendered), len(notes.entries)
        notes.add(entry_from_record(record, "sharpe", task))
        text = notes.render()
        compacted = len(notes.entries) <= kept  # measured before compacting, so rendered again after
        assert notes.render() == text and len(rendered) - before <= 1 + compacted, k
        assert text == Learnings.from_json(notes.to_json()).render(), k
    assert "Earlier iterations, one line each" in text  # the notes compacted on the way
