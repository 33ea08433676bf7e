"""The report of a few-thousand-iteration run stays small: a folder the loop's own writers built
(bench/bench_report.py's ``grow`` from a real short run), then `harness.py report` as a user runs it."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from alphaloop.present.report.sample import LATEST_ROWS, TOP_ROWS
from alphaloop.present.report.thin import SLICE_POINTS, SLICES
from alphaloop.run.workdir import Workdir
from bench.bench_report import grow, seed_run
from tests.test_universe_data import run

ITERATIONS = 4_000
HTML_BOUND = 1_600_000  # bytes; the 1,000-iteration report is ~1 MB, most of it PNG charts


@pytest.fixture(scope="module")
def long_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str, int]:
    """A 3-iteration real run grown to ``ITERATIONS`` iterations, and its report: (folder, HTML, best)."""
    root = tmp_path_factory.mktemp("long_run")
    seed, data = seed_run(root, iterations=3)
    best = grow(seed, root / "long", ITERATIONS)
    res = run("harness.py", "report", "--workdir", "long", "--data", str(data), cwd=root)
    assert res.returncode == 0, res.stdout + res.stderr
    return root / "long", (root / "long" / "report.html").read_text(encoding="utf-8"), best


def test_the_report_of_thousands_of_iterations_stays_under_its_bound(long_run: tuple[Path, str, int]) -> None:
    folder, html, _ = long_run
    assert len(html.encode()) < HTML_BOUND
    assert html.count("<tr") < 2 * (1 + 3 + TOP_ROWS + LATEST_ROWS) + 100  # iterations and hypotheses tables
    assert "<script" not in html and len(Workdir(folder).index_entries()) == ITERATIONS


def test_the_progress_chart_says_it_is_downsampled_and_what_it_shows(long_run: tuple[Path, str, int]) -> None:
    _, html, best = long_run
    progress = re.search(r'<section id="progress">.*?</section>', html, re.S).group(0)
    caption = re.sub(r"&#x27;", "'", re.search(r"<figcaption>(.*?)</figcaption>", progress).group(1))
    drawn, total = (int(v.replace(",", "")) for v in re.search(r"downsampled: ([\d,]+) of ([\d,]+) points",
                                                                caption).groups())
    assert total > ITERATIONS / 2 and drawn < total
    assert drawn <= 6 * SLICES * SLICE_POINTS  # each series bounded (accepted, per rejecting stage, strip)
    assert caption.startswith("validation split") and "buy and hold's Sharpe on the same split" in caption
    assert f"Best candidate: <b>iter {best}</b>" in html
