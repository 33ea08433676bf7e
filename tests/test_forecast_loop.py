"""``python harness.py --task forecast`` end to end: the loop, its files, final and the report; and the LLM
path over real HTTP, whose prompts must carry the forecast contract and figures, never the test split."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

from fake_openai import FakeOpenAI, good

from tests.test_loop_llm import local_env

ROOT = Path(__file__).resolve().parent.parent

FORECASTER = '''```python
def generate_features(df):
    ret = df["Close"].pct_change()
    df["vol"] = ret.rolling(20).std()
    df["vol_avg"] = df["vol"].rolling(250).mean()
    return df


def forecast(row):
    if row["vol_avg"] != row["vol_avg"]:
        return {h: (1 / 3, 1 / 3, 1 / 3) for h in (1, 3, 5, 10)}
    wild = row["vol"] > row["vol_avg"]
    p = (0.4, 0.2, 0.4) if wild else (0.28, 0.44, 0.28)
    return {h: p for h in (1, 3, 5, 10)}
```
```markdown
Hypothesis: volatility clusters, so turbulent spells make large moves likelier.
Change: condition on 20-bar volatility against its 250-bar average.
Expected effect: the mean RPS skill rises above zero.
Expect: rps_skill_mean up 0.01
```'''


def harness(*args: str, cwd: Path, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(ROOT / "harness.py"), *args], cwd=cwd, capture_output=True,
                          text=True, timeout=600, env=env)


def test_forecast_loop_final_and_report(frozen_data: Path, tmp_path: Path) -> None:
    wd = tmp_path / "run"
    res = harness("--task", "forecast", "--proposer", "offline", "--iterations", "4", "--max-fails", "0",
                  "--workdir", str(wd), "--data", str(frozen_data), cwd=tmp_path)
    assert res.returncode == 0, res.stdout + res.stderr
    assert "metric val rps_skill_mean" in res.stdout and "(climatology 0.000; against the rolling" in res.stdout
    state = json.loads((wd / "state.json").read_text())
    assert state["task"] == "forecast" and state["metric"] == "rps_skill_mean" and state["population"]
    values = [m["value"] for m in state["population"]]
    assert values == sorted(values, reverse=True)  # ranked by validation rps_skill_mean
    rows = (wd / "results.tsv").read_text().splitlines()
    assert rows[0].split("\t")[4:7] == ["val_rps_skill_mean", "val_climatology_rps_skill_mean", "train_rps_skill_mean"]
    assert len(rows) == 6 and all(r.split("\t")[5] == "0.000000" for r in rows[1:] if "accepted" in r)
    learnings = (wd / "learnings.md").read_text()
    assert "val rps_skill_mean" in learnings and "climatology 0.000" in learnings and "val ECE" in learnings
    record = json.loads((wd / "iter_1_results.json").read_text())
    assert record["scores"]["buckets"]["split"] == "train" and "cut_points" in record["scores"]["buckets"]
    stats = json.loads((wd / "forecast_stats.json").read_text())
    assert stats["split"] == "val" and stats["trials"] == 5 and "spa_pvalues" in stats
    val_days = (wd / "forecasts_val.csv").read_text().splitlines()
    assert val_days[0].startswith("date,close,p_down_1,p_flat_1,p_up_1,return_1,bucket_1,rps_1,grade_1")
    report = (wd / "report.html").read_text()
    for needle in ("Skill over iterations", "reliability per horizon on the val split", "Best and worst days",
                   "data:image/png;base64,"):
        assert needle in report, needle
    assert "test split" not in report.split("Summary")[0]
    assert not (wd / "forecasts_test.csv").exists()

    res = harness("final", "--workdir", str(wd), "--data", str(frozen_data), cwd=tmp_path)
    assert res.returncode == 0, res.stdout + res.stderr
    verdict = json.loads(res.stdout.strip().splitlines()[-1])
    assert verdict["metric"] == "rps_skill_mean" and set(verdict["test"]["rps_skill"]) == {"1", "3", "5", "10"}
    assert verdict["readings"] == 1 and verdict["spa_test"] is not None
    test_days = (wd / "forecasts_test.csv").read_text().splitlines()
    manifest = json.loads((frozen_data / "manifest.json").read_text())
    assert test_days[1].startswith(manifest["splits"]["test"]["start"])
    assert len((wd / "test_readings.jsonl").read_text().splitlines()) == 1
    assert "on the test split (read once by `final`" in (wd / "report.html").read_text()

    res = harness("--iterations", "5", "--proposer", "offline", "--workdir", str(wd), "--data", str(frozen_data),
                  cwd=tmp_path)
    assert res.returncode == 2 and "--task forecast" in res.stderr  # a forecast workdir is not a trade one


def test_forecast_loop_with_an_llm_sees_the_contract_and_figures(frozen_data: Path, tmp_path: Path) -> None:
    data = tmp_path / "data"
    shutil.copytree(frozen_data, data)
    wd = tmp_path / "run"
    with FakeOpenAI() as fake:
        fake.models = ["fake-model"]
        fake.script(good(FORECASTER), good(FORECASTER.replace("0.44", "0.46").replace("0.28, 0.46, 0.28",
                                                                                       "0.27, 0.46, 0.27")))
        env = local_env(OPENAI_BASE_URL=fake.base_url, OPENAI_API_KEY="sk-test", OPENAI_MODEL="fake-model")
        res = harness("--task", "forecast", "--iterations", "2", "--max-fails", "0", "--timeout", "10",
                      "--workdir", str(wd), "--data", str(data), cwd=tmp_path, env=env)
        assert res.returncode == 0, res.stdout + res.stderr
        chats = [r for r in fake.requests if r["path"].endswith("/chat/completions")]
        first, second = (json.dumps(r["json"]["messages"]) for r in chats[:2])
    for text in (first, second):
        assert "def forecast(row)" in text and "h=10: down <" in text and "calibrated_correct" in text
        assert not re.search(r"\{\{\w+\}\}", text)  # every placeholder filled
        assert json.loads((data / "manifest.json").read_text())["splits"]["test"]["start"] not in text
    assert "| parent | 1 |" in second  # iteration 2 sees its parent's per-horizon figures beside climatology
    record = json.loads((wd / "iter_1_results.json").read_text())
    assert record["status"] == "accepted", record["reason"]
    assert record["proposal"]["expectation"]["metric"] == "rps_skill_mean" and record["hypothesis_held"] is not None
