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
import time
from dataclasses import dataclass
from typing import Any

from alphaloop.pipeline import EvalContext, Evaluation, evaluate
from alphaloop.scoring import History

EXECUTORS = ("local", "ray")


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


@dataclass
class TaskResult:
    """One evaluated candidate, as the loop needs it to write its record."""

    evaluation: Evaluation
    stress: dict | None = None  # only with --stress-select and an accepted candidate


def evaluate_task(region: str, history: History, sandbox: Any, settings: EvalSettings) -> TaskResult:
    """The task both executors run: the pipeline, then (with --stress-select) the stress suite."""
    ctx = EvalContext(history=history, sandbox=sandbox, metric=settings.metric, folds=settings.folds,
                      cost_bps=settings.cost_bps, eval_timeout_s=settings.eval_timeout_s)
    ev = evaluate(region, ctx)
    stress = None
    if ev.accepted and settings.stress_select:
        from alphaloop.stress import run_stress

        try:
            stress = run_stress(region, history, sandbox, settings.cost_bps, n_paths=settings.stress_paths,
                                seed=settings.seed, timeout_s=120.0)
        except Exception as exc:  # the stress suite must never lose an iteration
            stress = {"status": "failed", "reason": f"{type(exc).__name__}: {exc}"}
    return TaskResult(ev, stress)


def fault_result(region: str, reason: str) -> TaskResult:
    """A candidate whose evaluation lost its worker twice: rejected at the sandbox stage, said as such."""
    import hashlib

    details = {"region_sha256": hashlib.sha256(region.encode("utf-8")).hexdigest(), "sandbox_fault": True}
    return TaskResult(Evaluation(accepted=False, stage="sandbox", reason=reason, scores=None, timings={},
                                 details=details))


class LocalExecutor:
    """Evaluation on this machine, in a pool of ``workers`` warm sandboxes."""

    name = "local"

    def __init__(self, history: History, settings: EvalSettings, workers: int = 1, pool: Any = None) -> None:
        from sandbox.pool import SandboxPool

        self.history, self.settings, self.workers = history, settings, int(workers)
        self.pool = pool if pool is not None else SandboxPool(self.workers)
        self._lock = threading.Lock()
        self.busy = 0

    def evaluate(self, region: str) -> TaskResult:
        """Blocking and thread-safe: one call per iteration in flight."""
        with self._lock:
            self.busy += 1
        try:
            return evaluate_task(region, self.history, self.pool, self.settings)
        finally:
            with self._lock:
                self.busy -= 1

    def describe(self) -> str:
        return self.pool.describe()

    def stats(self) -> dict[str, Any]:
        return {"executor": self.name, **self.pool.stats(), "tasks_running": self.busy}

    def close(self) -> None:
        self.pool.close()

    def __enter__(self) -> LocalExecutor:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class _EvalActor:
    """A Ray actor: one warm sandbox on its node, reused by every task the actor runs."""

    def __init__(self, history: History, settings: EvalSettings) -> None:
        from sandbox.runner import Sandbox

        self.history, self.settings = history, settings
        self.sandbox = Sandbox()

    def describe(self) -> str:
        return self.sandbox.describe()

    def evaluate(self, region: str) -> TaskResult:
        return evaluate_task(region, self.history, self.sandbox, self.settings)


class RayExecutor:
    """Evaluation on a Ray cluster: ``ray.init()`` starts a local one unless one is running or ``address`` is given."""

    name = "ray"

    def __init__(self, history: History, settings: EvalSettings, workers: int = 1, address: str | None = None) -> None:
        try:
            import ray
        except ImportError as exc:
            raise RuntimeError("--executor ray needs Ray: pip install -e '.[ray]'") from exc
        self.ray = ray
        self.settings, self.workers = settings, int(workers)
        self.started_ray = not ray.is_initialized()
        if self.started_ray:
            ray.init(address=address, include_dashboard=False, log_to_driver=False)
        self.history_ref = ray.put(history)  # once: every actor gets it by reference
        self._actor_class = ray.remote(num_cpus=1)(_EvalActor)
        self.actors = [self._new_actor() for _ in range(self.workers)]
        self._isolation = ray.get(self.actors[0].describe.remote())
        self._idle: queue.Queue[Any] = queue.Queue()
        for actor in self.actors:
            self._idle.put(actor)
        self._lock = threading.Lock()
        self.busy = 0
        self.replaced = 0
        self.faults = 0
        self.task_seconds: list[float] = []

    def _new_actor(self) -> Any:
        return self._actor_class.remote(self.history_ref, self.settings)

    def evaluate(self, region: str) -> TaskResult:
        """Blocking and thread-safe; an actor that died is replaced and the task retried once."""
        actor = self._idle.get()
        with self._lock:
            self.busy += 1
        started = time.perf_counter()
        try:
            first = ""
            for attempt in range(2):
                try:
                    result = self.ray.get(actor.evaluate.remote(region))
                    with self._lock:
                        self.task_seconds.append(time.perf_counter() - started)
                    return result
                except self.ray.exceptions.RayActorError as exc:
                    first = first or str(exc).splitlines()[0][:200]
                    actor = self._replace(actor)
                    if attempt:
                        with self._lock:
                            self.faults += 1
                        from sandbox.pool import SANDBOX_FAULT

                        return fault_result(region, f"{SANDBOX_FAULT}: the Ray worker died twice under this candidate "
                                                    f"({first})")
            raise AssertionError("unreachable")
        finally:
            with self._lock:
                self.busy -= 1
            self._idle.put(actor)

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
        with self._lock:
            return {"executor": self.name, "workers": self.workers, "busy": self.busy, "tasks_running": self.busy,
                    "replaced": self.replaced, "faults": self.faults}

    def close(self) -> None:
        for actor in self.actors:
            self.ray.kill(actor, no_restart=True)
        if self.started_ray:
            self.ray.shutdown()

    def __enter__(self) -> RayExecutor:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def make_executor(kind: str, history: History, settings: EvalSettings, workers: int = 1,
                  ray_address: str | None = None) -> LocalExecutor | RayExecutor:
    """The executor ``--executor`` names (``local`` or ``ray``)."""
    if kind == "local":
        return LocalExecutor(history, settings, workers)
    if kind == "ray":
        return RayExecutor(history, settings, workers, ray_address)
    raise ValueError(f"unknown executor {kind!r}; choose one of {', '.join(EXECUTORS)}")
