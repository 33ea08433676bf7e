"""The report's view of the best candidate: its code, its trades over the price, its returns per year,
buy and hold's Sharpe beside its own, and the assumptions line; the test split only after ``final``."""

from __future__ import annotations

import json
import re
import shutil
from html import unescape
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from alphaloop.evaluate.backtest import backtest, positions_from_trips, round_trip_bars, round_trip_returns
from alphaloop.present.report import load_run, render_report
from alphaloop.present.report.best import final_window, split_window, yearly
from tests.test_report import make_workdir


@pytest.fixture(scope="module")
def workdir(frozen_data: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_workdir(tmp_path_factory.mktemp("run") / "train", frozen_data, stress_paths=2)


def test_round_trips_give_the_positions_back_and_the_metrics_own_trade_returns() -> None:
    rng = np.random.default_rng(5)
    close = 100 * np.cumprod(1 + rng.normal(0.0003, 0.01, 400))
    signals = rng.choice([-1, 0, 1], size=400, p=[0.1, 0.8, 0.1])
    res = backtest(close, signals, cost_bps=5.0)
    bars = round_trip_bars(res.positions)
    assert bars.shape == (res.metrics["round_trips"], 2) and np.all(bars[:, 0] < bars[:, 1])
    assert np.array_equal(positions_from_trips(bars, close.size), res.positions)
    trips = round_trip_returns(res.returns, res.positions)
    assert np.mean(trips > 0) == pytest.approx(res.metrics["win_rate"])
    # a round trip's net return is the compounded net return of the days it spans, costs included
    a, b = bars[0]
    assert trips[0] == pytest.approx(np.prod(1 + res.returns[a:b + 1]) - 1)


def test_best_candidate_code_trades_card_and_assumptions(workdir: Path, frozen_data: Path) -> None:
    run = load_run(workdir, frozen_data)
    html = render_report(run)
    best = run.record(run.best)
    assert 'id="best"' in html and 'id="years"' in html
    assert run.best_code.startswith("\ndef generate_features") or "def generate_features" in run.best_code
    code = re.search(r'<pre class="code hl"><code>(.*?)</code></pre>', html, re.S).group(1)
    assert 'df["f"] = df["Close"].rolling(' in unescape(re.sub(r"<[^>]+>", "", code))  # the code, escaped
    val = best["scores"]["splits"]["val"]
    n_trips = int(val["round_trips"])
    assert f"Trade list, val split ({n_trips} round trips" in html
    rows = re.search(r"Trade list, val split.*?<tbody>(.*?)</tbody>", html, re.S).group(1)
    assert rows.count("<tr>") == n_trips
    window = split_window(run, best, "val")
    first = window.trips[0]
    assert f"<td>{window.day(int(first[0]))}</td>" in rows  # entry dates are the frozen split's dates
    assert "buy &amp; hold val Sharpe" in html and f"{val['bh_sharpe']:.2f}" in html
    assert f"best&#x27;s val Sharpe {val['sharpe']:.2f}" in html
    line = re.search(r'<p class="assume">(.*?)</p>', html).group(1)
    for words in ("annualised with √252", "risk-free rate 0", "Adj Close equals Close", "costs 2 bp"):
        assert words in line, line
    assert "test split not read yet: its trades appear here after harness.py final" in html


def test_returns_per_year_compound_to_the_split_and_name_it(workdir: Path, frozen_data: Path) -> None:
    run = load_run(workdir, frozen_data)
    best = run.record(run.best)
    for split in ("train", "val"):
        w = split_window(run, best, split)
        years = yearly(w)
        m = best["scores"]["splits"][split]
        assert np.prod(1 + years["strategy"]) - 1 == pytest.approx(m["total_return"], rel=1e-9)
        assert np.prod(1 + years["buy_hold"]) - 1 == pytest.approx(m["bh_total_return"], rel=1e-9)
        assert years["days"].sum() == len(w.returns)
    html = render_report(run)
    table = re.search(r'id="years".*?<tbody>(.*?)</tbody>', html, re.S).group(1)
    assert "<td>val</td>" in table and "<td>train</td>" in table and "<td>test" not in table


def test_a_record_without_trades_still_renders(workdir: Path, frozen_data: Path, tmp_path: Path) -> None:
    """Workdirs written before trades were recorded: a note instead of the list, the rest as before."""
    wd = tmp_path / "old"
    shutil.copytree(workdir, wd)
    for path in wd.glob("iter_*_results.json"):
        rec = json.loads(path.read_text(encoding="utf-8"))
        rec.pop("trades", None)
        path.write_text(json.dumps(rec), encoding="utf-8")
    html = render_report(load_run(wd, frozen_data))
    assert "no trade list for the validation split" in html and "Trade list" not in html
    assert 'id="years"' in html and "<td>val</td>" in html


def test_after_final_the_test_trades_and_years_are_shown_on_dates(workdir: Path, frozen_data: Path,
                                                                   tmp_path: Path) -> None:
    wd = tmp_path / "read"
    shutil.copytree(workdir, wd)
    run = load_run(wd, frozen_data)
    best = run.record(run.best)
    # a reading as final writes it, here built from the validation split's figures and dates
    val = split_window(run, best, "val")
    reading = {"time": "2026-11-22T08:00:00+00:00", "iteration": run.best, "sha256": "a" * 64, "earlier_readings": 0,
               "status": "scored", "stage": "ok", "test": best["scores"]["splits"]["val"],
               "returns": val.returns.tolist(), "bh_returns": val.bh_returns.tolist(),
               "trades": val.trips.tolist(), "dates": [str(d.date()) for d in val.dates]}
    (wd / "test_readings.jsonl").write_text(json.dumps(reading) + "\n", encoding="utf-8")
    run = load_run(wd, frozen_data)
    test = final_window(run)
    assert isinstance(test.dates, pd.DatetimeIndex) and test.dates[0] == val.dates[0]
    assert np.array_equal(test.positions, val.positions)
    html = render_report(run)
    assert f"Trades on the test split (read by harness.py final, iter {run.best})" in html
    assert f"Trade list, test split ({len(val.trips)} round trips" in html
    table = re.search(r'id="years".*?<tbody>(.*?)</tbody>', html, re.S).group(1)
    assert f"<td>test (iter {run.best})</td>" in table


def test_member_correlations_with_each_other_and_buy_and_hold(workdir: Path, frozen_data: Path) -> None:
    from alphaloop.run.diversity import correlation

    run = load_run(workdir, frozen_data)
    html = render_report(run)
    block = re.search(r"Correlation of daily validation returns.*?<tbody>(.*?)</tbody>", html, re.S).group(1)
    labels = [f"iter {n}" for n in run.population] + ["buy and hold"]
    assert [re.match(r"<td>(.*?)</td>", row).group(1) for row in block.split("<tr>")[1:]] == labels
    a, b = (np.asarray(run.record(n)["returns"]["val"]) for n in run.population[:2])
    close = run.splits["val"]["Close"].to_numpy()
    first_row = re.findall(r">(-?\d\.\d\d)</td>", block.split("<tr>")[1])
    assert first_row[0] == "1.00" and first_row[1] == f"{correlation(a, b):.2f}"
    assert first_row[-1] == f"{correlation(a, close[1:] / close[:-1] - 1):.2f}"
    assert "most alike:" in html
