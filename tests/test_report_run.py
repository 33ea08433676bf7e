"""The report of a real short run (prepare, the loop, report, final, report again, as a user runs them):
the best candidate's code keeps its lines, folds are named for what they are, every headline figure
stands beside buy and hold, and the statistics lead with the honest verdict."""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd
import pytest

from alphaloop.evaluate.scoring import FOLD_WARMUP_BARS
from alphaloop.present.report.analysis import ROLLING_BARS, WORST_DRAWDOWNS
from alphaloop.run.learnings import PROMPT_CHARS, Learnings
from alphaloop.run.workdir import Workdir
from tests.test_universe_data import run


def section(html: str, sid: str) -> str:
    match = re.search(rf'<(section|header) id="{sid}">.*?</(section|header)>', html, re.S)
    assert match, f"the report has no {sid} section"
    return match.group(0)


def text_of(html: str) -> str:
    """The visible text of an HTML fragment (images left out), for wording assertions."""
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", re.sub(r"<img[^>]+>", "", html)))


@pytest.fixture(scope="module")
def short_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """prepare (bundled sample), a 6-iteration offline loop, report; then final and report again."""
    root = tmp_path_factory.mktemp("short_run")
    steps = [("prepare.py", "--source", "sample", "--out", "d"),
             ("harness.py", "--iterations", "6", "--stress-paths", "4", "--proposer", "offline", "--data", "d",
              "--workdir", "w")]
    for step in steps:
        res = run(*step, cwd=root)
        assert res.returncode == 0, res.stdout + res.stderr
    (root / "before_final.html").write_text((root / "w" / "report.html").read_text(encoding="utf-8"),
                                            encoding="utf-8")
    for step in (("harness.py", "final", "--data", "d", "--workdir", "w"),
                 ("harness.py", "report", "--data", "d", "--workdir", "w")):
        res = run(*step, cwd=root)
        assert res.returncode == 0, res.stdout + res.stderr
    return root


def test_best_code_keeps_its_lines_and_is_highlighted(short_run: Path) -> None:
    html = (short_run / "w" / "report.html").read_text(encoding="utf-8")
    best = section(html, "best")
    code = re.search(r'<pre class="code hl"><code>(.*?)</code></pre>', best, re.S)
    assert code, "no highlighted code block"
    lines = code.group(1).splitlines()
    assert len(lines) > 10, "the code lost its line breaks"
    assert any(line.startswith("    ") for line in lines), "indentation lost"
    assert '<span class="k">def</span>' in code.group(1)
    assert "<script" not in code.group(1)


def test_folds_are_sub_periods_of_train_in_help_and_report(short_run: Path) -> None:
    html = (short_run / "w" / "report.html").read_text(encoding="utf-8")
    folds = text_of(section(html, "folds"))
    assert "train+val" not in folds
    assert "sub-period" in folds and "not re-fitted" in folds and "validation is in no fold" in folds
    assert "first fold starts" in folds
    res = run("harness.py", "--help", cwd=short_run)
    assert "train+validation" not in res.stdout and "sub-periods of train" in " ".join(res.stdout.split())


def test_statistics_lead_with_the_honest_verdict(short_run: Path) -> None:
    stats = section((short_run / "w" / "report.html").read_text(encoding="utf-8"), "stats")
    first_box = re.search(r'<div class="verdict (ok|no)"><b>([^<]*)</b>', stats)
    assert first_box and first_box.group(2) == "Verdict:"
    words = text_of(stats)
    assert "effective trials" in words and "excess over buy and hold" in words
    assert words.index("Verdict:") < words.index("deflated Sharpe")
    assert 'class="verdict ok"' not in stats or "Beats buy and hold" in words  # green only when SPA says it beats


def test_headline_figures_stand_beside_buy_and_hold(short_run: Path) -> None:
    before = (short_run / "before_final.html").read_text(encoding="utf-8")
    after = (short_run / "w" / "report.html").read_text(encoding="utf-8")
    assert "not read" in text_of(section(before, "summary"))
    cards = text_of(section(after, "summary"))
    assert re.search(r"test Sharpe -?\d+\.\d\d iter \d+; buy &amp; hold -?\d+\.\d\d", cards), cards[:600]
    population = text_of(section(after, "population"))
    assert "val B&amp;H Sharpe" in population and "2nd market B&amp;H Sharpe" in population
    assert "enter when" in population  # what the member is, not only its last change
    assert "buy and hold" in text_of(section(after, "progress"))


def test_trade_analysis_and_the_equity_csv(short_run: Path) -> None:
    html = (short_run / "w" / "report.html").read_text(encoding="utf-8")
    words = text_of(section(html, "analysis"))
    for label in ("profit factor", "expectancy", "average win", "average loss", "longest losing streak",
                  "Worst drawdowns, val split", "Worst drawdowns, test split", "bars under water",
                  "buy and hold's deepest", "best_equity.csv"):
        assert label.replace("'", "&#x27;") in words, label
    assert section(html, "analysis").count("<img") >= 3  # monthly heatmaps (val, test) and rolling Sharpe
    csv = pd.read_csv(short_run / "w" / "best_equity.csv")
    assert list(csv.columns) == ["date", "split", "position", "return", "equity", "bh_return", "bh_equity"]
    assert list(dict.fromkeys(csv["split"])) == ["train", "val", "test"]
    val = csv[csv["split"] == "val"]
    assert val["equity"].iloc[0] == 1.0 and val["bh_equity"].iloc[0] == 1.0
    growth = (1.0 + val["return"]).prod()
    assert abs(growth - val["equity"].iloc[-1]) < 1e-6


def test_the_report_docs_quote_the_code_constants() -> None:
    text = " ".join((Path(__file__).resolve().parents[1] / "docs" / "report.md").read_text(encoding="utf-8").split())
    assert f"rolling Sharpe over {ROLLING_BARS} bars" in text
    assert WORST_DRAWDOWNS == 5 and "the five worst drawdowns" in text
    assert FOLD_WARMUP_BARS == 252 and "at most a year of train" in text


def test_learnings_head_carries_the_morning_verdict_and_the_test_reading(short_run: Path) -> None:
    text = (short_run / "w" / "learnings.md").read_text(encoding="utf-8")
    head = text.split("## Recent iterations")[0]
    lines = head.splitlines()
    first = next(i for i, line in enumerate(lines) if line.startswith("- "))
    assert lines[first].startswith("- Morning verdict (end of run, val split, best iter ")
    assert "DSR" in lines[first] and "SPA" in lines[first]
    assert lines[first + 1].startswith("- Test split (read by harness.py final 1 time; never shown to the model)")
    assert "buy and hold" in lines[first + 1]
    assert "Rejection reasons seen: none yet" not in head
    assert not re.search(r"n=\d+ held=\d+", text)


def test_the_prompt_never_carries_the_test_reading(short_run: Path) -> None:
    state = Workdir(short_run / "w").read_state()
    view = Learnings.from_json(state.learnings).prompt_view()
    assert "Test split (read by" not in view and "test sharpe" not in view


def test_the_workdir_docs_quote_the_prompt_bound() -> None:
    text = (Path(__file__).resolve().parents[1] / "docs" / "workdir.md").read_text(encoding="utf-8")
    assert f"`learnings.PROMPT_CHARS` = {PROMPT_CHARS:,} characters" in text
