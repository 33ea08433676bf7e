"""Does the selection metric predict test? Rank correlation over accepted candidates, one instrument
against the two-instrument sample universe (S&P 500 + NASDAQ samples), offline seeds x iterations.

    python bench/bench_rank.py [--seeds 1,2,3,4] [--iterations 40] [--metric sharpe]

Issue 10 ("Done when") asks for this figure: across 688 accepted candidates of 20 offline runs on
the S&P 500 sample alone, validation Sharpe and test Sharpe correlated at -0.03. For each seed this
runs the real loop (offline proposer, every candidate through the sandbox) twice, once on the S&P
500 sample alone and once on the universe of both samples cut at the S&P 500's split dates, then
scores every accepted candidate on the locked test split: the selection value (validation) against
the same metric on test, for the single instrument its own, for the universe the equal-weight
portfolio's. It is a measurement of the method, made once after the searches: nothing measured on
test feeds back into any search. Prints Spearman's rho pooled and per seed, with the pick's
validation-to-test loss, the mean test figure of the accepted candidates and of the baseline (iter 0).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats as sps

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from alphaloop.data.frozen import Universe, freeze, sample_frame, split, validate
from alphaloop.evaluate.scoring import History
from alphaloop.evaluate.universe import score_universe
from alphaloop.present.ui import QuietView
from alphaloop.propose import make_proposer
from alphaloop.run import loop as loop_module
from alphaloop.run.loop import Loop, LoopConfig
from alphaloop.run.records import IterationRecord
from alphaloop.run.workdir import Workdir


def sample_universe() -> tuple[dict[str, dict[str, pd.DataFrame]], str]:
    """Both bundled samples with train/val/test cut at the S&P 500 sample's dates (each its own calendar)."""
    spy, _ = sample_frame("SPY")
    spy, _ = validate(spy, label="S&P 500 sample")
    parts = {"S&P 500": split(spy)}
    nasdaq, _ = sample_frame("NASDAQ")
    nasdaq, _ = validate(nasdaq, label="NASDAQ sample")
    train_end, val_end = parts["S&P 500"]["train"].index[-1], parts["S&P 500"]["val"].index[-1]
    idx = nasdaq.index
    parts["NASDAQ"] = {"train": nasdaq[idx <= train_end], "val": nasdaq[(idx > train_end) & (idx <= val_end)],
                       "test": nasdaq[idx > val_end]}
    return parts, "S&P 500"


def histories(parts: dict[str, dict[str, pd.DataFrame]], names: tuple[str, ...], splits: tuple[str, ...]) -> list:
    return [History.from_splits({k: parts[n][k] for k in splits}) for n in names]


def run_search(workdir: Path, data_dir: Path, seed: int, iterations: int, metric: str,
               universe: dict[str, dict[str, pd.DataFrame]] | None) -> list[IterationRecord]:
    """The real loop, offline; for the universe its instruments are handed to it in place of the data's one."""
    original = loop_module.load_universe
    if universe is not None:
        loop_module.load_universe = lambda d: Universe(("S&P 500", "NASDAQ"), universe)
    try:
        cfg = LoopConfig(workdir=workdir, data_dir=data_dir, iterations=iterations, max_fails=0, seed=seed,
                         metric=metric, stress_paths=0)
        loop = Loop(cfg, make_proposer("offline", seed=seed), f"offline (seed {seed})", QuietView())
        loop._finish = lambda state, manifest: None  # the end-of-run summary is not measured here
        loop.run()
    finally:
        loop_module.load_universe = original
    return Workdir(workdir).records()


def test_figures(records: list[IterationRecord], workdir: Path, full: list[History], box: object,
                 metric: str) -> list[tuple]:
    """(iteration, selection value, test metric) of every accepted candidate, signals run on train+val+test."""
    out = []
    for r in records:
        if not r.accepted or r.selection is None:
            continue
        region = Workdir(workdir).region(r.iteration)
        run = box.run(region, [h.frame for h in full])
        if not run.ok:
            continue
        u = score_universe(full, [res.signals for res in run.results], metric=metric, folds=0,
                           splits=("train", "val", "test"))
        out.append((r.iteration, float(r.selection), float(u.portfolio.splits["test"][metric]),
                    float(u.portfolio.splits["test"].get(f"bh_{metric}", np.nan))))
    return out


def summary(label: str, per_seed: dict[int, list[tuple]]) -> None:
    rows = [row for rows in per_seed.values() for row in rows]
    if len(rows) < 3:
        print(f"{label}: too few accepted candidates ({len(rows)})")
        return
    sel, test = np.array([r[1] for r in rows]), np.array([r[2] for r in rows])
    rho = sps.spearmanr(sel, test).statistic
    seeds = [sps.spearmanr([r[1] for r in v], [r[2] for r in v]).statistic for v in per_seed.values() if len(v) >= 3]
    picks = [max(v, key=lambda r: r[1]) for v in per_seed.values() if v]
    base = [next((r for r in v if r[0] == 0), None) for v in per_seed.values()]
    print(f"{label}: {len(rows)} accepted candidates over {len(per_seed)} seeds")
    print(f"  Spearman rho(selection on validation, same metric on test) pooled {rho:+.3f}; per seed "
          + ", ".join(f"{s:+.2f}" for s in seeds) + f" (mean {np.nanmean(seeds):+.3f})")
    print(f"  pick (best on validation): validation {np.mean([p[1] for p in picks]):.3f} -> test "
          f"{np.mean([p[2] for p in picks]):.3f} (mean over seeds); all accepted on test {test.mean():.3f}; "
          f"baseline iter 0 on test {np.mean([b[2] for b in base if b]):.3f}; buy and hold on test "
          f"{np.nanmean([r[3] for r in rows]):.3f}")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seeds", default="1,2,3,4")
    p.add_argument("--iterations", type=int, default=40)
    p.add_argument("--metric", default="sharpe")
    args = p.parse_args(argv)
    seeds = [int(s) for s in args.seeds.split(",")]
    parts, primary = sample_universe()
    names = ("S&P 500", "NASDAQ")
    from alphaloop.evaluate.sandboxed import open_sandbox

    with tempfile.TemporaryDirectory() as tmp, open_sandbox(("trade",), timeout_s=120.0) as box:
        data_dir = Path(tmp) / "data"
        spy, _ = validate(sample_frame("SPY")[0], label="sample")
        freeze(split(spy), data_dir, "sample", "S&P 500 sample", [])
        results: dict[str, dict[int, list[tuple]]] = {"single": {}, "universe": {}}
        for seed in seeds:
            for mode in ("single", "universe"):
                universe = ({n: {k: parts[n][k] for k in ("train", "val")} for n in names} if mode == "universe"
                            else None)
                workdir = Path(tmp) / f"{mode}_{seed}"
                records = run_search(workdir, data_dir, seed, args.iterations, args.metric, universe)
                full = histories(parts, names if mode == "universe" else (primary,), ("train", "val", "test"))
                results[mode][seed] = test_figures(records, workdir, full, box, args.metric)
                print(f"seed {seed} {mode}: {len(results[mode][seed])} accepted", flush=True)
    print(f"\nmetric {args.metric} after costs; {len(seeds)} seeds x {args.iterations} iterations, offline proposer")
    summary("single instrument (S&P 500 sample)", results["single"])
    summary("universe (S&P 500 + NASDAQ samples, equal-weight portfolio)", results["universe"])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
