"""An iteration's own work does not grow with the run (issue 22: a flat cost per iteration over a night).

Counted, never timed: what each iteration reads of the run folder, on its proposing thread and at its commit."""

from __future__ import annotations

import io
import threading
from collections import Counter
from pathlib import Path

import pytest
from rich.console import Console

from alphaloop.config import LoopConfig
from alphaloop.present.ui import PlainView
from alphaloop.propose.offline import OfflineProposer
from alphaloop.run.loop import Loop
from alphaloop.run.workdir import Workdir


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
