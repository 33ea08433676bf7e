"""A pool of N warm sandbox workers shared by the evaluations in flight.

Each worker is a whole ``sandbox.runner.Sandbox``: its own process (inside bubblewrap when that
works), its own fork per candidate and every layer a lone sandbox has, so a candidate is exactly as
isolated as with one worker. A run takes whichever worker is free and gives it back afterwards, so
workers are reused across candidates and never shared by two runs at once.

A worker that dies under a run (the worker process itself, not the candidate's child: a child's
crash is the candidate's result) is replaced by a fresh one and the run is retried once on it. A
second death is returned as a sandbox fault, so the candidate is recorded, never silently lost. A
worker found stopped when a run takes it (the runner stops one that overran its deadline) is
replaced first. Every worker starts on the pool's own long-lived thread, because bubblewrap's
--die-with-parent kills a worker when the thread that started it exits, and runs come from the
short-lived threads of the iterations in flight.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

import pandas as pd

from sandbox.runner import RunOutcome, Sandbox

SANDBOX_FAULT = "sandbox fault"  # the reason's prefix when a run lost its worker twice
R = TypeVar("R")


def retry_once(run: Callable[[], R], fault: Callable[[R], str | None], replace: Callable[[R], None],
               give_up: Callable[[R, R], R]) -> R:
    """``run()``; if what it returned is a fault (``fault`` gives its reason, else None), ``replace`` what
    died and run once more; a second fault is ``give_up(first, second)``.

    Why one rule everywhere (the pool's workers, evaluation processes, Ray actors): a worker lost once is
    bad luck and the candidate deserves a fresh one; lost twice, it is recorded as a fault, never retried
    forever and never silently dropped."""
    first = run()
    if fault(first) is None:
        return first
    replace(first)
    second = run()
    return second if fault(second) is None else give_up(first, second)


class SandboxPool:
    """N warm workers behind ``Sandbox``'s calls (``run``, ``describe``, ``layers``, ``close``)."""

    def __init__(self, size: int = 1, factory: Callable[[], Any] | None = None, **sandbox_args: Any) -> None:
        """``factory`` builds one worker (default ``Sandbox(**sandbox_args)``)."""
        if size < 1:
            raise ValueError(f"a sandbox pool needs at least one worker, got {size}")
        self.size = int(size)
        self._factory = factory or (lambda: Sandbox(**sandbox_args))
        self._lock = threading.Lock()
        self._idle: queue.Queue[Any] = queue.Queue()
        self.busy = 0  # runs holding a worker right now, for the live panel
        self.runs = 0
        self.replaced = 0  # workers replaced after dying under a run
        self.faults = 0  # runs returned as sandbox faults (their worker died twice)
        self.started = time.monotonic()
        # Every worker is started from one thread that lives as long as the pool: bwrap's
        # --die-with-parent (PR_SET_PDEATHSIG) kills a worker when the *thread* that started it exits.
        self._spawner = ThreadPoolExecutor(max_workers=1, thread_name_prefix="sandbox-spawner")
        self.workers: list[Any] = []
        try:
            for _ in range(self.size):
                self.workers.append(self._spawner.submit(self._factory).result())
        except BaseException:
            self.close()
            raise
        for box in self.workers:
            self._idle.put(box)

    # --- what callers of a Sandbox use -------------------------------------------------------------
    @property
    def layers(self) -> list[str]:
        return self.workers[0].layers

    @property
    def missing(self) -> dict[str, str]:
        return self.workers[0].missing

    @property
    def timeout_s(self) -> float:
        return self.workers[0].timeout_s

    def describe(self) -> str:
        """The first worker's isolation line (all workers are built alike), plus the pool's size."""
        line = self.workers[0].describe()
        return line if self.size == 1 else f"{line}; {self.size} sandbox workers"

    def __enter__(self) -> SandboxPool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        for box in self.workers:
            box.close()
        self._spawner.shutdown(wait=False)

    def run(self, region: str, frames: list[pd.DataFrame], timeout_s: float | None = None,
            task: str | None = None) -> RunOutcome:
        """Run on a free worker; a worker that died under the run is replaced and the run retried once.
        ``task`` names the worker's driver as ``Sandbox.run``'s does (None: its default)."""
        box = self._idle.get()
        with self._lock:
            self.busy += 1
            self.runs += 1

        def once(worker: Any) -> RunOutcome:
            return worker.run(region, frames, timeout_s) if task is None else worker.run(region, frames, timeout_s,
                                                                                          task=task)

        held = [box]

        def replace(_: RunOutcome) -> None:
            held[0] = self._replace(held[0])

        def give_up(first: RunOutcome, second: RunOutcome) -> RunOutcome:
            with self._lock:
                self.faults += 1
            return RunOutcome("crash", f"{SANDBOX_FAULT}: the sandbox worker died twice under this candidate "
                                       f"({first.reason}; then {second.reason})", None, second.log,
                              first.seconds + second.seconds, worker_fault=True)

        try:
            if not getattr(box, "alive", True):  # stopped after a timeout or dead: restart it from the
                held[0] = self._replace(box)  # spawner thread, never from this short-lived one
            return retry_once(lambda: once(held[0]), lambda o: o.reason if o.worker_fault else None, replace,
                              give_up)
        finally:
            with self._lock:
                self.busy -= 1
            self._idle.put(held[0])

    def _replace(self, dead: Any) -> Any:
        """A fresh worker in the dead one's place (a worker that cannot start keeps the old slot, which
        restarts itself on its next run)."""
        dead.close()
        try:
            fresh = self._spawner.submit(self._factory).result()
        except RuntimeError:
            return dead
        with self._lock:
            self.replaced += 1
            self.workers[self.workers.index(dead)] = fresh
        return fresh

    def stats(self) -> dict[str, Any]:
        """Workers busy, runs so far, replacements and faults: what the live panel shows."""
        with self._lock:
            return {"workers": self.size, "busy": self.busy, "runs": self.runs, "replaced": self.replaced,
                    "faults": self.faults}
