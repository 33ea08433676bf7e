"""End-of-run statistics over thousands of trials: time, and what the caps cost in accuracy.

    python bench/bench_stats_scale.py [--days 1005] [--trials 800 3200 10000] [--spa-check 4000]

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
import sys
import time
from pathlib import Path

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


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--days", type=int, default=1005)
    p.add_argument("--trials", type=int, nargs="+", default=[800, 3200, 10000])
    p.add_argument("--spa-check", type=int, default=4000)
    a = p.parse_args()
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
