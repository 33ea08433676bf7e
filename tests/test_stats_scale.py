"""End-of-run statistics over thousands of trials stay exact where they can and bounded where they cannot."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np

from alphaloop.evaluate.columns import spa_models, spa_test
from alphaloop.evaluate.stats import effective_trials

ROOT = Path(__file__).resolve().parent.parent


def _galwey_of_the_full_matrix(r: np.ndarray) -> float:
    """The estimator as written: eigenvalues of the whole trials x trials correlation matrix."""
    c = np.corrcoef(r, rowvar=False)
    lam = np.clip(np.linalg.eigvalsh(c), 0.0, None)
    return float(np.sum(np.sqrt(lam)) ** 2 / np.sum(lam))


def test_more_trials_than_days_gives_the_same_effective_count() -> None:
    """Read from the days x days Gram matrix, the count is the trials x trials one's."""
    rng = np.random.default_rng(3)
    ideas = rng.normal(0, 0.01, (60, 8))
    r = ideas[:, rng.integers(0, 8, 150)] + rng.normal(0, 0.003, (60, 150))
    got = effective_trials(r).effective_sampled
    assert abs(got - _galwey_of_the_full_matrix(r)) < 1e-6 * got


def test_beyond_the_cap_a_sample_is_read_and_extrapolated_to_every_trial() -> None:
    rng = np.random.default_rng(4)
    r = rng.normal(0, 0.01, (1000, 300))
    capped, full = effective_trials(r, cap=100), effective_trials(r)
    assert capped.sampled == 300 and capped.raw == 300
    assert 0.8 * full.effective < capped.effective < 1.2 * full.effective  # independent trials: close
    assert effective_trials(r, cap=100) == capped  # the sample is seeded
    ideas = rng.normal(0, 0.01, (1000, 10))
    variants = ideas[:, rng.integers(0, 10, 300)] + rng.normal(0, 0.001, (1000, 300))
    capped, full = effective_trials(variants, cap=100), effective_trials(variants)
    assert 0.8 * full.effective < capped.effective < 1.2 * full.effective  # variants of 10 ideas: not x3


def test_spa_bootstraps_each_distinct_series_once_and_at_most_the_cap_best() -> None:
    rng = np.random.default_rng(5)
    r = rng.normal(0, 0.01, (200, 6))
    r[:, 0] += 0.002  # the best by mean
    models = spa_models(np.column_stack([r, r[:, :3]]), cap=4)
    assert models.shape == (200, 4) and any(np.array_equal(models[:, i], r[:, 0]) for i in range(4))
    bh = rng.normal(0, 0.01, 200)
    cols = [r[:, i] for i in range(6)]
    assert spa_test(bh, cols, seed=1) == spa_test(bh, cols + cols, seed=1)  # copies change nothing


def test_a_run_starts_with_one_blas_thread_unless_told_otherwise() -> None:
    code = "import harness, numpy, os; print(os.environ['OPENBLAS_NUM_THREADS'], os.environ['OMP_NUM_THREADS'])"
    env = {k: v for k, v in os.environ.items() if not k.endswith("_NUM_THREADS")}
    env["PYTHONPATH"] = str(ROOT)
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["1", "1"]
    env["OPENBLAS_NUM_THREADS"] = "2"
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["2", "1"]


def test_streamed_spa_series_are_the_ones_the_matrix_form_keeps() -> None:
    """SpaColumns (any task's end of run, one series at a time) keeps what spa_models keeps of the whole
    matrix: each distinct series once, the cap best by mean, in the order they came; a rank replaces the mean
    where lower is better (a forecaster's losses)."""
    from alphaloop.evaluate.columns import SpaColumns

    rng = np.random.default_rng(6)
    r = rng.normal(0, 0.01, (150, 40))
    r[:, 30:] = r[:, :10]  # ten copies
    kept = SpaColumns(cap=12)
    for j in range(r.shape[1]):
        kept.add(r[:, j])
    assert kept.candidates == 40 and kept.distinct == 30
    assert np.array_equal(np.column_stack(kept.series()), spa_models(r, cap=12))
    losses = SpaColumns(cap=5)
    for j in range(30):
        losses.add(r[:, j], rank=-float(r[:, j].mean()))
    lowest = np.sort(np.argsort(r[:, :30].mean(axis=0), kind="stable")[:5])
    assert np.array_equal(np.column_stack(losses.series()), r[:, lowest])
