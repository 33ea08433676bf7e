"""A universe run's report and `final` show each instrument beside its buy and hold, the portfolio's
validation curve against the equal-weight buy and hold, and the held-out instruments after `final`;
a single-instrument report has no such section."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pandas as pd
import pytest

from alphaloop.present.report import load_run
from tests.test_universe_data import csv_folder, run, synthetic

NAMES = ("AAA", "BBB", "CCC")


def universe_section(html: str) -> str:
    match = re.search(r'<section id="universe">.*?</section>', html, re.S)
    assert match, "the report has no universe section"
    return match.group(0)


@pytest.fixture(scope="module")
def universe_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """prepare (3 seeded CSVs, CCC held out), a 2-iteration loop, final and report, as a user runs them."""
    root = tmp_path_factory.mktemp("universe")
    frames = {"AAA": synthetic(2, drop_every=7), "BBB": synthetic(1), "CCC": synthetic(3)}
    folder = csv_folder(root / "csv", frames)
    steps = [("prepare.py", "--source", "csv", "--csv-dir", str(folder), "--holdout-tickers", "CCC", "--out", "d"),
             ("harness.py", "--iterations", "2", "--stress-paths", "0", "--data", "d", "--workdir", "w")]
    for step in steps:
        res = run(*step, cwd=root)
        assert res.returncode == 0, res.stdout + res.stderr
    before = (root / "w" / "report.html").read_text(encoding="utf-8")
    assert "read by harness.py final" not in universe_section(before)
    assert "test split not read yet" in universe_section(before)
    res = run("harness.py", "final", "--data", "d", "--workdir", "w", cwd=root)
    assert res.returncode == 0, res.stdout + res.stderr
    (root / "final.out").write_text(res.stdout, encoding="utf-8")
    res = run("harness.py", "report", "--data", "d", "--workdir", "w", cwd=root)
    assert res.returncode == 0, res.stdout + res.stderr
    return root


def test_final_scores_the_portfolio_and_each_instrument(universe_run: Path) -> None:
    out = (universe_run / "final.out").read_text(encoding="utf-8")
    assert "equal-weight portfolio of 2 instruments" in out
    assert "per instrument, test split" in out and "AAA" in out and "BBB" in out
    assert "held-out instruments" in out and "CCC" in out
    reading = json.loads((universe_run / "w" / "test_readings.jsonl").read_text(encoding="utf-8").splitlines()[-1])
    assert [r["instrument"] for r in reading["instruments"]] == ["AAA", "BBB"]
    for row in reading["instruments"]:
        for key in ("sharpe", "total_return", "max_drawdown", "exposure", "round_trips", "bh_sharpe",
                    "bh_total_return", "bh_max_drawdown"):
            assert isinstance(row[key], float), key
    assert [h["instrument"] for h in reading["holdout"]] == ["CCC"]
    assert len(reading["returns"]) == len(reading["bh_returns"]) == len(reading["dates"]) - 1  # a curve from 1
    assert reading["dates"] == sorted(set(reading["dates"]))
    best = int(reading["iteration"])
    record = json.loads((universe_run / "w" / f"iter_{best}_results.json").read_text(encoding="utf-8"))
    loop_val = record["scores"]["splits"]["val"]["sharpe"]  # final scores what the loop selected on
    assert reading["val_metric"] == pytest.approx(loop_val, abs=1e-9)


def test_report_shows_instruments_portfolio_curve_and_held_out(universe_run: Path) -> None:
    html = (universe_run / "w" / "report.html").read_text(encoding="utf-8")
    section = universe_section(html)
    assert '<a href="#universe">' in html
    assert "Validation split per instrument" in section
    assert "buy &amp; hold Sharpe" in section and "exposure" in section and "round trips" in section
    assert section.count("<td>AAA</td>") == 2 and section.count("<td>BBB</td>") == 2  # validation and test
    assert 'alt="portfolio validation equity"' in section and "data:image/png;base64," in section
    assert "equal-weight buy and hold" in section and "not drawn" not in section
    assert "Test split per instrument" in section
    assert "Held-out instruments" in section and "<td>CCC</td>" in section
    assert "<td>CCC</td>" not in section.split("Held-out instruments")[0]  # named only after final
    run = load_run(universe_run / "w", universe_run / "d")
    val = run.record(run.best)["returns"]["val"]
    assert run.universe_bh is not None and len(run.universe_bh["returns"]) == len(val)
    assert len(run.universe_bh["dates"]) == len(val) + 1  # the curve is drawn on dates, not bar numbers


def test_single_instrument_report_has_no_universe_section(tmp_path: Path) -> None:
    folder = csv_folder(tmp_path / "csv", {"ONE": synthetic(4)})
    for step in [("prepare.py", "--source", "csv", "--csv-dir", str(folder), "--out", "d"),
                 ("harness.py", "--iterations", "2", "--stress-paths", "0", "--data", "d", "--workdir", "w"),
                 ("harness.py", "final", "--data", "d", "--workdir", "w")]:
        res = run(*step, cwd=tmp_path)
        assert res.returncode == 0, res.stdout + res.stderr
        assert "per instrument, test split" not in res.stdout
    html = (tmp_path / "w" / "report.html").read_text(encoding="utf-8")
    assert '<section id="universe"' not in html and 'href="#universe"' not in html
    reading = json.loads((tmp_path / "w" / "test_readings.jsonl").read_text(encoding="utf-8").splitlines()[-1])
    assert "instruments" not in reading and reading["trades"] is not None


def test_universe_report_uses_the_portfolio_or_names_the_instrument(universe_run: Path) -> None:
    """Curves and per-year rows are the portfolio's beside the equal-weight buy and hold, on dates; trades are
    listed per named instrument; stress says whose figures it shows; the skipped second market says why."""
    html = (universe_run / "w" / "report.html").read_text(encoding="utf-8")

    def part(sid: str) -> str:
        m = re.search(rf'<(section|header) id="{sid}">.*?</(section|header)>', html, re.S)
        assert m, sid
        return re.sub(r"<[^>]+>", " ", re.sub(r"<img[^>]+>", "", m.group(0)))

    assert "2 instruments: AAA, BBB; 1 held out" in part("summary")
    years = part("years")
    assert "equal-weight buy &amp; hold" in years and " train " in years and " val " in years
    assert "equal-weight buy and hold" in part("equity")
    best = part("best")
    assert "Trade list, AAA, val split" in best and "Trade list, BBB, val split" in best
    assert "instrument 1: AAA" in part("stress")
    assert "skipped for a universe on purpose" in part("cross")
    assert "no second-market results yet" not in html
    assert "AAA, val split" in part("analysis")
    csv = pd.read_csv(universe_run / "w" / "best_equity.csv")
    assert set(csv["split"]) == {"train", "val", "test"} and csv["position"].isna().all()
