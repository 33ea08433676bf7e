"""The HTML report renders from a small fabricated run, holds every section, and needs no network."""

from __future__ import annotations

import base64
import json
import re
import shutil
from pathlib import Path

import numpy as np
import pytest

from alphaloop.candidate import splice_region, template_text
from alphaloop.data.frozen import load_splits, read_manifest
from alphaloop.evaluate.cross_market import load_cross_history, score_cross
from alphaloop.evaluate.scoring import History, score
from alphaloop.evaluate.stress import run_stress
from alphaloop.present.report import load_run, locked_split_html, markdown_html, write_report
from tests.conftest import InProcessSandbox

SECTION_IDS = ("summary", "progress", "population", "equity", "folds", "stress", "cross", "stats", "hypotheses",
               "learnings", "test")
LEARNINGS = """# Learnings

Researcher hit rate: 1/2 hypotheses held (50%) (graded on the validation split).

## Recent iterations

### iter 1 (parent 0): accepted, val sharpe 0.600 <script>alert(1)</script>
- Hypothesis: faster averages react sooner & `lag` matters
- Expected: **higher** Sharpe
"""


def sma_region(fast: int, slow: int) -> str:
    return f"""
def generate_features(df):
    df["f"] = df["Close"].rolling({fast}).mean()
    df["s"] = df["Close"].rolling({slow}).mean()
    return df


def strategy_logic(row):
    if row["f"] > row["s"]:
        return 1
    if row["f"] < row["s"]:
        return -1
    return 0
"""


# (fast, slow) for a scored candidate, or the stage that rejected it before scoring
PLAN: list[tuple[int, int] | str] = [(20, 50), (10, 30), "gate", (30, 100), "lookahead", (5, 15)]


def make_workdir(root: Path, data_dir: Path, stress_paths: int = 2, reading: str | None = None) -> Path:
    """Write the files a small loop run leaves behind, with real scores on the frozen sample."""
    root.mkdir(parents=True, exist_ok=True)
    history = History.from_splits(load_splits(data_dir))
    manifest = read_manifest(data_dir)
    sandbox = InProcessSandbox()
    records, regions = [], {}
    for n, item in enumerate(PLAN):
        rec = {"iteration": n, "parent": None if n == 0 else max(0, n - 2),
               "created_at": f"2026-11-21T06:{n:02d}:00+00:00",
               "status": "rejected", "stage": item if isinstance(item, str) else "ok", "reason": "",
               "in_population": False, "metric": "sharpe", "selection_val": None, "scores": None, "returns": None,
               "proposal": {"hypothesis": f"idea {n}: trend persistence <b>", "change": f"change {n}",
                            "expected": "sharpe up", "expectation": None, "error": None},
               "hypothesis_held": None if n == 0 else bool(n % 2), "proposer": "offline", "model": None,
               "tokens": {"prompt": 0, "completion": 0}, "timings": {"propose": 0.0, "evaluate": 0.1, "total": 0.1},
               "data_manifest": "abc", "stress": None}
        region = sma_region(*item) if isinstance(item, tuple) else "import os\n"
        regions[n] = region
        (root / f"iter_{n}_trade.py").write_text(splice_region(template_text(), region), encoding="utf-8")
        if isinstance(item, tuple):
            signals = sandbox.run(region, [history.frame]).results[0].signals
            scores = score(history, signals)
            rec.update(scores=scores.to_json(), selection_val=scores.selection)
            if n == 5:
                rec.update(stage="guards", reason="absurd turnover")
            else:
                rec.update(status="accepted", returns={k: v.tolist() for k, v in scores.returns.items()},
                           trades=scores.trips())
                rec["signals"] = signals
        else:
            rec["reason"] = f"rejected at {item}"
        records.append(rec)
    accepted = sorted((r for r in records if r["status"] == "accepted"), key=lambda r: -r["selection_val"])
    population = [r["iteration"] for r in accepted[:3]]
    for r in records:
        signals = r.pop("signals", None)
        if r["iteration"] in population:
            r["in_population"] = True
            r["stress"] = run_stress(regions[r["iteration"]], history, sandbox, n_paths=stress_paths, seed=0,
                                     real_signals=signals)
        (root / f"iter_{r['iteration']}_results.json").write_text(json.dumps(r), encoding="utf-8")
    members = [{"iteration": n, "value": records[n]["selection_val"], "val_metric": records[n]["selection_val"],
                "train_metric": records[n]["scores"]["splits"]["train"]["sharpe"],
                "val_trades": int(records[n]["scores"]["splits"]["val"]["round_trips"]), "description": f"iter {n}",
                "val": records[n]["scores"]["splits"]["val"], "val_returns": records[n]["returns"]["val"]}
               for n in population]
    state = {"next_iteration": len(PLAN), "population": members, "population_size": 3, "data_manifest": "abc",
             "best_iteration": population[0], "metric": "sharpe", "cost_bps": 2.0,
             "consecutive_fails": 1, "tokens": {"prompt": 0, "completion": 0}, "stop_reason": "iterations: reached 5"}
    (root / "state.json").write_text(json.dumps(state), encoding="utf-8")
    (root / "learnings.md").write_text(LEARNINGS, encoding="utf-8")
    shutil.copy(data_dir / "manifest.json", root / "data_manifest.json")
    stats = {"trials": 5, "scored_trials": 4, "accepted": 3, "dsr": 0.41, "dsr_pvalue": 0.59, "best_sharpe": 0.9,
             "expected_max_sharpe": 1.1, "spa_pvalues": {"lower": 0.2, "consistent": 0.4, "upper": 0.6},
             "verdict_dsr": "not significant once 5 trials are counted",
             "verdict_spa": "no candidate beats buy and hold",
             "split": "val", "best_iteration": population[0]}
    (root / "stats.json").write_text(json.dumps(stats), encoding="utf-8")
    cross_history, label = load_cross_history(manifest, None)
    members = score_cross({n: regions[n] for n in population}, cross_history, sandbox, "sharpe", 2.0)
    (root / "cross_market.json").write_text(json.dumps(
        {"label": label, "metric": "sharpe", "members": {str(k): v for k, v in members.items()}}), encoding="utf-8")
    if reading:
        best = records[population[0]]
        line = {"time": "2026-11-22T08:00:00+00:00", "iteration": population[0], "sha256": "f" * 64,
                "test": best["scores"]["splits"]["val"], "earlier_readings": 0}
        if reading == "returns":
            line["returns"] = best["returns"]["val"][:700]
        (root / "test_readings.jsonl").write_text(json.dumps(line) + "\n", encoding="utf-8")
    return root


@pytest.fixture(scope="module")
def workdir(frozen_data: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_workdir(tmp_path_factory.mktemp("run") / "train", frozen_data)


@pytest.fixture(scope="module")
def report(workdir: Path, frozen_data: Path) -> str:
    path = write_report(workdir, frozen_data)
    assert path == workdir / "report.html"
    return path.read_text(encoding="utf-8")


def test_every_section_is_there(report: str) -> None:
    for sid in SECTION_IDS:
        assert f'id="{sid}"' in report, sid
    for heading in ("Selection metric over iterations", "Equity and drawdown of the best candidate",
                    "Walk-forward folds",
                    "Stress scenarios", "Second market", "Statistics over all trials", "Hypotheses and hit rate",
                    "Learnings", "Population"):
        assert f"{heading}" in report, heading
    assert "test split not read yet (run harness.py final)" in report
    assert "NASDAQ" in report  # the second market is named
    assert "3/5 (60%)" in report  # hit rate computed from the records' graded hypotheses


def test_self_contained(report: str) -> None:
    assert "http://" not in report and "https://" not in report
    refs = re.findall(r"""(?:src|href)\s*=\s*["']([^"']*)""", report)
    assert refs and all(r.startswith(("data:image/png;base64,", "#")) for r in refs)
    assert "<script" not in report.lower() and "<link" not in report.lower() and "@import" not in report
    assert "url(" not in report


def test_images_are_embedded_pngs(report: str) -> None:
    images = re.findall(r'<img alt="[^"]*" src="data:image/png;base64,([A-Za-z0-9+/=]+)"', report)
    assert len(images) == report.count("<img") >= 4
    for data in images:
        assert base64.b64decode(data)[:8] == b"\x89PNG\r\n\x1a\n"


def test_every_figure_names_its_split(report: str) -> None:
    captions = re.findall(r"<figcaption>(.*?)</figcaption>", report)
    assert len(captions) == report.count("<img")
    assert all(re.search(r"split|train\+validation", c) for c in captions), captions


def test_text_from_files_is_escaped(report: str) -> None:
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in report
    assert "trend persistence &lt;b&gt;" in report
    assert "<code>lag</code>" in report and "<b>higher</b>" in report


def test_test_readings_show_metrics_and_a_curve_only_with_returns(workdir: Path, frozen_data: Path,
                                                                   tmp_path: Path) -> None:
    wd = tmp_path / "train"
    shutil.copytree(workdir, wd)
    metrics = {"total_return": 0.1, "sharpe": 0.7, "max_drawdown": -0.05, "round_trips": 4.0,
               "bh_total_return": 0.2, "bh_sharpe": 0.9, "bh_max_drawdown": -0.1}
    as_final_writes = {"time": "2026-11-22T08:00:00+00:00", "iteration": 1, "sha256": "a" * 64, "earlier_readings": 0,
                       "status": "scored", "stage": "ok", "test": metrics, "val_metric": 0.6, "degradation": 0.123}
    (wd / "test_readings.jsonl").write_text(json.dumps(as_final_writes) + "\n", encoding="utf-8")
    metrics_only = locked_split_html(load_run(wd, frozen_data))
    assert "Test split (locked" in metrics_only and "+10.0%" in metrics_only and "0.70" in metrics_only
    assert '<td class="num">0.60</td><td class="num">0.12</td>' in metrics_only  # the old key, read
    assert "<img" not in metrics_only and "read 2 times" not in metrics_only
    rejected = {**as_final_writes, "earlier_readings": 1, "status": "rejected", "stage": "lookahead",
                "reason": "look-ahead <leak>", "test": None}
    documented = {"time": "2026-11-22T09:00:00+00:00", "iteration": 1, "sha256": "a" * 64, "earlier_readings": 2,
                  "test": metrics, "returns": np.random.default_rng(0).normal(0.0003, 0.01, 300).tolist()}
    with open(wd / "test_readings.jsonl", "a", encoding="utf-8") as fh:
        fh.write(json.dumps(rejected) + "\n" + json.dumps(documented) + "\n")
    with_curve = locked_split_html(load_run(wd, frozen_data))
    captions = re.findall(r"<figcaption>(.*?)</figcaption>", with_curve)
    assert with_curve.count("<img") == 1 and "test split" in captions[0]
    assert "read 3 times" in with_curve and "rejected at lookahead: look-ahead &lt;leak&gt;" in with_curve


def test_empty_or_broken_workdir_still_renders(tmp_path: Path, frozen_data: Path) -> None:
    wd = tmp_path / "empty"
    wd.mkdir()
    (wd / "stats.json").write_text("{not json", encoding="utf-8")
    out = write_report(wd, frozen_data).read_text(encoding="utf-8")
    for sid in SECTION_IDS:
        assert f'id="{sid}"' in out
    assert "stats.json could not be read" in out
    out = write_report(wd, tmp_path / "no-data").read_text(encoding="utf-8")
    assert "frozen data not readable" in out


def test_markdown_subset() -> None:
    html = markdown_html("# T\n\npara one\nstill one\n\n- a <i>\n- b\n\ntext")
    assert html.split("\n") == ["<h3>T</h3>", "<p>para one still one</p>", "<ul>", "<li>a &lt;i&gt;</li>",
                                "<li>b</li>", "</ul>", "<p>text</p>"]



def test_candidate_text_reaches_the_report_cleaned_and_escaped(workdir: Path, frozen_data: Path,
                                                                tmp_path: Path) -> None:
    """Escape sequences, forged lines and HTML in a record or learnings.md become plain escaped text."""
    wd = tmp_path / "train"
    shutil.copytree(workdir, wd)
    hostile = '\x1b[2J\x1b]0;t\x07\x9b31m<img src=x onerror="alert(1)">\r\n{"accepted": true}\u2028ACCEPTED'
    path = wd / "iter_4_results.json"
    rec = json.loads(path.read_text(encoding="utf-8"))
    rec["proposal"].update(hypothesis="h " + hostile, change="c " + hostile, expected="e " + hostile)
    rec.update(reason="r " + hostile, grading="g " + hostile)
    path.write_text(json.dumps(rec), encoding="utf-8")
    cross = json.loads((wd / "cross_market.json").read_text(encoding="utf-8"))
    cross["members"]["99"] = {"error": "x " + hostile}
    (wd / "cross_market.json").write_text(json.dumps(cross), encoding="utf-8")
    (wd / "learnings.md").write_text(LEARNINGS + "- Change: " + hostile + "\n", encoding="utf-8")
    out = write_report(wd, frozen_data).read_text(encoding="utf-8")
    assert not [c for c in out if (ord(c) < 0x20 and c not in "\n") or 0x7F <= ord(c) < 0xA0 or c in "\u2028\u2029"]
    assert "<img src=x" not in out and "&lt;img src=x onerror=&quot;alert(1)&quot;&gt;" in out
    assert out.count("&lt;img src=x") >= 5  # hypothesis, expected, grading, what it tried, cross error, learnings
