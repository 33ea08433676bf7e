"""Up to N iterations in flight, with records that stay reproducible.

The rule (``--workers N``): iteration k proposes from the state committed up to iteration k-N, and at
least up to iteration 0: the baseline is scored and committed before any other iteration starts, so
the first prompts already show its figures. Records are committed in iteration order. Whether a
candidate enters the population is decided when it is committed, against the state committed up to
k-1. With N = 1 this is the serial loop exactly. With the offline proposer the same seed and the same
N give the same records, however the iterations in flight interleave, and a resume after ``kill -9``
proposes from the same states.

What this module holds: the snapshots iterations propose from (kept in ``snapshots.json`` while
N > 1, so a resume has them), the iterations in flight (one daemon thread each: a thread waiting on
an LLM reply must not hold up the exit after a second Ctrl-C), and a proposer wrapper that bounds
concurrent LLM requests, learnings compaction included, by N.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from alphaloop.run.store import atomic_write_json, read_json


def proposed_from(k: int, workers: int) -> int:
    """The last committed iteration whose state iteration ``k`` proposes from (-1: the empty state, which
    only iteration 0, the baseline, proposes from)."""
    return -1 if k <= 0 else max(k - workers, 0)


def proposes_after(n: int, workers: int, cap: int | None) -> bool:
    """Will a proposal read the state after iteration n (under the rule above, with ``cap`` the last
    iteration)? Only then is the model asked to compact the notes: a request after the last proposal
    would only hold up the end of the run."""
    return cap is None or any(proposed_from(k, workers) >= n for k in range(n + 1, min(cap, n + workers) + 1))


def stalled(fails: int, stall_after: int) -> int:
    """Iterations in a row outside the population once they reach ``stall_after`` (else 0): the proposer then
    widens the search instead of varying the parent again. Read from the state an iteration proposes from,
    so a resumed run proposes what an uninterrupted one would."""
    return fails if fails >= stall_after else 0


def workers_rule(workers: int) -> str:
    """The rule in words, for learnings.md's header and the README."""
    return (f"Iterations in flight: {workers} (--workers {workers}): iteration k proposes from the state committed "
            f"up to k-{workers} (and at least up to iteration 0, the baseline), and records are committed in "
            f"iteration order.")


def with_rule(learnings_md: str, workers: int) -> str:
    """learnings.md with the rule as its header's first line (added to the file only, so the
    learnings' own size, which decides when they are compacted, is the same for every N)."""
    title, _, rest = learnings_md.partition("\n")
    return f"{title}\n\n{workers_rule(workers)}\n{rest}"


@dataclass
class Snapshot:
    """The committed state after iteration ``after`` (-1: nothing committed), as JSON."""

    after: int
    state: dict[str, Any]
    learnings: dict[str, Any]

    def to_json(self) -> dict[str, Any]:
        return {"after": self.after, "state": self.state, "learnings": self.learnings}


class SnapshotStore:
    """The last ``keep`` committed states, written atomically beside state.json when ``keep`` > 1."""

    def __init__(self, path: Path, keep: int) -> None:
        self.path = Path(path)
        self.keep = max(1, int(keep))
        self.items: dict[int, Snapshot] = {}
        if self.path.is_file():
            for d in read_json(self.path).get("snapshots", []):
                self.items[int(d["after"])] = Snapshot(int(d["after"]), d["state"], d["learnings"])

    def add(self, after: int, state: dict[str, Any], learnings: dict[str, Any]) -> None:
        """Remember the state after ``after``; the tsv rows are derived output, not needed to propose."""
        self.items[after] = Snapshot(after, {k: v for k, v in state.items() if k != "tsv_rows"}, learnings)
        for old in sorted(self.items)[:-self.keep]:
            del self.items[old]

    def save(self) -> None:
        """Written only with N > 1: a serial run's workdir holds exactly the files it always held."""
        if self.keep > 1:
            atomic_write_json(self.path, {"snapshots": [self.items[k].to_json() for k in sorted(self.items)]},
                              durable=False)  # a kill keeps it; a power loss is caught by the replay

    def base(self, k: int, workers: int) -> Snapshot:
        """The snapshot iteration ``k`` proposes from: k-N, or (when ``--workers`` grew on a resume and
        it is gone) the oldest one kept; the record says which one it was."""
        want = proposed_from(k, workers)
        if want in self.items:
            return self.items[want]
        older = [a for a in self.items if a <= want]
        return self.items[max(older)] if older else self.items[min(self.items)]


@dataclass
class Flight:
    """One iteration in flight: its future (proposal and evaluation) and the stage it is at."""

    iteration: int
    base: int
    future: Future
    parent: int | None = None  # chosen at launch, from the state it proposes from
    siblings: tuple[int, ...] = ()  # iterations not in that state that build on the same parent
    stage: str = "propose"
    started: float = field(default_factory=time.monotonic)


class InFlight:
    """The iterations running now, each on a daemon thread, and the figures the live panel shows."""

    def __init__(self, workers: int) -> None:
        self.workers = int(workers)
        self.flights: dict[int, Flight] = {}
        self.done = 0
        self.started = time.monotonic()

    def launch(self, k: int, base: int, work: Callable[[Flight], Any], parent: int | None = None,
               siblings: tuple[int, ...] = ()) -> Flight:
        flight = Flight(k, base, Future(), parent, siblings)

        def run() -> None:
            try:
                flight.future.set_result(work(flight))
            except BaseException as exc:  # handed to the committing thread, which decides
                flight.future.set_exception(exc)

        self.flights[k] = flight
        threading.Thread(target=run, name=f"alphaloop-iter-{k}", daemon=True).start()
        return flight

    def take(self, k: int) -> Any:
        """Wait for iteration ``k`` (the next to commit) and hand back its result; re-raises its error."""
        flight = self.flights[k]
        while True:
            try:
                return flight.future.result(timeout=0.2)  # wake up now and then, so Ctrl-C is seen
            except TimeoutError:
                continue
            finally:
                if flight.future.done():
                    self.flights.pop(k, None)
                    self.done += 1

    def stages(self) -> list[tuple[int, str]]:
        return [(k, f.stage) for k, f in sorted(list(self.flights.items()))]  # list(): one step under the GIL

    def per_minute(self) -> float:
        """Candidates committed per minute in this command."""
        elapsed = time.monotonic() - self.started
        return self.done / elapsed * 60.0 if elapsed > 0 else 0.0


class BoundedProposer:
    """The proposer behind a semaphore: at most N requests at once, its compaction calls included."""

    def __init__(self, proposer: Any, workers: int) -> None:
        self.inner = proposer
        self.name = getattr(proposer, "name", "")
        self._slots = threading.BoundedSemaphore(max(1, int(workers)))

    def propose(self, ctx: Any) -> Any:
        with self._slots:
            return self.inner.propose(ctx)

    def compact(self, text: str, budget_tokens: int) -> str | None:
        with self._slots:
            return self.inner.compact(text, budget_tokens)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)
