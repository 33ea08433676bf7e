"""Where candidates are evaluated: a local pool of warm sandboxes, or a Ray cluster.

The loop hands an executor a region and gets back a ``TaskResult`` (the pipeline's ``Evaluation``
and, with ``--stress-select``, the stress summary). Nothing else crosses the seam: the loop, the
proposer and every write stay with the caller (on Ray, the driver). Evaluation is a pure function
of the region, the frozen data and the settings, so both executors give the same records.

- ``local``: a ``sandbox.pool.SandboxPool`` of N workers; each call takes free workers for its runs.
- ``ray``: N actors (one CPU each), each holding one warm ``Sandbox`` on its node for its whole life,
  so every task an actor runs uses that node's sandbox. The frozen data is put into the object store
  once and handed to every actor by reference. An actor that dies is replaced and its task retried
  once, then recorded as a sandbox fault, the local pool's rule. Ray is an optional extra
  (``pip install -e '.[ray]'``), imported only when chosen.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from alphaloop.evaluate import pipeline
from alphaloop.evaluate.pipeline import EvalContext, Evaluation, evaluate
from alphaloop.evaluate.scoring import History
from alphaloop.tasks import get_task

EXECUTORS = ("local", "ray")
EvalData = tuple[History, ...]  # every instrument a candidate runs on, in the universe's order


@dataclass(frozen=True)
class EvalSettings:
    """Everything an evaluation task needs besides the region and the data (small, so cheap to ship)."""

    metric: str
    folds: int
    cost_bps: float
    eval_timeout_s: float
    stress_select: bool = False
    stress_paths: int = 8
    seed: int = 0
    max_gross: float = 1.0  # --max-gross (the portfolio task's gross cap)
    task: str = "trade"  # a name in alphaloop.tasks.TASKS (a name, not the object: it crosses processes)
    # the run's secret probe nonce: drawn once when the run's settings are made, shipped to every worker
    probe_nonce: int = field(default_factory=lambda: pipeline.new_nonce())


@dataclass
class TaskResult:
    """One evaluated candidate, as the loop needs it to write its record."""

    evaluation: Evaluation
    stress: dict | None = None  # only with --stress-select and an accepted candidate


def evaluate_task(region: str, histories: EvalData, sandbox: Any, settings: EvalSettings) -> TaskResult:
    """The task both executors run: the pipeline, then (with --stress-select) the stress suite.

    Every instrument is scored; the stress suite runs on the first instrument."""
    ctx = EvalContext(histories=histories, sandbox=sandbox, task=get_task(settings.task), metric=settings.metric,
                      folds=settings.folds, cost_bps=settings.cost_bps, eval_timeout_s=settings.eval_timeout_s,
                      max_gross=settings.max_gross, probe_nonce=settings.probe_nonce)
    ev = evaluate(region, ctx)
    stress = None
    if ev.accepted and settings.stress_select and ctx.task.has_positions:  # the suite stresses positions
        from alphaloop.evaluate.stress import stress_or_failure

        stress = stress_or_failure(region, ctx.histories[0], sandbox, settings.cost_bps, settings.stress_paths,
                                   settings.seed)
    return TaskResult(ev, stress)


def fault_result(region: str, reason: str) -> TaskResult:
    """A candidate whose evaluation lost its worker twice: rejected at the sandbox stage, said as such."""
    import hashlib

    details = {"region_sha256": hashlib.sha256(region.encode("utf-8")).hexdigest(), "sandbox_fault": True}
    return TaskResult(Evaluation(accepted=False, stage="sandbox", reason=reason, scores=None, timings={},
                                 details=details))


@dataclass(frozen=True)
class Lost:
    """An evaluation whose process or actor died under it: why, and which one (to be replaced)."""

    reason: str
    what: Any


def retry_once_lost(region: str, run: Callable[[], TaskResult | Lost], replace: Callable[[Lost], None],
                    what: str, count_fault: Callable[[], None]) -> TaskResult:
    """``sandbox.pool.retry_once`` for an executor: a ``Lost`` is replaced and retried once; lost twice,
    the candidate is recorded as a sandbox fault naming the first loss."""
    from sandbox.pool import SANDBOX_FAULT, retry_once

    def give_up(first: TaskResult | Lost, _: TaskResult | Lost) -> TaskResult:
        count_fault()
        return fault_result(region, f"{SANDBOX_FAULT}: {what} died twice under this candidate "
                                    f"({getattr(first, 'reason', '')})")

    return retry_once(run, lambda r: r.reason if isinstance(r, Lost) else None, replace, give_up)


class _Counts:
    """What both executors count for the live panel: evaluations running, workers replaced, candidates lost twice."""

    name = ""

    def __init__(self, workers: int) -> None:
        self.workers = int(workers)
        self._lock = threading.Lock()
        self.busy = 0
        self.replaced = 0
        self.faults = 0

    def _count_fault(self) -> None:
        with self._lock:
            self.faults += 1

    def _counts(self) -> dict[str, Any]:
        with self._lock:
            return {"executor": self.name, "workers": self.workers, "busy": self.busy, "tasks_running": self.busy,
                    "replaced": self.replaced, "faults": self.faults}


_PROCESS: dict[str, Any] = {}  # in an evaluation process: its data, settings and one-worker sandbox pool


def _process_init(histories: EvalData, settings: EvalSettings, processes: int = 1) -> None:
    from alphaloop.evaluate.sandboxed import open_pool
    from sandbox.launch import frames_at_once

    pool = open_pool(1, tasks=(settings.task,), frames_at_once=frames_at_once(share=processes))
    _PROCESS.update(histories=histories, settings=settings, pool=pool)


def _process_describe() -> str:
    return _PROCESS["pool"].describe()


def _process_evaluate(region: str) -> TaskResult:
    return evaluate_task(region, _PROCESS["histories"], _PROCESS["pool"], _PROCESS["settings"])


class LocalExecutor(_Counts):
    """Evaluation on this machine with ``workers`` warm sandboxes.

    With one worker, in this process (the serial loop as it always ran). With more, each worker is
    an evaluation process holding its own one-worker ``SandboxPool`` and a copy of the data, given
    once when it starts: the parent's share of an evaluation (probe frames, scoring, guards) is
    Python that holds the GIL, so threads alone would leave the second core mostly idle.
    ``processes=False`` shares one ``SandboxPool`` of ``workers`` between threads instead.
    """

    name = "local"

    def __init__(self, histories: EvalData, settings: EvalSettings, workers: int = 1, pool: Any = None,
                 processes: bool | None = None) -> None:
        from alphaloop.evaluate.sandboxed import open_pool

        super().__init__(workers)
        self.histories, self.settings = histories, settings
        self.processes = self.workers > 1 and pool is None if processes is None else processes
        self.pool = None if self.processes else (
            pool if pool is not None else open_pool(self.workers, tasks=(settings.task,)))
        self._procs: Any = None
        if self.processes:
            self._start_processes()
            self._isolation = self._procs.submit(_process_describe).result()

    def _start_processes(self) -> None:
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor

        # spawn, not fork: the loop's threads (iterations in flight) must not be copied mid-step
        self._procs = ProcessPoolExecutor(max_workers=self.workers, mp_context=multiprocessing.get_context("spawn"),
                                          initializer=_process_init,
                                          initargs=(self.histories, self.settings, self.workers))
        # N calls at once start all N processes now (they start on demand), so none starts mid-run
        for started in [self._procs.submit(_process_describe) for _ in range(self.workers)]:
            started.result()

    def evaluate(self, region: str) -> TaskResult:
        """Blocking and thread-safe: one call per iteration in flight."""
        with self._lock:
            self.busy += 1
        try:
            if not self.processes:
                return evaluate_task(region, self.histories, self.pool, self.settings)
            return self._evaluate_in_process(region)
        finally:
            with self._lock:
                self.busy -= 1

    def _evaluate_in_process(self, region: str) -> TaskResult:
        """An evaluation process that died takes its pool with it: start a new pool, retry once, then a fault."""
        from concurrent.futures.process import BrokenProcessPool

        def run() -> TaskResult | Lost:
            procs = self._procs
            try:
                return procs.submit(_process_evaluate, region).result()
            except BrokenProcessPool as exc:
                return Lost(str(exc)[:200], procs)

        def replace(lost: Lost) -> None:
            with self._lock:
                if self._procs is lost.what:  # one replacement however many evaluations saw it break
                    lost.what.shutdown(wait=False, cancel_futures=True)
                    self._start_processes()
                    self.replaced += 1

        return retry_once_lost(region, run, replace, "the evaluation process", self._count_fault)

    def describe(self) -> str:
        if not self.processes:
            return self.pool.describe()
        return f"{self._isolation}; {self.workers} evaluation processes, one sandbox worker each"

    def stats(self) -> dict[str, Any]:
        if not self.processes:
            return {"executor": self.name, **self.pool.stats(), "tasks_running": self.busy}
        return self._counts()

    def close(self) -> None:
        if self.pool is not None:
            self.pool.close()
        if self._procs is not None:
            self._procs.shutdown(wait=True, cancel_futures=True)

    def __enter__(self) -> LocalExecutor:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class _EvalActor:
    """A Ray actor: one warm sandbox on its node, reused by every task the actor runs."""

    def __init__(self, histories: EvalData, settings: EvalSettings) -> None:
        from alphaloop.evaluate.sandboxed import open_sandbox

        self.histories, self.settings = histories, settings
        self.sandbox = open_sandbox(tasks=(settings.task,), frames_at_once=1)  # the actor holds one CPU

    def describe(self) -> str:
        return self.sandbox.describe()

    def evaluate(self, region: str) -> TaskResult:
        return evaluate_task(region, self.histories, self.sandbox, self.settings)


class RayExecutor(_Counts):
    """Evaluation on a Ray cluster: ``ray.init()`` starts a local one unless one is running or ``address`` is given."""

    name = "ray"

    def __init__(self, histories: EvalData, settings: EvalSettings, workers: int = 1,
                 address: str | None = None) -> None:
        try:
            import ray
        except ImportError as exc:
            raise RuntimeError("--executor ray needs Ray: pip install -e '.[ray]'") from exc
        super().__init__(workers)
        self.ray = ray
        self.settings = settings
        self.started_ray = not ray.is_initialized()
        if self.started_ray:
            ray.init(address=address, include_dashboard=False, log_to_driver=False)
        self.history_ref = ray.put(histories)  # once: every actor gets it by reference
        self._actor_class = ray.remote(num_cpus=1)(_EvalActor)
        self.actors = [self._new_actor() for _ in range(self.workers)]
        self._isolation = ray.get(self.actors[0].describe.remote())
        self._idle: queue.Queue[Any] = queue.Queue()
        for actor in self.actors:
            self._idle.put(actor)

    def _new_actor(self) -> Any:
        return self._actor_class.remote(self.history_ref, self.settings)

    def evaluate(self, region: str) -> TaskResult:
        """Blocking and thread-safe; an actor that died is replaced and the task retried once."""
        actor = self._idle.get()
        with self._lock:
            self.busy += 1
        held = [actor]

        def run() -> TaskResult | Lost:
            try:
                return self.ray.get(held[0].evaluate.remote(region))
            except self.ray.exceptions.RayActorError as exc:
                return Lost(str(exc).splitlines()[0][:200], held[0])

        def replace(lost: Lost) -> None:
            held[0] = self._replace(lost.what)

        try:
            return retry_once_lost(region, run, replace, "the Ray worker", self._count_fault)
        finally:
            with self._lock:
                self.busy -= 1
            self._idle.put(held[0])

    def _replace(self, dead: Any) -> Any:
        self.ray.kill(dead, no_restart=True)
        fresh = self._new_actor()
        with self._lock:
            self.replaced += 1
            self.actors[self.actors.index(dead)] = fresh
        return fresh

    def describe(self) -> str:
        nodes = len({n["NodeID"] for n in self.ray.nodes() if n.get("Alive")})
        return f"{self._isolation}; {self.workers} Ray actors on {nodes} node(s)"

    def stats(self) -> dict[str, Any]:
        return self._counts()

    def close(self) -> None:
        for actor in self.actors:
            self.ray.kill(actor, no_restart=True)
        if self.started_ray:
            self.ray.shutdown()

    def __enter__(self) -> RayExecutor:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def make_executor(kind: str, histories: EvalData, settings: EvalSettings, workers: int = 1,
                  ray_address: str | None = None) -> LocalExecutor | RayExecutor:
    """The executor ``--executor`` names (``local`` or ``ray``)."""
    if kind == "local":
        return LocalExecutor(histories, settings, workers)
    if kind == "ray":
        return RayExecutor(histories, settings, workers, ray_address)
    raise ValueError(f"unknown executor {kind!r}; choose one of {', '.join(EXECUTORS)}")
