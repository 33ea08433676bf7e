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


def test_the_report_reads_returns_of_the_population_only() -> None:
    assert drawn_returns({"population": [{"iteration": 4}, {"iteration": 9}]}) == {4, 9}
    assert drawn_returns({}) is None  # no state: every record's returns
