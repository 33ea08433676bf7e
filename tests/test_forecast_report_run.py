"""A real short forecast run (prepare, the loop, final, report) in a tmp dir: direction accuracy counts
only calls, the rolling climatology stands beside the skill and in SPA, final's wording and reading fit
a forecast, the prompt carries the parent's evidence, and forecasts_test.csv names the call and the cuts."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from alphaloop.run.workdir import Workdir
from alphaloop.tasks.forecast.buckets import BucketScheme
from alphaloop.tasks.forecast.evidence import forecast_evidence
from alphaloop.tasks.forecast.scores import CALL_MARGIN, ROLLING_BARS, ROLLING_MIN, SPREAD_BARS, direction_accuracy
from tests.test_universe_data import ROOT, run


@pytest.fixture(scope="module")
def forecast_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("forecast_run")
    steps = [("prepare.py", "--source", "sample", "--out", "d"),
             ("harness.py", "--task", "forecast", "--iterations", "3", "--proposer", "offline", "--data", "d",
              "--workdir", "w")]
    for step in steps:
        res = run(*step, cwd=root)
        assert res.returncode == 0, res.stdout + res.stderr
        (root / f"{step[0]}.out").write_text(res.stdout, encoding="utf-8")
    res = run("harness.py", "final", "--data", "d", "--workdir", "w", cwd=root)
    assert res.returncode == 0, res.stdout + res.stderr
    (root / "final.out").write_text(res.stdout, encoding="utf-8")
    return root


def test_a_symmetric_forecaster_makes_no_calls() -> None:
    probs = np.tile([0.3, 0.4, 0.3], (50, 1)) + np.random.default_rng(0).normal(0, 1e-16, (50, 3))
    returns = np.random.default_rng(1).normal(0, 0.01, 50)
    assert direction_accuracy(probs, returns) == (None, 0)
    leaning = np.tile([0.2, 0.4, 0.4], (50, 1))
    acc, n = direction_accuracy(leaning, returns)
    assert n == 50 and acc == pytest.approx(float(np.mean(returns > 0)))


def test_final_wording_and_the_reading_fit_a_forecast(forecast_run: Path) -> None:
    out = " ".join((forecast_run / "final.out").read_text(encoding="utf-8").split())
    assert "1 trials" not in out and "p = 0.000" not in out
    assert "against the rolling climatology" in out
    reading = json.loads((forecast_run / "w" / "test_readings.jsonl").read_text(encoding="utf-8").splitlines()[-1])
    delta = reading["test_minus_validation"]
    assert ("improvement (test - validation)" if delta > 0 else "degradation (test - validation)") in out
    assert "degradation" not in reading
    assert reading["benchmark"] == "climatology" and "beat_bh_test" not in reading and "bh_test_metric" not in reading
    assert isinstance(reading["beat_climatology_test"], bool)
    assert set(reading["spa_test"]) == {"climatology", "rolling_climatology"}
    assert "rps_skill_rolling_mean" in reading["test"]


def test_piped_final_keeps_whole_figures_and_learnings_name_the_benchmark(forecast_run: Path) -> None:
    out = (forecast_run / "final.out").read_text(encoding="utf-8")  # captured: a pipe, 80 columns
    reading = json.loads((forecast_run / "w" / "test_readings.jsonl").read_text(encoding="utf-8").splitlines()[-1])
    assert "…" not in out
    # each horizon's whole test skill, in its row
    for h, skill in reading["test"]["rps_skill"].items():
        assert re.search(rf"│ +{h} │ +{re.escape(format(skill, '+.4f'))} │", out)
    learnings = (forecast_run / "w" / "learnings.md").read_text(encoding="utf-8")
    line = next(x for x in learnings.splitlines() if x.startswith("- Test split (read by harness.py final"))
    assert "buy and hold" not in line
    assert f"test rps_skill_mean {reading['test']['rps_skill_mean']:.3f} (climatology 0.000; against the rolling " \
           f"climatology {reading['test']['rps_skill_rolling_mean']:+.3f})" in line


def test_the_run_tests_against_the_rolling_climatology_too(forecast_run: Path) -> None:
    out = " ".join((forecast_run / "harness.py.out").read_text(encoding="utf-8").split())
    assert "Hansen's SPA against the rolling climatology" in out
    stats = json.loads((forecast_run / "w" / "forecast_stats.json").read_text(encoding="utf-8"))
    assert "spa_rolling_pvalues" in stats and "verdict_spa_rolling" in stats
    assert "against the rolling climatology" in out  # beside the skill in the iteration lines


def test_the_prompt_carries_the_parents_evidence_and_no_unscored_latest(forecast_run: Path) -> None:
    wd = Workdir(forecast_run / "w")
    parent = wd.record(2)
    frozen = pd.read_csv(forecast_run / "d" / "train.csv")
    scheme = BucketScheme.from_train(frozen["Close"].to_numpy(dtype=np.float64))
    extra = forecast_evidence(3, 2, parent, parent, scheme, last=2)["extra"]["forecast_figures"]
    assert "not scored" not in extra
    for words in ("train split: rps_skill_mean", "walk-forward folds of train", "rolling climatology",
                  "direction", "most probable bucket", "calibration (mean forecast vs realised)",
                  "best days", "worst days"):
        assert words in extra, words
    assert "over-forecast" in extra or "under-forecast" in extra or "about right" in extra


def test_the_prompt_gives_split_lengths_in_bars_and_years_and_never_a_calendar_year(forecast_run: Path) -> None:
    from alphaloop.data.frozen import load_universe
    from alphaloop.evaluate.universe import instrument_histories
    from alphaloop.tasks import get_task

    task = get_task("forecast")
    histories = tuple(instrument_histories(load_universe(forecast_run / "d")))
    wd = Workdir(forecast_run / "w")
    latest, parent = wd.record(3), wd.record(2)
    extra = task.evidence(4, 2, latest, parent, None, 3, task.prepare(histories))["extra"]["forecast_figures"]
    manifest = json.loads((forecast_run / "d" / "manifest.json").read_text(encoding="utf-8"))
    train, val = (histories[0].windows[k].stop - histories[0].windows[k].start for k in ("train", "val"))
    assert train == manifest["splits"]["train"]["rows"] and val == manifest["splits"]["val"]["rows"]
    assert f"train {train:,} bars ({train / 252:.1f} years of 252 bars)" in extra
    assert f"validation {val:,} bars ({val / 252:.1f} years of 252 bars)" in extra
    assert "walk-forward folds of train of about" in extra
    assert "best days bar " in extra and "worst days bar " in extra  # a day by its bar in validation
    assert not re.search(r"\b(19|20)\d\d\b", extra), extra  # no calendar year: a model's memory is look-ahead


def test_forecasts_test_csv_names_the_call_and_the_cut_points(forecast_run: Path) -> None:
    csv = pd.read_csv(forecast_run / "w" / "forecasts_test.csv")
    for h in (1, 3, 5, 10):
        for col in (f"called_{h}", f"cut_lower_{h}", f"cut_upper_{h}", f"price_lower_{h}", f"price_upper_{h}"):
            assert col in csv.columns, col
        assert set(csv[f"called_{h}"]) <= {"down", "flat", "up", "tie"}
        assert np.allclose(csv[f"price_upper_{h}"], csv["close"] * (1 + csv[f"cut_upper_{h}"]))


def test_the_forecast_docs_quote_the_constants() -> None:
    text = " ".join((Path(__file__).resolve().parents[1] / "docs" / "forecast.md").read_text(encoding="utf-8").split())
    assert CALL_MARGIN == 0.02 and "differ by more than 0.02" in text
    assert f"the last {ROLLING_BARS} outcomes" in text and f"until {ROLLING_MIN} are known" in text
    assert f"at least {SPREAD_BARS} bars apart" in text


def test_the_forecast_report_reads_like_the_trade_report(forecast_run: Path) -> None:
    html = (forecast_run / "w" / "report.html").read_text(encoding="utf-8")
    nav = html[html.index("<nav>"):html.index("</nav>")]
    for sid in ("summary", "progress", "population", "val", "test", "learnings"):
        assert f'href="#{sid}"' in nav and (f'<section id="{sid}"' in html or f'<header id="{sid}"' in html), sid
    assert "generated " in html and "Run dates" in html
    assert "against the rolling climatology" in html and "skill vs rolling clim." in html
    assert "realised h-bar return" in html and "at least a month apart" in html
    test = html[html.index('<section id="test">'):]
    rows = test[test.index("Best and worst days"):].split("<tr>")[2:]
    dates = sorted(pd.Timestamp(re.search(r"\d{4}-\d{2}-\d{2}", r).group(0)) for r in rows if re.search(
        r"<td class=\"num\">1</td><td class=\"num\">best", r))
    assert len(dates) == 5 and all((b - a).days >= 21 for a, b in zip(dates, dates[1:], strict=False))


def test_forecasters_are_saved_as_forecasters_and_run_as_scripts(forecast_run: Path) -> None:
    wd = forecast_run / "w"
    assert sorted(p.name for p in wd.glob("*.py")) == ["best_forecast.py", *(f"iter_{n}_forecast.py" for n in range(4))]
    text = (wd / "iter_2_forecast.py").read_text(encoding="utf-8")
    assert text.startswith('"""A forecaster for alphaloop') and "trading strategy" not in text
    assert "(generate_features, forecast)" in text  # the region marker names the forecast contract
    res = run("harness.py", "check", "--task", "forecast", "--data", "d", "w/iter_2_forecast.py", cwd=forecast_run)
    script = subprocess.run([sys.executable, "iter_2_forecast.py", "--data", "../d"], cwd=wd, capture_output=True,
                            text=True, timeout=240, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert script.returncode == res.returncode == 0, script.stdout + script.stderr
    assert "ACCEPTED" in script.stdout and "stages:" in script.stdout
    assert json.loads(script.stdout.splitlines()[-1])["metrics"]["splits"]["val"]["rps_skill_mean"] == \
        json.loads(res.stdout.splitlines()[-1])["metrics"]["splits"]["val"]["rps_skill_mean"]


def test_a_workdir_with_the_old_trade_names_resumes_and_keeps_its_files(forecast_run: Path, tmp_path: Path) -> None:
    old = tmp_path / "old"
    shutil.copytree(forecast_run / "w", old)
    for path in old.glob("*_forecast.py"):  # as an older alphaloop named every task's candidates
        path.rename(path.with_name(path.name.replace("_forecast.py", "_trade.py")))
    res = run("harness.py", "--task", "forecast", "--iterations", "4", "--proposer", "offline", "--data", "d",
              "--workdir", str(old), cwd=forecast_run)
    assert res.returncode == 0, res.stdout + res.stderr
    assert "resuming at iteration 4" in res.stdout
    assert (old / "iter_3_trade.py").is_file() and (old / "iter_4_forecast.py").is_file()
    assert (old / "best_forecast.py").is_file() and not (old / "best_trade.py").exists()  # no stale copy left
    record = json.loads((old / "iter_4_results.json").read_text(encoding="utf-8"))
    assert record["status"] == "accepted" or record["stage"] != "proposal"  # its parent's file was found
    diff = subprocess.run(["git", "diff", "--no-index", "--stat", "iter_3_trade.py", "iter_4_forecast.py"], cwd=old,
                          capture_output=True, text=True)
    assert diff.returncode in (0, 1)
    res = run("harness.py", "final", "--iter", "2", "--data", "d", "--workdir", str(old), cwd=forecast_run)
    assert res.returncode == 0 and "iter_2_trade.py (iteration 2)" in res.stdout, res.stdout + res.stderr
