"""The executor seam: the local pool and Ray give the same evaluations; a dead Ray worker is replaced."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from alphaloop.candidate import TRADE_PY, extract_region
from alphaloop.data.frozen import load_splits
from alphaloop.evaluate.executor import EvalSettings, LocalExecutor, RayExecutor, TaskResult, make_executor
from alphaloop.evaluate.scoring import History
from alphaloop.present.ui import PlainView
from alphaloop.propose.offline import OfflineProposer
from alphaloop.run.loop import Loop, LoopConfig
from tests.test_loop_workers import stable
from tests.test_sandbox_support import region

SETTINGS = EvalSettings(metric="sharpe", folds=4, cost_bps=2.0, eval_timeout_s=60.0)
LEAK = region('df["future"] = df["Close"].shift(-1)', 'return 1 if row["future"] > row["Close"] else -1')
NO_TRADES = region('df["x"] = df["Close"]', "return 0")


@pytest.fixture(scope="module")
def history(frozen_data: Path) -> History:
    return History.from_splits(load_splits(frozen_data))


@pytest.fixture(scope="module")
def regions() -> list[str]:
    return [extract_region(TRADE_PY.read_text(encoding="utf-8")), LEAK, NO_TRADES]


def verdict(result: TaskResult) -> tuple:
    """What a record takes from an evaluation, timings aside."""
    ev = result.evaluation
    scores = ev.scores.to_json() if ev.scores is not None else None
    signals = None if not ev.outputs else np.asarray(ev.outputs[0]).tobytes()
    return ev.accepted, ev.stage, ev.reason, scores, signals, result.stress


@pytest.fixture(scope="module")
def local_verdicts(history: History, regions: list[str]) -> list[tuple]:
    try:
        executor = LocalExecutor((history,), SETTINGS, workers=2)
    except RuntimeError as exc:
        pytest.skip(f"sandbox unavailable: {exc}")
    with executor:
        return [verdict(executor.evaluate(r)) for r in regions]


def test_local_pool_judges_the_baseline_a_leak_and_a_rule_that_never_trades(local_verdicts: list[tuple]) -> None:
    assert local_verdicts[0][0] is True and local_verdicts[0][1] == "ok"
    assert local_verdicts[1][:2] == (False, "lookahead")
    assert local_verdicts[2][:2] == (False, "guards")


def test_unknown_executor_is_refused(history: History) -> None:
    with pytest.raises(ValueError, match="unknown executor"):
        make_executor("dask", history, SETTINGS)


@pytest.fixture(scope="module")
def ray_local():
    ray = pytest.importorskip("ray")
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield ray
    ray.shutdown()


def test_ray_gives_the_local_pools_evaluations_and_replaces_a_dead_worker(
        ray_local, history: History, regions: list[str], local_verdicts: list[tuple]) -> None:
    with RayExecutor((history,), SETTINGS, workers=2) as executor:
        assert not executor.started_ray  # it joined the running cluster and leaves it running
        assert "Ray actors" in executor.describe() and "isolation:" in executor.describe()
        assert [verdict(executor.evaluate(r)) for r in regions] == local_verdicts
        victim = executor.actors[0]
        ray_local.kill(victim, no_restart=True)
        results = [verdict(executor.evaluate(regions[0])) for _ in range(2)]  # one of them meets the dead actor
        assert results == [local_verdicts[0]] * 2
        assert executor.stats()["replaced"] == 1 and victim not in executor.actors


class QuietView(PlainView):
    def __init__(self) -> None:
        super().__init__(0)

    def start(self, loop, state, isolation: str) -> None:
        self.isolation = isolation

    def note(self, text: str) -> None:
        pass

    def iteration_done(self, record: dict, state, learnings) -> None:
        pass


def loop_records(frozen_data: Path, workdir: Path, executor: str) -> list[dict]:
    cfg = LoopConfig(workdir=workdir, data_dir=frozen_data, iterations=5, max_fails=0, seed=7, stress_paths=0,
                     workers=2, executor=executor)
    loop = Loop(cfg, OfflineProposer(7), "offline (seed 7)", QuietView())
    loop._finish = lambda state, manifest: None  # the end-of-run summary runs on the driver either way
    assert loop.run() == 0
    return [stable(json.loads((workdir / f"iter_{n}_results.json").read_text())) for n in range(6)]


def test_ray_executor_gives_the_local_pools_records(ray_local, frozen_data: Path, tmp_path: Path) -> None:
    local = loop_records(frozen_data, tmp_path / "local", "local")
    assert loop_records(frozen_data, tmp_path / "ray", "ray") == local
    assert [r["proposed_from"] for r in local] == [None, 0, 0, 1, 2, 3]


def test_a_dead_evaluation_process_is_replaced_and_the_candidate_retried(history: History, regions: list[str],
                                                                         local_verdicts: list[tuple]) -> None:
    import os
    import signal

    with LocalExecutor((history,), SETTINGS, workers=2) as executor:
        assert executor.processes and "2 evaluation processes" in executor.describe()
        victim = next(iter(executor._procs._processes))
        os.kill(victim, signal.SIGKILL)
        assert verdict(executor.evaluate(regions[0])) == local_verdicts[0]
        assert executor.stats()["replaced"] == 1 and victim not in executor._procs._processes
