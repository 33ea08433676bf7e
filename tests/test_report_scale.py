"""A long run's report lists what a reader looks for, not every one of thousands of iterations."""

from __future__ import annotations

from alphaloop.present.report.data import drawn_returns, record_value
from alphaloop.present.report.sample import LATEST_ROWS, TABLE_ROWS, TOP_ROWS, table_records


def _records(n: int) -> list[dict]:
    return [{"iteration": i, "metric": "sharpe", "status": "accepted",
             "scores": {"splits": {"val": {"sharpe": float((i * 7919) % 1000)}}}} for i in range(n)]


def test_a_short_run_lists_every_iteration() -> None:
    recs = _records(TABLE_ROWS)
    assert table_records(recs, [3], record_value) == (recs, "")


def test_a_long_run_lists_baseline_population_best_and_latest_in_order() -> None:
    recs = _records(20_000)
    shown, left_out = table_records(recs, [12_345, 5], record_value)
    numbers = [r["iteration"] for r in shown]
    assert numbers == sorted(numbers) and len(shown) <= 1 + 2 + TOP_ROWS + LATEST_ROWS
    assert {0, 5, 12_345, 19_999} <= set(numbers)
    best = sorted(recs, key=lambda r: -record_value(r))[0]["iteration"]
    assert best in numbers and f"of {len(recs):,} iterations" in left_out and "results.tsv" in left_out
    left = len(recs) - len(shown)
    assert f"of the {left:,} left out, {left:,} were accepted and 0 rejected" in left_out


def test_a_long_runs_table_counts_what_it_leaves_out_by_outcome() -> None:
    recs = _records(2_000)
    for r in recs[1:1_001]:
        r.update(status="rejected", stage="gate" if r["iteration"] % 4 else "sandbox", scores=None)
    _, left_out = table_records(recs, [], record_value)
    assert "1,000 rejected (at gate 750, sandbox 250)" in left_out


def test_the_report_reads_returns_of_the_population_only() -> None:
    assert drawn_returns({"population": [{"iteration": 4}, {"iteration": 9}]}) == {4, 9}
    assert drawn_returns({}) is None  # no state: every record's returns


def test_the_scale_figures_quoted_in_the_docs_are_the_code_ones() -> None:
    from pathlib import Path

    from alphaloop.evaluate.columns import EFFECTIVE_TRIALS_CAP, SPA_CAP
    from alphaloop.run.packs import PACK_EVERY
    from alphaloop.run.workdir import CHECKPOINT_EVERY

    docs = Path(__file__).resolve().parent.parent / "docs"
    workdir = " ".join((docs / "workdir.md").read_text().split())
    bench = " ".join((docs / "bench.md").read_text().split())
    assert f"every {CHECKPOINT_EVERY} records" in workdir
    assert f"up to {TABLE_ROWS} iterations" in workdir
    assert f"one zip per {PACK_EVERY} iterations" in workdir and f"a whole block of {PACK_EVERY:,}" in workdir
    assert f"the {TOP_ROWS} best on validation and the {LATEST_ROWS} latest" in workdir
    assert f"Beyond {EFFECTIVE_TRIALS_CAP:,} trials with returns" in bench
    assert f"at most the {SPA_CAP:,} with the highest mean return" in bench
