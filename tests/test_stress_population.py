"""The end-of-run stress of the population, for the trade and portfolio tasks: each member is stressed once
(cached in stress.json across runs and resumes, a cached result of other settings redone), members that left
the population drop out of the cache, and one line per member says its worst scenario beside buy and hold."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest

from alphaloop.run.records import StressCache, StressResult

PATHS, COSTS, SEED = 2, 2.0, 7


def _suite(penalty: float, n_paths: int = PATHS) -> dict[str, Any]:
    worst = {"strategy": {"max_drawdown": {"p5": penalty}}, "buy_hold": {"max_drawdown": {"p5": -0.3}},
             "beat_buy_hold": 0.25}
    calm = {"strategy": {"max_drawdown": {"p5": -0.01}}, "buy_hold": {"max_drawdown": {"p5": -0.02}},
            "beat_buy_hold": 0.5}
    return {"status": "ok", "reason": "", "n_paths": n_paths, "cost_bps": COSTS, "seed": SEED,
            "scenarios": {"calm": calm, "crash": worst}, "penalty": penalty}


class FakeWorkdir:
    """The workdir calls the stress step makes, in memory."""

    def __init__(self, cache: StressCache, recorded: dict[int, StressResult | None]) -> None:
        self.cache, self.recorded, self.written = cache, recorded, None

    def read_stress(self) -> StressCache:
        return self.cache

    def write_stress(self, cache: StressCache) -> None:
        self.written = cache

    def record(self, n: int) -> SimpleNamespace:
        return SimpleNamespace(stress=self.recorded.get(n), scores={"max_gross": 1.5}, iteration=n)

    def region(self, n: int) -> str:
        return f"region {n}"


def _run(task: str, recorded: dict[int, StressResult | None]) -> SimpleNamespace:
    from alphaloop.tasks import get_task

    cache = StressCache({"1": StressResult.from_json(_suite(-0.11)),  # reused as is
                         "2": StressResult.from_json(_suite(-0.5, n_paths=PATHS + 1)),  # other settings: redone
                         "9": StressResult.from_json(_suite(-0.9))})  # left the population: dropped
    state = SimpleNamespace(population=[SimpleNamespace(iteration=n) for n in (1, 2, 3, 4)])
    return SimpleNamespace(wd=FakeWorkdir(cache, recorded), state=state, stress_paths=PATHS, cost_bps=COSTS,
                           seed=SEED, histories=("history",), task=get_task(task))


def test_the_trade_population_is_stressed_once_each(monkeypatch: pytest.MonkeyPatch,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    from alphaloop.tasks.trade import finish

    stressed: list[str] = []

    def fake(region: str, history: Any, sandbox: Any, cost_bps: float, n_paths: int, seed: int) -> dict:
        stressed.append(region)
        return {"status": "failed", "reason": "boom [red]"} if region == "region 4" else _suite(-0.2)

    monkeypatch.setattr(finish, "stress_or_failure", fake)
    run = _run("trade", {3: StressResult.from_json(_suite(-0.33))})  # the loop stressed 3 with these settings
    cache = finish.run_population_stress(run, sandbox=None)
    assert stressed == ["region 2", "region 4"]
    assert run.wd.written is cache and sorted(cache.members) == ["1", "2", "3", "4"]
    assert cache.members["3"].penalty == -0.33
    assert capsys.readouterr().out.splitlines() == [
        "stress (synthetic paths from the validation split), iter 1: worst scenario's 5th-percentile max drawdown "
        "-11.0%",
        "stress (synthetic paths from the validation split), iter 2: worst scenario's 5th-percentile max drawdown "
        "-20.0%",
        "stress (synthetic paths from the validation split), iter 3: worst scenario's 5th-percentile max drawdown "
        "-33.0%",
        "stress, iter 4: failed (boom [red])"]


def test_the_portfolio_population_is_stressed_once_each(monkeypatch: pytest.MonkeyPatch,
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    from alphaloop.tasks.portfolio import stress

    stressed: list[tuple[str, float]] = []

    def fake(region: str, histories: Any, sandbox: Any, cost_bps: float, n_paths: int, seed: int,
             max_gross: float, task: Any) -> dict:
        stressed.append((region, max_gross))
        return {"status": "failed", "reason": "boom"} if region == "region 4" else _suite(-0.2)

    monkeypatch.setattr(stress, "run_portfolio_stress", fake)
    cache = stress.population_stress(_run("portfolio", {}), sandbox=None)
    assert stressed == [("region 2", 1.5), ("region 3", 1.5), ("region 4", 1.5)]
    assert sorted(cache.members) == ["1", "2", "3", "4"]
    head = "stress (synthetic panels from the validation split), iter"
    assert capsys.readouterr().out.splitlines() == [
        f"{head} 1: worst scenario crash: 5th-percentile max drawdown -11.0% (equal-weight buy and hold -30.0%); "
        "beat it on 25% of paths",
        f"{head} 2: worst scenario crash: 5th-percentile max drawdown -20.0% (equal-weight buy and hold -30.0%); "
        "beat it on 25% of paths",
        f"{head} 3: worst scenario crash: 5th-percentile max drawdown -20.0% (equal-weight buy and hold -30.0%); "
        "beat it on 25% of paths",
        "stress, iter 4: failed (boom)"]
