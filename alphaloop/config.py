"""Every default of a run in one place: the dataclasses the loop and the LLM client read, and argparse reads.

``harness.py`` builds its flags' defaults (and the numbers in their help) from these fields, so a
default changed here changes the command line, the loop and the README's ``--help`` in one step.
A default owned by the module that uses it (metric, folds and costs in ``scoring``/``backtest``, the
evaluation budget in ``pipeline``, stress paths in ``scoring``, the data folder in ``data``) is
imported here, not repeated.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from alphaloop.candidate import TRADE_PY
from alphaloop.data.frozen import DATA_DIR
from alphaloop.evaluate.backtest import DEFAULT_COST_BPS
from alphaloop.evaluate.pipeline import DEFAULT_EVAL_TIMEOUT_S
from alphaloop.evaluate.scoring import DEFAULT_FOLDS, DEFAULT_METRIC, DEFAULT_STRESS_PATHS

WORKDIR = Path("train")  # run folder; rerunning with the same folder resumes (--workdir)


@dataclass
class LoopConfig:
    """The run's settings as harness.py parsed them; metric, costs and folds are fixed per workdir."""

    workdir: Path = WORKDIR  # where the run's records live (--workdir)
    data_dir: Path = DATA_DIR  # frozen train/validation/test splits (--data)
    iterations: int | None = 50  # last iteration number to run; iteration 0 is the starting region; None: no cap
    max_fails: int = 5  # consecutive iterations outside the population before stopping; 0 = never (--max-fails)
    stall_after: int = 5  # consecutive iterations outside the population after which the proposer is told the
    # search stalled (the offline search restarts from other families, a model is asked for a broader idea)
    population: int = 3  # top-K kept, ranked by the selection metric on validation (--population)
    metric: str = DEFAULT_METRIC  # selection metric on validation after costs (--metric)
    folds: int = DEFAULT_FOLDS  # walk-forward folds: sub-periods of train, not re-fitted (--folds)
    cost_bps: float = DEFAULT_COST_BPS  # cost per position change, bp of notional (--cost-bps)
    max_gross: float = 1.0  # the portfolio task's cap on the sum of absolute weights (--max-gross)
    seed: int = 0  # parent choice and the offline proposer (--seed)
    stress_select: bool = False  # the selection metric also penalises the 5th-percentile stress drawdown
    stress_paths: int = DEFAULT_STRESS_PATHS  # synthetic paths per stress scenario; 0 skips the suite (--stress-paths)
    cross_ticker: str | None = None  # second market of the generalisation table; None: the other bundled sample
    start_file: Path = TRADE_PY  # trade.py-style file whose region is iteration 0 (--start-from)
    hours: float | None = None  # this command's wall-clock budget; stops at the next iteration boundary
    max_tokens: int | None = None  # this command's LLM token budget (prompt + completion)
    eval_timeout_s: float = DEFAULT_EVAL_TIMEOUT_S  # all sandbox runs of one candidate, wall clock (--eval-timeout)
    task: str = "trade"  # "forecast": forecasters (generate_features + forecast), metric rps_skill_mean (--task)
    workers: int = 1  # iterations in flight; alphaloop.run.flight states the rule that keeps records reproducible
    executor: str = "local"  # where candidates are evaluated: "local" (sandbox workers here) or "ray" (--executor)
    ray_address: str | None = None  # with --executor ray: the cluster to join; None starts a local one


def run_limits(iterations: int | None, max_fails: int | None, hours: float | None) -> tuple[int | None, int]:
    """The iteration cap and the failure stop of a run, from the flags given (None: not given).

    With ``--hours`` the night lasts until the budget: no iteration cap and no stop on failures unless
    asked for, since a stalled search widens instead of ending. Without it, the defaults above."""
    run = LoopConfig()
    if hours is not None:
        return iterations, 0 if max_fails is None else max_fails
    return (run.iterations if iterations is None else iterations), (run.max_fails if max_fails is None else max_fails)
