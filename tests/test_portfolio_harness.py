"""``python harness.py --task portfolio`` end to end on a seeded universe of CSVs (with one held out):
check, the loop, final and the report; invalid weights and a cross-instrument leak refused by check with
the reasons a person can act on; one instrument (a universe of one) checked too."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.portfolio_support import CROSS_LEAK, DAY_KEYED, universe_frames

ROOT = Path(__file__).resolve().parent.parent

TOO_LONG = '''
def generate_features(df):
    df["mom"] = df["Close"].pct_change(20)
    return df

def allocate(day):
    return {i: (1.5 if i == 2 else 0.0) for i in day.index}
'''



def run(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, *args], cwd=cwd, capture_output=True, text=True, timeout=900)


@pytest.fixture(scope="module")
def universe(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Five instruments with a planted cross-sectional edge, one of them held out, frozen by prepare.py."""
    root = tmp_path_factory.mktemp("portfolio")
    (root / "csv").mkdir()
    for k, frame in enumerate(universe_frames(n=5, days=650, edge=6.0, seed=0)):
        frame.to_csv(root / "csv" / f"S{k + 1}.csv")
    res = run(str(ROOT / "prepare.py"), "--source", "csv", "--csv-dir", str(root / "csv"), "--holdout-tickers", "S5",
              "--out", str(root / "data"), cwd=root)
    assert res.returncode == 0, res.stdout + res.stderr
    res = run(str(ROOT / "prepare.py"), "--source", "csv", "--csv", str(root / "csv" / "S1.csv"),
              "--out", str(root / "one"), cwd=root)
    assert res.returncode == 0, res.stdout + res.stderr
    return root


def verdict(res: subprocess.CompletedProcess) -> dict:
    return json.loads(res.stdout.strip().splitlines()[-1])


def test_check_refuses_invalid_weights_naming_date_instrument_and_value(universe: Path) -> None:
    (universe / "long.py").write_text(TOO_LONG)
    res = run(str(ROOT / "harness.py"), "check", "--task", "portfolio", "--data", str(universe / "data"),
              str(universe / "long.py"), cwd=universe)
    v = verdict(res)
    assert res.returncode == 1 and not v["accepted"] and v["stage"] == "sandbox"
    assert "instrument 2 weight 1.5 is outside [-1, 1]" in v["reason"] and "allocate on 2000-01-03" in v["reason"]


def test_check_rejects_reading_another_instruments_future_at_lookahead(universe: Path) -> None:
    (universe / "leak.py").write_text(CROSS_LEAK)
    v = verdict(run(str(ROOT / "harness.py"), "check", "--task", "portfolio", "--data", str(universe / "data"),
                    str(universe / "leak.py"), cwd=universe))
    assert not v["accepted"] and v["stage"] == "lookahead" and "instrument" in v["reason"]


def test_check_rejects_weights_keyed_to_day_numbers_at_the_guards(universe: Path) -> None:
    (universe / "days.py").write_text(DAY_KEYED)
    v = verdict(run(str(ROOT / "harness.py"), "check", "--task", "portfolio", "--data", str(universe / "data"),
                    str(universe / "days.py"), cwd=universe))
    assert not v["accepted"] and v["stage"] == "guards", v
    assert "allocate's weights change" in v["reason"] and "other years with the same calendar" in v["reason"]


def test_loop_final_and_report_on_a_universe(universe: Path) -> None:
    wd, data = universe / "run", str(universe / "data")
    res = run(str(ROOT / "harness.py"), "--task", "portfolio", "--proposer", "offline", "--iterations", "2",
              "--max-fails", "0", "--stress-paths", "2", "--stress-select", "--workdir", str(wd), "--data", data,
              cwd=universe)
    assert res.returncode == 0, res.stdout + res.stderr
    assert "equal-weight buy and hold" in res.stdout and "S5" not in res.stdout
    state = json.loads((wd / "state.json").read_text())
    assert state["task"] == "portfolio" and state["population"]
    rows = (wd / "results.tsv").read_text().splitlines()
    assert rows[0].split("\t")[4:7] == ["val_sharpe", "val_bh_sharpe", "train_sharpe"] and len(rows) == 4
    stats = json.loads((wd / "stats.json").read_text())
    assert stats["split"] == "val" and "spa_pvalues" in stats and "cash" in stats["universe"]
    record = json.loads((wd / "iter_0_results.json").read_text())
    assert record["scores"]["splits"]["val"]["bh_sharpe"] is not None and "contributions" in record["scores"]
    assert record["stress"] is None  # --stress-select stresses positions; a portfolio's suite runs at the end
    # the candidates are saved under the task's own name, say what they are and run as scripts
    assert (wd / "best_portfolio.py").is_file() and not list(wd.glob("*_trade.py"))
    assert (wd / "iter_1_portfolio.py").read_text().startswith('"""A portfolio allocation')
    res = subprocess.run([sys.executable, str(wd / "iter_1_portfolio.py"), "--data", data], cwd=universe, text=True,
                         capture_output=True, timeout=900, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert "ACCEPTED" in res.stdout or "REJECTED" in res.stdout, res.stdout + res.stderr
    assert verdict(res)["accepted"] == (res.returncode == 0) and "equal-weight buy and hold" in res.stdout
    res = run(str(ROOT / "harness.py"), "final", "--workdir", str(wd), "--data", data, cwd=universe)
    assert res.returncode == 0, res.stdout + res.stderr
    out = verdict(res)
    assert {"sharpe", "bh_sharpe", "information_ratio", "net_exposure"} <= set(out["test"])
    assert out["readings"] == 1 and "held-out panel" in out["holdout_test"]
    report = (wd / "report.html").read_text()
    assert '<section id="portfolio">' in report and "weights held on each test-split date" in report
    # the trade sections (round trips, per-year trades, stress, second market) are not a portfolio's: replaced
    for sid in ("equity", "years", "analysis", "folds", "stress", "cross"):
        assert f'<section id="{sid}"' not in report and f'href="#{sid}"' not in report, sid
    for sid in ("population", "best", "portfolio", "stats"):
        assert report.count(f'<section id="{sid}"') == 1, sid
    assert "val trades" not in report and "round trips" not in report and "trade list" not in report
    assert "equal-weight buy &amp; hold val Sharpe" in report and "summed absolute weight changes" in report
    assert "growth of 1, net of costs, beside the equal-weight buy and hold" in report
    assert "val EW B&amp;H Sharpe" in report and "train fold 1 (" in report
    assert report.count('<pre class="code hl">') == 1  # the pick's code, once
    stress = json.loads((wd / "stress.json").read_text())["members"]
    assert set(stress) == {str(m["iteration"]) for m in state["population"]}
    assert all(v["status"] == "ok" and set(v["scenarios"]) == {"bootstrap", "vol_2x", "crash_20"}
               for v in stress.values())
    assert "synthetic panels" in report and "beat EW B&amp;H" in report


def test_one_instrument_is_a_universe_of_one(universe: Path) -> None:
    res = run(str(ROOT / "harness.py"), "check", "--task", "portfolio", "--data", str(universe / "one"),
              str(ROOT / "examples" / "portfolio_momentum.py"), cwd=universe)
    v = verdict(res)
    assert v["accepted"], v["reason"]
    assert v["metrics"]["splits"]["val"]["instruments"] == 1.0 and "bh_sharpe" in v["metrics"]["splits"]["val"]
