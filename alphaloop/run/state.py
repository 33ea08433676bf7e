"""The run's state (``state.json``): a pure fold over the iteration records, so a resume replays them.

Its size does not grow with the run (the population, the bounded learnings, counters): the results rows
live in ``results.tsv`` alone, appended one per record (schema 1 carried them all here as well)."""

from __future__ import annotations

import random
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from alphaloop.run.diversity import MemberReturns, novelty
from alphaloop.run.learnings import Learnings
from alphaloop.run.records import SCHEMA_VERSION, IterationRecord, Member, build, check_version
from alphaloop.run.rows import describe, entry_from_record, outcome_line

if TYPE_CHECKING:
    from alphaloop.tasks.protocol import Task


@dataclass
class LoopState:
    """Everything needed to continue a run; a pure function of the iteration records."""

    metric: str
    population_size: int
    data_manifest: str
    cost_bps: float | None = None
    folds: int | None = None
    next_iteration: int = 0
    population: list[Member] = field(default_factory=list)
    consecutive_fails: int = 0
    last_entered: bool = False
    trials: int = 0
    accepted: int = 0
    tokens: dict[str, int] = field(default_factory=lambda: {"prompt": 0, "completion": 0})
    learnings: dict = field(default_factory=dict)
    last_outcome: str | None = None
    stop_reason: str | None = None
    elapsed_s: float = 0.0
    searched_after_test_reading: bool = False  # an iteration ran after `final` read the test split
    task: str = "trade"  # "forecast": the population holds forecasters ranked by rps_skill_mean

    @property
    def best(self) -> Member | None:
        return self.population[0] if self.population else None

    def duplicate_of(self, signals_sha256: str | None) -> int | None:
        """The member that already trades exactly these signals: a copy adds nothing to the population."""
        return next((m.iteration for m in self.population if signals_sha256 and m.signals_sha256 == signals_sha256),
                    None)

    def would_enter(self, value: float | None, signals_sha256: str | None = None) -> bool:
        """Whether a candidate keyed ``signals_sha256`` would enter, by the one admission rule
        (``diversity.novelty``) without returns to compare: not a duplicate, then the top-K rule."""
        members = [MemberReturns(m.iteration, m.value, m.signals_sha256) for m in self.population]
        return novelty(signals_sha256, None, value, members, self.population_size).enters

    def pick_parent(self, n: int, seed: int) -> int:
        """After a success build on it; after a failure revert to a random top-K member.

        The success is the last iteration this state holds (n - 1 in a serial run; with N iterations
        in flight, iteration n proposes from the state after n - N)."""
        members = [m.iteration for m in self.population]
        last = self.next_iteration - 1
        if self.last_entered and last in members:
            return last
        if not members:
            return 0
        return random.Random(f"{seed}:parent:{n}").choice(members)

    def apply(self, record: IterationRecord, learnings: Learnings, task: Task) -> None:
        """Fold one iteration record into the state (used live and when replaying after a kill).

        A pure fold: the compacted learnings a compaction needs come stored in the record
        (``learnings_compacted``), so a replay never calls a model and the same records give the same state."""
        n = record.iteration
        entered = record.entered
        self.trials += 1 if record.stage != "proposal" else 0
        self.accepted += record.accepted
        if entered:
            val, train = record.split("val"), record.split("train")
            member = Member(
                iteration=n, value=float(record.selection), val_metric=float(val[self.metric]),
                train_metric=float(train[self.metric]), val_trades=int(val.get("round_trips", 0)),
                description=describe(record, baseline=task.baseline), val=val,
                fold_min=record.fold_spread.get("min"), fold_median=record.fold_spread.get("median"),
                signals_sha256=record.signals_sha256, positions_sha256=record.positions_sha256,
                val_returns=(record.returns or {}).get("val"),
            )
            kept = [m for m in self.population if m.iteration != record.replaces]
            self.population = sorted([*kept, member], key=lambda m: -m.value)[: self.population_size]
        if n > 0:
            self.consecutive_fails = 0 if entered else self.consecutive_fails + 1
        self.last_entered = entered
        self.searched_after_test_reading |= bool(record.test_readings_before)
        for k in ("prompt", "completion"):
            self.tokens[k] += int(record.tokens.get(k, 0))
        learnings.add(entry_from_record(record, self.metric, task), record.learnings_compacted)
        if record.proposed_from is not None:  # what no later iteration can build on is forgotten
            learnings.distilled.keep_parents({m.iteration for m in self.population}, n, record.proposed_from)
        self.learnings = learnings.to_json()
        self.last_outcome = outcome_line(record, self.metric, task)
        self.next_iteration = n + 1

    def to_json(self) -> dict:
        d = {"schema_version": SCHEMA_VERSION, **asdict(self)}
        d["best_iteration"] = self.best.iteration if self.best else None
        return d

    @classmethod
    def from_json(cls, d: Any, source: str = "run state") -> LoopState:
        check_version(d, source)
        state = build(cls, d, source)
        state.population = [build(Member, m, f"{source} (population)") for m in state.population]
        return state
