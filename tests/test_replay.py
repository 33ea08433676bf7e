"""Replay is a pure fold: a resume never calls the compactor, and the records alone rebuild the notes."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
from rich.console import Console

from alphaloop.present.ui import PlainView
from alphaloop.propose.offline import OfflineProposer
from alphaloop.run import learnings
from alphaloop.run.loop import Loop, LoopConfig
from alphaloop.run.morning import with_morning


class Compacting(OfflineProposer):
    """The offline search with a model-like compactor that numbers its replies."""

    def __init__(self, seed: int) -> None:
        super().__init__(seed=seed)
        self.calls = 0

    def compact(self, text: str, budget_tokens: int) -> str | None:
        self.calls += 1
        assert "Distilled facts" in text and budget_tokens * 4 == learnings.LESSONS_CHARS
        return f"- lesson written by compaction {self.calls}"


class Raising(OfflineProposer):
    def compact(self, text: str, budget_tokens: int) -> str | None:
        raise AssertionError("a resume called the compactor")


def quiet() -> PlainView:
    return PlainView(9, Console(file=io.StringIO()))


def test_a_resume_replays_stored_compactions_and_never_calls_the_compactor(
        frozen_data: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(learnings, "BUDGET_TOKENS", 350)  # compact after a few iterations, not after dozens
    wd = tmp_path / "run"
    cfg = LoopConfig(workdir=wd, data_dir=frozen_data, iterations=9, max_fails=0, stress_paths=0, seed=1)
    live = Compacting(seed=1)
    assert Loop(cfg, live, "offline", quiet()).run() == 0
    records = [json.loads((wd / f"iter_{n}_results.json").read_text()) for n in range(10)]
    stored = [r["learnings_compacted"] for r in records if r.get("learnings_compacted") is not None]
    assert live.calls >= 2 and len(stored) == live.calls
    assert stored[-1] == f"- lesson written by compaction {live.calls}"
    notes, state = (wd / "learnings.md").read_text(), json.loads((wd / "state.json").read_text())
    assert stored[-1] in notes

    (wd / "state.json").unlink()  # as if killed before the first state write: every record is replayed
    (wd / "learnings.md").unlink()
    replayed, ln, _ = Loop(cfg, Raising(seed=1), "offline", quiet())._open()
    assert (wd / "learnings.md").read_text() == with_morning(notes, [])  # the end of run's verdict line aside
    assert ln.to_json() == state["learnings"] and replayed.to_json()["learnings"] == state["learnings"]
