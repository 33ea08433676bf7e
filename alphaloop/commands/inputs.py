"""What the end-of-run steps and ``harness.py final`` hand to the task: typed inputs, not the loop."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from alphaloop.data.frozen import Universe
    from alphaloop.evaluate.scoring import History
    from alphaloop.run.records import IterationRecord
    from alphaloop.run.state import LoopState
    from alphaloop.run.workdir import Workdir
    from alphaloop.tasks.protocol import Task


@dataclass
class FinishInputs:
    """What the end-of-run steps read: the run folder, its state and data, and the run's settings."""

    wd: Workdir
    state: LoopState
    manifest: dict
    histories: tuple[History, ...]  # every instrument the candidates ran on, in the universe's order
    data_dir: Path
    metric: str
    cost_bps: float
    seed: int
    stress_paths: int
    cross_ticker: str | None
    test_readings: int  # readings of the test split by `final`, counted when the run started
    task: Task
    instrument_names: tuple[str, ...] = ()  # their names, for stats.json (people only; prompts number them)


@dataclass
class FinalInputs:
    """One reading of the locked test split: the candidate, the run's record of it, and the data."""

    wd: Workdir
    data_dir: Path
    file: Path  # best_trade.py or iter_N_trade.py
    raw: bytes  # the file as read (its sha256 goes into the reading)
    region: str
    iteration: int | None
    record: IterationRecord | None  # the loop's record of it (None: unknown or damaged)
    metric: str
    cost_bps: float
    universe: Universe  # train+validation+test of every instrument the loop ran on
    held: Universe | None  # held-out instruments, read here and nowhere else
    manifest: dict
    sandbox: Any  # a sandbox.runner.Sandbox (started by the caller)
    task: Task  # the task that wrote the candidate (its record says which)
    refresh: Callable[[Workdir], None]  # rewrite the report after the reading
