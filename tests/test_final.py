"""``harness.py final``: the test split is read here only, and every reading is recorded."""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path

import pytest

from alphaloop.candidate import extract_region, splice_region, template_text
from alphaloop.commands.final import run_final
from alphaloop.run.records import TestReading
from alphaloop.run.workdir import READINGS, Workdir
from tests.conftest import InProcessSandbox
from tests.test_lookahead import BASELINE
from tests.test_pipeline_check import LEAKY


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    text = splice_region(template_text(), BASELINE)
    (tmp_path / "iter_3_trade.py").write_text(text)
    (tmp_path / "iter_4_trade.py").write_text(splice_region(template_text(), LEAKY))
    (tmp_path / "best_trade.py").write_text(text)
    (tmp_path / "iter_3_results.json").write_text(json.dumps(
        {"iteration": 3, "status": "accepted", "stage": "ok", "reason": "", "metric": "total_return",
         "scores": {"metric": "total_return", "selection_val": 0.1276, "splits": {"val": {"total_return": 0.1276}}}}))
    return tmp_path


def earlier_readings(workdir: Path) -> list[dict]:
    return [r.to_json() for r in Workdir(workdir).test_readings()]


def final(capsys: pytest.CaptureFixture[str], *args, **kw) -> tuple[int, str, str]:
    code = run_final(*args, sandbox=InProcessSandbox(), **kw)
    out = capsys.readouterr()
    return code, out.out, out.err


def test_readings_are_counted_and_the_second_warns(workdir: Path, frozen_data: Path,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = final(capsys, workdir, frozen_data, None, 2.0)
    assert code == 0 and "READ BEFORE" not in err
    assert "test split" in out and "buy and hold" in out
    assert re.search(r"(degradation|improvement|no change) \(test - validation\)", out)  # named by its direction
    assert "(recorded by the loop: +12.76%)" in out  # the metric comes from the iteration record
    first = earlier_readings(workdir)
    assert len(first) == 1
    rec = first[0]
    assert rec["iteration"] == 3 and rec["earlier_readings"] == 0 and rec["status"] == "scored"
    assert rec["metric"] == "total_return" and rec["test"]["bars"] > 60
    assert rec["sha256"] == hashlib.sha256((workdir / "best_trade.py").read_bytes()).hexdigest()
    assert rec["test_minus_validation"] == pytest.approx(rec["test"]["total_return"] - rec["val_metric"])
    assert "degradation" not in rec  # a neutral key: test minus validation may be a rise
    assert json.loads(out.strip().splitlines()[-1])["readings"] == 1
    # the verdict in words, beside validation, and it matches the recorded figures
    margin = rec["test"]["total_return"] - rec["bh_test_metric"]
    words = "beat buy and hold by" if margin > 0 else "did not beat buy and hold:"
    verdict = next(line for line in out.splitlines() if line.startswith("on the test split the candidate"))
    assert words in verdict and f"{abs(margin):+.2%}" in verdict and "on validation it had" in verdict
    assert rec["beat_bh_test"] is (margin > 0) and "bh_val_metric" in rec
    assert not (workdir / "report.html").exists()  # no run folder (state.json), so no report to refresh

    code, out, err = final(capsys, workdir, frozen_data, 3, 2.0)
    assert code == 0 and "THE TEST SPLIT HAS BEEN READ BEFORE" in err and "reading number 2" in err
    second = earlier_readings(workdir)
    assert len(second) == 2 and second[0] == rec and second[1]["earlier_readings"] == 1
    assert second[1]["test"] == rec["test"]  # same candidate, same data: same figures


def test_rejected_candidate_is_recorded_without_figures(workdir: Path, frozen_data: Path,
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = final(capsys, workdir, frozen_data, 4, 2.0)
    assert code == 1 and "no test figures shown" in out and "Total return" not in out
    (rec,) = earlier_readings(workdir)
    assert rec["status"] == "rejected" and rec["stage"] == "lookahead" and rec.get("test") is None


def test_usage_errors(tmp_path: Path, frozen_data: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = final(capsys, tmp_path, frozen_data, None, 2.0)
    assert code == 2 and "best_trade.py: no such file" in err
    code, _, err = final(capsys, tmp_path, frozen_data, 9, 2.0)
    assert code == 2 and "iter_9_trade.py" in err
    assert not (tmp_path / READINGS).exists()


def test_append_keeps_earlier_lines_and_leaves_no_temp_files(tmp_path: Path) -> None:
    (tmp_path / READINGS).write_text('{"time": "t1", "iteration": 1}')  # a last line without its newline
    Workdir(tmp_path).append_reading(TestReading(time="t2", iteration=2))
    Workdir(tmp_path).append_reading(TestReading(time="t3", iteration=3))
    assert [r["iteration"] for r in earlier_readings(tmp_path)] == [1, 2, 3]
    assert sorted(p.name for p in tmp_path.iterdir()) == [READINGS]


def test_find_iteration_names_the_first_matching_file(workdir: Path) -> None:
    (workdir / "iter_7_trade.py").write_text((workdir / "iter_3_trade.py").read_text())
    assert Workdir(workdir).find_iteration("def generate_features(df):\n    return df\n") is None
    assert Workdir(workdir).find_iteration(extract_region((workdir / "best_trade.py").read_text())) == 3


def test_verdict_line_says_who_won_and_by_how_much() -> None:
    from alphaloop.tasks.trade.final import verdict_line

    won = verdict_line("sharpe", 0.9, 0.6, 1.2, 1.0)
    assert won.startswith("on the test split the candidate beat buy and hold by 0.300 (sharpe 0.900 vs 0.600)")
    assert won.endswith("on validation it had 1.200 vs buy and hold 1.000 (0.200)")
    lost = verdict_line("total_return", 0.05, 0.12, 0.3, 0.2)
    assert "did not beat buy and hold: +7.00% below it (total_return +5.00% vs +12.00%)" in lost
    assert "tied with buy and hold" in verdict_line("sharpe", 0.5, 0.5, 0.5, 0.5)


def test_a_reading_carries_the_test_dates_and_trades_for_the_report(workdir: Path, frozen_data: Path,
                                                                      capsys: pytest.CaptureFixture[str]) -> None:
    """The report draws the test split on dates and lists its trades from the reading alone (it never opens test)."""
    import numpy as np

    from alphaloop.data.frozen import read_manifest
    from alphaloop.evaluate.backtest import positions_from_trips

    code, out, _ = final(capsys, workdir, frozen_data, None, 2.0)
    assert code == 0 and "returns on: Close as traded (Adj Close equals Close" in out
    rec = earlier_readings(workdir)[0]
    info = read_manifest(frozen_data)["splits"]["test"]
    assert len(rec["dates"]) == rec["test"]["bars"] == len(rec["returns"]) + 1 == info["rows"]
    assert rec["dates"][0] == info["start"] and rec["dates"][-1] == info["end"]
    assert len(rec["trades"]) == rec["test"]["round_trips"]
    pos = positions_from_trips(np.asarray(rec["trades"]), len(rec["dates"]))
    assert np.mean(pos[:-1]) == pytest.approx(rec["test"]["exposure"])


def test_final_judges_with_the_budget_the_run_recorded(workdir: Path, frozen_data: Path,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    """final gives the candidate the run's --eval-timeout, not a default: each run's limit stays within it."""
    record = json.loads((workdir / "iter_3_results.json").read_text())
    (workdir / "iter_3_results.json").write_text(json.dumps({**record, "eval_timeout_s": 7.5}))
    given: list[float | None] = []

    class Recording(InProcessSandbox):
        def run(self, region, frames, timeout_s=None, task=None):
            given.append(timeout_s)
            return super().run(region, frames, timeout_s)

    assert run_final(workdir, frozen_data, 3, 2.0, sandbox=Recording()) == 0
    capsys.readouterr()
    assert given and all(t is not None and t <= 7.5 for t in given)


def test_a_second_reading_is_warned_about_in_each_tasks_words(capsys: pytest.CaptureFixture[str]) -> None:
    """Every task's final warns alike when the test split was read before (the trade task lists the readings)."""
    from types import SimpleNamespace

    from alphaloop.present.ui import warn_read_before

    before = [SimpleNamespace(time="2026-12-01T01:02:03+00:00", iteration=3)]
    warn_read_before([], Path("run"), "portfolio")
    assert capsys.readouterr().err == ""
    for candidate, listed in (("strategy", True), ("forecaster", False), ("portfolio", False)):
        warn_read_before(before, Path("run"), candidate, list_earlier=listed)
        err = " ".join(capsys.readouterr().err.replace("│", " ").split())  # the panel's text, unwrapped
        assert "THE TEST SPLIT HAS BEEN READ BEFORE" in err and "reading number 2 of the test split in run" in err
        assert f"choose or change a {candidate} turns the test split into one more validation split" in err
        assert ("Earlier readings: 2026-12-01T01:02:03+00:00 iteration 3." in err) is listed
