"""The progress chart of a long run draws a bounded number of points that keep its look honest:
every step of the best so far, the population, and each slice's highest and lowest point."""

from __future__ import annotations

import numpy as np

from alphaloop.present.report.thin import (
    SLICE_POINTS,
    SLICES,
    STRIP_BINS,
    best_steps,
    bins_of,
    by_rank,
    progress_series,
    strip_marks,
    thinned_words,
)


def test_a_short_series_is_drawn_whole() -> None:
    x = np.arange(SLICES * SLICE_POINTS)
    assert np.array_equal(by_rank(x, np.sin(x)), x)
    assert np.array_equal(strip_marks(x[:STRIP_BINS]), x[:STRIP_BINS])
    assert thinned_words(10, 10) == ""


def test_a_long_series_keeps_each_slices_extremes_spread_and_what_must_stay_within_a_bound() -> None:
    rng = np.random.default_rng(3)
    x = np.sort(rng.choice(300_000, 100_000, replace=False))
    y = rng.standard_t(3, x.size)
    keep = np.zeros(x.size, dtype=bool)
    keep[rng.choice(x.size, 40, replace=False)] = True
    picked = by_rank(x, y, keep=keep)
    assert picked.size <= SLICES * SLICE_POINTS + 40 and np.all(np.diff(picked) > 0)
    assert set(np.flatnonzero(keep)) <= set(picked)
    b = bins_of(x, SLICES)
    for slice_ in np.unique(b):
        inside = np.flatnonzero(b == slice_)
        assert inside[np.argmax(y[inside])] in picked and inside[np.argmin(y[inside])] in picked
        drawn = y[np.intersect1d(picked, inside)]  # a dense band stays filled: its median is drawn near its median
        assert abs(np.median(drawn) - np.median(y[inside])) < 0.5 * np.subtract(*np.percentile(y[inside], [75, 25]))
    assert y.max() == y[picked].max() and y.min() == y[picked].min()


def test_the_rejection_strip_marks_every_bin_a_stage_occupies() -> None:
    x = np.r_[np.arange(0, 50_000, 3), np.arange(70_000, 100_000, 2)]
    marks = strip_marks(x, (0, 99_999))
    assert marks.size <= STRIP_BINS and set(bins_of(marks, span=(0, 99_999))) == set(bins_of(x, span=(0, 99_999)))


def test_the_best_so_far_keeps_every_step_and_draws_the_same_line() -> None:
    rng = np.random.default_rng(5)
    x = np.arange(100_000)
    running = np.maximum.accumulate(rng.normal(size=x.size))
    steps = best_steps(x, running)
    changes = np.flatnonzero(np.r_[True, running[1:] != running[:-1]])
    assert set(changes) <= set(steps) and steps[-1] == x.size - 1
    drawn = running[steps][np.searchsorted(steps, x, side="right") - 1]  # the step line, where="post"
    assert np.array_equal(drawn, running)


def test_a_best_that_rises_every_iteration_is_still_bounded() -> None:
    x = np.arange(100_000)
    steps = best_steps(x, x.astype(float))
    assert steps.size <= 2 * STRIP_BINS + 1 and {0, x.size - 1} <= set(steps)


def test_the_series_ranks_the_best_as_the_population_does() -> None:
    def rec(n: int, val: float | None, status: str = "accepted", selection: float | None = None) -> dict:
        scores = {"splits": {"val": {"sharpe": val}}} if val is not None else None
        return {"iteration": n, "status": status, "stage": "ok" if status == "accepted" else "guards",
                "scores": scores, "selection": selection}

    s = progress_series([rec(0, 0.5), rec(1, 0.9, "rejected"), rec(2, 0.7, selection=0.2), rec(3, 0.6),
                         rec(4, None, "rejected"), rec(5, 0.4, selection=0.8)])
    assert np.allclose(s.running, [0.5, 0.5, 0.5, 0.6, 0.6, 0.4])  # a rejected 0.9 never counts; ranked by selection
    assert s.improved.tolist() == [True, False, False, True, False, True]
    assert np.isnan(s.value[4]) and s.stage[1] == "guards"


def test_a_thinned_chart_says_so_and_from_how_many_points() -> None:
    words = thinned_words(2_345, 100_000)
    assert "downsampled: 2,345 of 100,000 points drawn" in words and f"{SLICES} slices" in words


def test_the_thinning_figures_quoted_in_the_docs_are_the_code_ones() -> None:
    from pathlib import Path

    from tests.test_report_long_run import HTML_BOUND, ITERATIONS

    docs = " ".join((Path(__file__).resolve().parent.parent / "docs" / "report.md").read_text().split())
    assert f"drawn whole up to {SLICES * SLICE_POINTS:,} points" in docs
    assert f"cut into {SLICES} equal slices and each series keeps, per slice, {SLICE_POINTS} points" in docs
    assert f"rose more than {2 * STRIP_BINS:,} times keeps each of {STRIP_BINS:,} bins'" in docs
    assert f"marks each of {STRIP_BINS:,} bins" in docs
    assert f"a {ITERATIONS:,}-iteration folder stays under {HTML_BOUND / 1e6:g} MB" in docs


def test_the_forecast_skill_chart_of_a_long_run_is_downsampled_and_says_so() -> None:
    from alphaloop.tasks.forecast.report import skill_chart
    from alphaloop.tasks.forecast.scores import SELECTION_METRIC

    rng = np.random.default_rng(2)
    entries = [{"iteration": n, "status": "accepted" if n % 3 else "rejected", "metric": SELECTION_METRIC,
                "scores": {"splits": {s: {SELECTION_METRIC: float(rng.normal())} for s in ("train", "val")}}}
               for n in range(12_000)]
    html = skill_chart(entries, [4, 11_999])
    assert "mean RPS skill over horizons" in html and "of 20,000 points drawn" in html
    assert "downsampled" not in skill_chart(entries[:300], [4])
