"""The pool of warm sandbox workers: as isolated as one, reused, and a dead worker is replaced."""

from __future__ import annotations

import os
import signal
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from alphaloop.evaluate.sandboxed import open_pool, open_sandbox
from sandbox.pool import SANDBOX_FAULT, SandboxPool
from sandbox.runner import RunOutcome
from tests.test_sandbox_support import in_process, make_ohlcv, region

TREND = region('df["fast"] = df["Close"].rolling(5).mean()\ndf["slow"] = df["Close"].rolling(20).mean()',
               'if pd.isna(row["slow"]):\n    return 0\nreturn 1 if row["fast"] > row["slow"] else -1')
# pure Python work inside the child: long enough (seconds) that the worker can be killed under it
BUSY = region('total = 0.0\nfor i in range(40000000):\n    total = total + i\ndf["x"] = df["Close"] * 0.0 + total')


@pytest.fixture(scope="module")
def pool():
    try:
        p = open_pool(2, timeout_s=60.0, memory_mb=1024)
    except RuntimeError as exc:
        pytest.skip(f"sandbox unavailable: {exc}")
    with p:
        yield p


def test_each_worker_is_as_isolated_as_a_lone_sandbox_and_workers_are_reused(pool: SandboxPool) -> None:
    with open_sandbox(timeout_s=60.0, memory_mb=1024) as lone:
        assert all(box.layers == lone.layers for box in pool.workers)
        assert all(box.missing == lone.missing for box in pool.workers)
    pids = [box.worker_pid for box in pool.workers]
    assert len(set(pids)) == 2
    df = make_ohlcv(400, seed=1)
    with ThreadPoolExecutor(max_workers=4) as ex:
        outcomes = list(ex.map(lambda _: pool.run(TREND, [df]), range(6)))
    expected, _ = in_process(TREND, df)
    assert all(o.ok and np.array_equal(o.results[0].signals, expected) for o in outcomes)
    assert [box.worker_pid for box in pool.workers] == pids  # the same warm workers served every run
    assert pool.stats()["busy"] == 0 and pool.stats()["replaced"] == 0


def test_a_worker_killed_under_a_run_is_replaced_and_the_run_retried_once(pool: SandboxPool) -> None:
    df = make_ohlcv(300, seed=2)
    before = pool.stats()["replaced"]
    result: list[RunOutcome] = []
    runner = threading.Thread(target=lambda: result.append(pool.run(BUSY, [df])))
    runner.start()
    deadline = time.monotonic() + 60
    while pool.stats()["busy"] == 0 and time.monotonic() < deadline:
        time.sleep(0.01)
    time.sleep(0.5)  # the run has reached the child: killing now kills the worker under it
    idle_pids = {box.worker_pid for box in list(pool._idle.queue)}
    victim = next(box for box in pool.workers if box.worker_pid not in idle_pids)
    old_pid = victim.worker_pid
    os.killpg(old_pid, signal.SIGKILL)
    runner.join(timeout=120)
    assert result and result[0].ok, result
    assert pool.stats()["replaced"] == before + 1
    assert old_pid not in {box.worker_pid for box in pool.workers} and len(pool.workers) == 2


class _DyingBox:
    """A worker double whose worker dies under every run (what a broken node looks like)."""

    layers = ["double"]
    missing: dict[str, str] = {}
    timeout_s = 1.0
    made = 0

    def __init__(self) -> None:
        type(self).made += 1

    def run(self, region: str, frames: list, timeout_s: float | None = None) -> RunOutcome:
        return RunOutcome("crash", "sandbox worker died (worker closed its pipe)", None, "", 0.01, worker_fault=True)

    def describe(self) -> str:
        return "isolation: double"

    def close(self) -> None:
        pass


def test_a_worker_that_dies_twice_is_recorded_as_a_sandbox_fault() -> None:
    with SandboxPool(1, factory=_DyingBox) as pool:
        outcome = pool.run(TREND, [make_ohlcv(100)])
        assert outcome.status == "crash" and outcome.reason.startswith(SANDBOX_FAULT)
        assert "died twice" in outcome.reason
        assert pool.stats() == {"workers": 1, "busy": 0, "runs": 1, "replaced": 1, "faults": 1}
        assert _DyingBox.made == 2  # one replacement, one retry: never a loop


def test_a_pool_needs_a_worker() -> None:
    with pytest.raises(ValueError, match="at least one worker"):
        SandboxPool(0)


def test_a_stopped_worker_is_replaced_before_a_run_takes_it() -> None:
    with open_pool(1, timeout_s=60.0, memory_mb=1024) as one:
        one.workers[0].close()  # what the runner does to a worker that overran its deadline
        outcome = one.run(TREND, [make_ohlcv(200, seed=4)])
        assert outcome.ok and one.stats()["replaced"] == 1 and one.workers[0].alive


def test_the_pool_hands_the_named_driver_on_and_names_none_itself() -> None:
    """Each task names its own driver (``Task.run_sandbox``); the pool passes the name on as given and, given
    none, makes the runner's plain call (its default driver), so it never decides which task runs."""
    calls: list[dict] = []

    class Recording(_DyingBox):
        def run(self, region: str, frames: list, timeout_s: float | None = None, **named: str) -> RunOutcome:
            calls.append(named)
            return RunOutcome("ok", "", [None] * len(frames), "", 0.01)

    with SandboxPool(1, factory=Recording) as pool:
        for task in ("trade", "forecast", None):
            assert pool.run(TREND, [make_ohlcv(50)], task=task).ok
    assert calls == [{"task": "trade"}, {"task": "forecast"}, {}]
