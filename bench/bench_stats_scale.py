"""End-of-run statistics over thousands of trials: time, memory, and what the caps cost in accuracy.

    python bench/bench_stats_scale.py [--days 1005] [--trials 800 3200 10000] [--spa-check 4000]
    python bench/bench_stats_scale.py --end-of-run 1000 10000 100000
    python bench/bench_stats_scale.py --end-of-run 1000 10000 --task portfolio    # or --task forecast

``--end-of-run``: for each count, a synthetic run folder of that many accepted trials (what a night
leaves for the statistics: index.jsonl, one validation-returns sidecar each, the best's record; the
series as below, on the S&P 500 sample's validation days), then the end-of-run statistics step of
``--task`` (trade, portfolio or forecast: the function the loop calls; a forecaster's series are daily
losses around a climatology's, with its two benchmarks in each sidecar) in a fresh process: its
wall time and peak memory (VmHWM, the process's import of numpy/pandas/arch included). The folders
are synthetic (no loop ran) so that 100,000 trials take minutes to build, not a night.

Synthetic trials shaped like a loop's: variants of a few dozen ideas (each idea's daily returns plus
small per-variant noise), on the validation split's length. For each trial count it times
``universe_statistics`` (effective trials, both DSRs, SPA with its 1,000 draws) as the run's end
calls it. Accuracy: the effective count with its 2,000-trial cap against the exact one (read from the
days x days Gram matrix, no cap) at the largest count; SPA's consistent p-value when a cap keeps the
best half of ``--spa-check`` candidates against all of them (what the cap costs once candidates
exceed it). The old estimator (eigenvalues of the trials x trials matrix) is timed beside the exact
one at the smallest count.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import SimpleNamespace

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from alphaloop.evaluate.stats import effective_trials, spa_test, universe_statistics  # noqa: E402


def trials_like_a_loop(days: int, trials: int, ideas: int = 40, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    market = rng.normal(0.0004, 0.011, days)
    base = 0.6 * market[:, None] + rng.normal(0.0, 0.006, (days, ideas))
    r = base[:, rng.integers(0, ideas, trials)] + rng.normal(0.0, 0.002, (days, trials))
    return r, market


def synthetic_run(root: Path, trials: int, days: int, task: str = "trade") -> int:
    """A run folder as a night of ``trials`` accepted candidates of ``task`` leaves it for the statistics (index
    lines, one sidecar each as the loop writes it, the best's record); returns the best's iteration."""
    from alphaloop.run.index import index_line
    from alphaloop.run.records import IterationRecord
    from alphaloop.run.workdir import Workdir

    wd = Workdir(root)
    wd.prepare()
    r, _ = trials_like_a_loop(days, trials)
    if task == "forecast":  # per-day losses (mean RPS) around a climatology's: lower is better
        clim = 0.25 + np.abs(r[:, 0]) * 5
        series = {"val_rps_climatology": clim, "val_rps_rolling_climatology": clim * 1.01}
        r = clim[:, None] - (r - r.mean(axis=0)) * 0.5 - 0.0005
        figure, metric = 1.0 - r.mean(axis=0) / clim.mean(), "rps_skill_mean"
    else:
        series = {}
        figure, metric = r.mean(axis=0) / r.std(axis=0, ddof=1) * np.sqrt(252), "sharpe"
    key = "val_rps" if task == "forecast" else "val"
    best = int(np.argmax(figure))
    lines = []
    for n in range(trials):
        val = {metric: float(figure[n]), **({"net_exposure": 0.5} if task == "portfolio" else {})}
        kept = {key: r[:, n], **series}
        rec = IterationRecord(iteration=n, status="accepted", stage="ok", in_population=n == best, metric=metric,
                              task=task, scores={"metric": metric, "splits": {"val": val}},
                              returns={k: v.tolist() for k, v in kept.items()} if n == best else None)
        lines.append(index_line(rec))
        if n == best:
            wd.write_record(rec)
        else:
            np.savez(wd.returns(n), **kept)
    wd.index.write_text("".join(lines))
    return best


def measure(root: Path, data: Path, trials: int, best: int, task: str = "trade") -> dict:
    """The end-of-run statistics step of ``task`` on ``root``, in this process: seconds and peak memory."""
    from alphaloop.data.frozen import load_universe
    from alphaloop.evaluate.universe import instrument_histories
    from alphaloop.run.workdir import Workdir

    histories = instrument_histories(load_universe(data, ("train", "val")), ("train", "val"))
    run = SimpleNamespace(wd=Workdir(root), state=SimpleNamespace(best=SimpleNamespace(iteration=best), trials=trials),
                          histories=histories, seed=0, instrument_names=("SPY",))
    t0 = time.perf_counter()
    if task == "forecast":
        from alphaloop.tasks.forecast.finish import write_forecast_statistics

        stats = write_forecast_statistics(run.wd, trials, best, 0)
        detail = {"spa_p": stats["spa_pvalues"]["consistent"]} if stats else {}
    else:
        from alphaloop.tasks.portfolio.stats import write_statistics as portfolio_statistics
        from alphaloop.tasks.trade.finish import write_statistics

        stats = (portfolio_statistics if task == "portfolio" else write_statistics)(run)
        detail = {"effective_trials": round(stats.to_json()["effective_trials"], 1)} if stats else {}
    return {"trials": trials, "seconds": round(time.perf_counter() - t0, 2),
            "peak_rss_mb": round(_vm_hwm_kb() / 1024, 1), **detail}


def _vm_hwm_kb() -> int:
    """This process's peak resident memory (VmHWM). Not ru_maxrss: after fork and exec Linux carries the
    parent's peak into it, and the parent held the synthetic trials it wrote."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def end_of_run(counts: list[int], task: str = "trade") -> None:
    from alphaloop.data.frozen import freeze, sample_frame, split, validate

    tmp = Path(tempfile.mkdtemp(prefix="bench_stats_scale_"))
    frame, name = sample_frame("SPY")
    frame, repairs = validate(frame, label="sample")
    freeze(split(frame), tmp / "data", "sample", name, repairs)
    days = task_days(tmp / "data", task)
    for t in counts:
        t0 = time.perf_counter()
        best = synthetic_run(tmp / f"run{t}", t, days, task)
        built = time.perf_counter() - t0
        out = subprocess.run([sys.executable, __file__, "--measure", str(tmp / f"run{t}"), str(tmp / "data"), str(t),
                              str(best), task], capture_output=True, text=True, check=True)
        figures = json.loads(out.stdout.strip().splitlines()[-1])
        what = (f"SPA p {figures['spa_p']:.3f}" if task == "forecast" else
                f"effective trials {figures['effective_trials']}")
        print(f"{task} end-of-run statistics, {t:,} accepted trials x {days} validation days (synthetic folder, "
              f"built in {built:.0f} s): {figures['seconds']:.1f} s, peak memory {figures['peak_rss_mb']:.0f} MB "
              f"({what})", flush=True)


def task_days(data: Path, task: str) -> int:
    """The length of a trial's validation series for ``task`` on the frozen sample (the portfolio's is read on
    the union calendar, from the second day of validation)."""
    if task != "portfolio":
        return len(instrument_days(data))
    from alphaloop.data.frozen import load_universe
    from alphaloop.evaluate.universe import instrument_histories
    from alphaloop.tasks.portfolio.scoring import Panel

    a, b = Panel.of(instrument_histories(load_universe(data, ("train", "val")), ("train", "val"))).windows["val"]
    return b - a - 1


def instrument_days(data: Path) -> np.ndarray:
    """The validation split's daily returns of the frozen sample (their count is the trials' length)."""
    from alphaloop.data.frozen import load_universe
    from alphaloop.evaluate.universe import bh_returns, instrument_histories

    return bh_returns(instrument_histories(load_universe(data, ("train", "val")), ("train", "val")), "val")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--days", type=int, default=1005)
    p.add_argument("--trials", type=int, nargs="+", default=[800, 3200, 10000])
    p.add_argument("--spa-check", type=int, default=4000)
    p.add_argument("--end-of-run", type=int, nargs="+", metavar="N", help="time the end-of-run statistics on "
                   "synthetic run folders of N accepted trials each (e.g. 1000 10000 100000)")
    p.add_argument("--task", choices=("trade", "portfolio", "forecast"), default="trade",
                   help="whose end-of-run statistics step --end-of-run times (default trade)")
    p.add_argument("--measure", nargs=5, help=argparse.SUPPRESS)
    a = p.parse_args()
    if a.measure:
        root, data, trials, best, task = a.measure
        print(json.dumps(measure(Path(root), Path(data), int(trials), int(best), task)))
        return
    if a.end_of_run:
        end_of_run(a.end_of_run, a.task)
        return
    for t in a.trials:
        r, bh = trials_like_a_loop(a.days, t)
        t0 = time.perf_counter()
        s = universe_statistics(r, int(np.argmax(r.mean(axis=0))), bh, t)
        print(f"universe_statistics, {t} trials x {a.days} days: {time.perf_counter() - t0:.2f} s "
              f"(effective {s.effective_trials.effective:.1f}, SPA p {s.spa.consistent:.3f}, "
              f"{s.spa.tested} series tested)")
    small, big = min(a.trials), max(a.trials)
    r, _ = trials_like_a_loop(a.days, small)
    t0 = time.perf_counter()
    c = np.corrcoef(r, rowvar=False)
    lam = np.clip(np.linalg.eigvalsh(c), 0.0, None)
    old = float(np.sum(np.sqrt(lam)) ** 2 / np.sum(lam))
    t_old = time.perf_counter() - t0
    t0 = time.perf_counter()
    new = effective_trials(r).effective_sampled
    print(f"effective trials at {small}: trials x trials eigenvalues {old:.2f} in {t_old:.2f} s, "
          f"smaller Gram {new:.2f} in {time.perf_counter() - t0:.2f} s")
    r, _ = trials_like_a_loop(a.days, big)
    exact, capped = effective_trials(r, cap=big).effective, effective_trials(r).effective
    print(f"effective trials at {big}: exact {exact:.1f}, 2,000-trial cap {capped:.1f} "
          f"({capped / exact - 1:+.1%})")
    r, bh = trials_like_a_loop(a.days, a.spa_check, seed=1)
    cols = [r[:, i] for i in range(r.shape[1])]
    t0 = time.perf_counter()
    capped_p = spa_test(bh, cols, seed=0, cap=a.spa_check // 2)["consistent"]
    t_cap = time.perf_counter() - t0
    t0 = time.perf_counter()
    full_p = spa_test(bh, cols, seed=0, cap=a.spa_check)["consistent"]
    t_full = time.perf_counter() - t0
    print(f"SPA at {a.spa_check} candidates: consistent p {capped_p:.3f} capped at half of them in {t_cap:.1f} s, "
          f"{full_p:.3f} with every series in {t_full:.1f} s")


if __name__ == "__main__":
    main()
