"""Does selection on validation predict test, for the trade task and the portfolio task, on a frozen universe?

    python prepare.py --source skfolio --out data_stocks            # the 20 stocks (pip install -e '.[stocks]')
    python bench/bench_rank_tasks.py --data data_stocks --tasks trade,portfolio --seeds 1-10 --iterations 40

For each task and seed this runs the real loop (offline proposer, every candidate through the sandbox)
on the data's searched instruments, then reads every accepted candidate once on the locked test split
(its portfolio: the trade task's equal-weight portfolio of its per-instrument rules, the portfolio
task's weights) and the pick on the held-out instruments as a panel of their own. It prints, per task:
Spearman's rho between the selection value (validation) and the same metric on test, pooled and per
seed; how often the pick beat the equal-weight buy and hold on test and on the held-out instruments.
A measurement of the method, made once after the searches: nothing measured on test feeds back (the
pick is the accepted candidate with the best selection value on validation; test and the held-out
instruments are read only afterwards). The after-the-fact readings run each candidate once in the
sandbox and score it; the look-ahead probes, already passed on train+validation during the search,
are not rerun there (they would double the cost). ``--eval-timeout`` is the search's per-candidate
budget and each reading's limit: 20 stocks x 8,000 dates need more than the default 60 s on a loaded box.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from scipy import stats as sps

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from alphaloop.data.frozen import load_holdout, load_test_universe
from alphaloop.evaluate.pipeline import EvalContext, Trial, run_sandbox, score_stage
from alphaloop.evaluate.sandboxed import open_sandbox
from alphaloop.evaluate.universe import instrument_histories, score_universe
from alphaloop.present.ui import QuietView
from alphaloop.run.loop import Loop, LoopConfig
from alphaloop.run.workdir import Workdir
from alphaloop.tasks import get_task

SPLITS = ("train", "val", "test")


def seeds_of(text: str) -> list[int]:
    if "-" in text:
        a, b = text.split("-")
        return list(range(int(a), int(b) + 1))
    return [int(s) for s in text.split(",")]


def search(task: str, data: Path, workdir: Path, seed: int, iterations: int, metric: str,
           eval_timeout: float) -> Workdir:
    plug = get_task(task)
    cfg = LoopConfig(workdir=workdir, data_dir=data, iterations=iterations, max_fails=0, seed=seed, metric=metric,
                     stress_paths=0, task=task, start_file=plug.start_file(), eval_timeout_s=eval_timeout)
    loop = Loop(cfg, plug.offline_proposer(seed), f"offline (seed {seed})", QuietView())
    loop._finish = lambda state, manifest: None  # the end-of-run summary is not measured here
    loop.run()
    return Workdir(workdir)


def reading(region: str, histories: tuple, task: str, metric: str, box: object, eval_timeout: float) -> dict | None:
    """The candidate's portfolio figures on test (None when it does not run there): one full run, scored."""
    t = Trial(region, EvalContext(histories=histories, sandbox=box, task=get_task(task), metric=metric,
                                  folds=0, eval_timeout_s=eval_timeout))
    if not run_sandbox(t).ok:
        return None
    t.warmups = [0] * len(histories)
    score_stage(t)
    if t.scores is not None and "test" not in t.scores.splits:  # the trade task scores what the loop sees
        t.scores = score_universe(histories, t.outputs(), metric=metric, folds=0, splits=SPLITS).portfolio
    return t.scores.splits["test"] if t.scores is not None and "test" in t.scores.splits else None


def study(task: str, data: Path, seeds: list[int], iterations: int, metric: str, box: object, tmp: Path,
          eval_timeout: float) -> None:
    started = time.monotonic()
    full = tuple(instrument_histories(load_test_universe(data), SPLITS))
    held = load_holdout(data)
    held_histories = tuple(instrument_histories(held, SPLITS)) if held.instruments else ()
    pooled, per_seed, beat_test, beat_held = [], [], 0, 0
    for seed in seeds:
        wd = search(task, data, tmp / f"{task}_{seed}", seed, iterations, metric, eval_timeout)
        rows = []
        for r in wd.records():
            if r.accepted and r.selection is not None:
                test = reading(wd.region(r.iteration), full, task, metric, box, eval_timeout)
                if test is not None:
                    rows.append((r.iteration, float(r.selection), float(test[metric]), float(test["bh_sharpe"]),
                                 float(test["sharpe"])))
        pooled += rows
        rho_seed = float("nan")
        if len(rows) >= 3:
            rho_seed = sps.spearmanr([x[1] for x in rows], [x[2] for x in rows]).statistic
            per_seed.append(rho_seed)
        line = f"{task} seed {seed}: {len(rows)} accepted, rho {rho_seed:+.3f}"
        if rows:
            pick = max(rows, key=lambda x: x[1])
            beat_test += pick[4] > pick[3]
            line += (f"; pick iteration {pick[0]}: validation {metric} {pick[1]:+.3f}, test Sharpe {pick[4]:+.3f} "
                     f"vs equal-weight buy and hold {pick[3]:+.3f}")
            if held_histories:
                h = reading(wd.region(pick[0]), held_histories, task, metric, box, eval_timeout)
                beat_held += bool(h is not None and h["sharpe"] > h["bh_sharpe"])
                line += (f", held-out test Sharpe {h['sharpe']:+.3f} vs {h['bh_sharpe']:+.3f}" if h is not None
                         else ", held-out: did not run")
        print(f"{line} ({time.monotonic() - started:.0f} s)", flush=True)
        print(f"  (iteration, validation {metric}, test {metric}): "
              + " ".join(f"({x[0]}, {x[1]:+.3f}, {x[2]:+.3f})" for x in rows), flush=True)
    if len(pooled) < 3:
        print(f"{task}: too few accepted candidates ({len(pooled)})")
        return
    rho = sps.spearmanr([x[1] for x in pooled], [x[2] for x in pooled]).statistic
    print(f"{task}: {len(pooled)} accepted over {len(seeds)} seeds x {iterations} iterations; Spearman rho(selection "
          f"on validation, {metric} on test) pooled {rho:+.3f}, per seed mean {np.nanmean(per_seed):+.3f}; the pick "
          f"beat the equal-weight buy and hold (Sharpe) on test in {beat_test} of {len(seeds)} seeds"
          + (f", on the {len(held_histories)} held-out instruments in {beat_held} of {len(seeds)}"
             if held_histories else "") + f"; wall time {time.monotonic() - started:.0f} s", flush=True)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", type=Path, required=True)
    p.add_argument("--tasks", default="trade,portfolio")
    p.add_argument("--seeds", default="1-10")
    p.add_argument("--iterations", type=int, default=40)
    p.add_argument("--metric", default="sharpe")
    p.add_argument("--eval-timeout", type=float, default=180.0,
                   help="seconds for all sandbox runs of one candidate in the search, and for each reading")
    args = p.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp, open_sandbox(timeout_s=args.eval_timeout) as box:
        for task in args.tasks.split(","):
            study(task, args.data, seeds_of(args.seeds), args.iterations, args.metric, box, Path(tmp),
                  args.eval_timeout)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
