"""The loop driven by an LLM over real HTTP: a scripted OpenAI-compatible server on 127.0.0.1."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

from fake_openai import FakeOpenAI, closed_port_url, error, good, slow

ROOT = Path(__file__).resolve().parent.parent

REGION = '''def generate_features(df):
    df["fast"] = df["Close"].ewm(span={fast}, adjust=False).mean()
    df["slow"] = df["Close"].rolling({slow}).mean()
    return df


def strategy_logic(row):
    if pd.isna(row["slow"]):
        return 0
    return 1 if row["fast"] > row["slow"] else -1
'''

NOTES = """```markdown
Hypothesis: a faster EMA reacts sooner to trend changes.
Change: EMA {fast} against SMA {slow}.
Expected effect: validation Sharpe rises.
Expect: sharpe up 0.05
```"""

HOSTILE = '''```python
import os
def generate_features(df):
    os.system("touch /tmp/alphaloop-pwned")
    return df
def strategy_logic(row):
    return 0
```'''


def reply(fast: int, slow: int) -> str:
    return f"Here is my proposal.\n```python\n{REGION.format(fast=fast, slow=slow)}```\n{NOTES.format(fast=fast, slow=slow)}"


def full_file_reply(fast: int, slow: int) -> str:
    text = (ROOT / "trade.py").read_text()
    start = text.index("def generate_features")
    end = text.index("# === ALPHALOOP CANDIDATE REGION END")
    body = text[:start] + REGION.format(fast=fast, slow=slow) + "\n" + text[end:]
    return f"```py\r\n{body.replace(chr(10), chr(13) + chr(10))}```\r\n{NOTES.format(fast=fast, slow=slow)}"


def local_env(**values: str) -> dict[str, str]:
    """The environment for a harness talking to 127.0.0.1: no proxy may stand in between."""
    proxies = {"HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy"}
    return {**{k: v for k, v in os.environ.items() if k not in proxies}, "NO_PROXY": "*", **values}


def run(fake: FakeOpenAI, data: Path, wd: Path, iterations: int) -> subprocess.CompletedProcess:
    env = local_env(OPENAI_BASE_URL=fake.base_url, OPENAI_API_KEY="sk-test", OPENAI_MODEL="fake-model")
    return subprocess.run([sys.executable, str(ROOT / "harness.py"), "--iterations", str(iterations), "--max-fails", "0",
                           "--timeout", "4", "--retries", "2", "--retry-backoff", "0.05", "--stress-paths", "0", "--workdir", str(wd),
                           "--data", str(data)], env=env, cwd=wd.parent, capture_output=True, text=True, timeout=300)


def test_llm_loop_survives_failures_records_tokens_and_resumes(frozen_data: Path, tmp_path: Path) -> None:
    data = tmp_path / "data"
    shutil.copytree(frozen_data, data)
    wd = tmp_path / "run"
    canary = Path("/tmp/alphaloop-pwned")
    canary.unlink(missing_ok=True)
    with FakeOpenAI() as fake:
        fake.script(
            good(reply(10, 40), usage=(1200, 300)),           # iteration 1: a good reply
            error(500), good(full_file_reply(15, 60)),        # iteration 2: a 500, then a whole trade.py
            good("I would lengthen the slow average, but I have no code for you."),  # 3: no code
            good(HOSTILE),                                     # 4: hostile code
            slow(10.0, reply(5, 20)), good(reply(12, 50)),    # 5: slower than the timeout, then fine
        )                                                      # 6: then the endpoint stays down (500s)
        res = run(fake, data, wd, iterations=8)
        assert res.returncode == 3, res.stdout + res.stderr
        assert "rerun the same command to resume at iteration 6" in res.stdout
        records = {n: json.loads((wd / f"iter_{n}_results.json").read_text()) for n in range(6)}
        assert not (wd / "iter_6_results.json").exists() and not (wd / "iter_6_trade.py").exists()
        assert records[1]["status"] == "accepted" and records[1]["model"] == "fake-model"
        assert records[1]["tokens"] == {"prompt": 1200, "completion": 300}
        assert records[1]["proposal"]["expectation"]["metric"] == "sharpe" and records[1]["hypothesis_held"] in (True, False)
        assert records[2]["status"] == "accepted" and "ewm(span=15" in (wd / "iter_2_trade.py").read_text()
        assert (records[3]["status"], records[3]["stage"]) == ("rejected", "proposal")
        assert (records[4]["status"], records[4]["stage"]) == ("rejected", "gate") and "import" in records[4]["reason"]
        assert records[5]["status"] == "accepted" and "rolling(50)" in (wd / "iter_5_trade.py").read_text()
        assert not canary.exists()
        state = json.loads((wd / "state.json").read_text())
        assert state["tokens"]["prompt"] == sum(r["tokens"]["prompt"] for r in records.values()) >= 1200 + 100 * 4
        assert state["next_iteration"] == 6
        test_start = json.loads((data / "manifest.json").read_text())["splits"]["test"]["start"]
        sent = json.dumps(fake.requests)
        assert test_start not in sent  # nothing from the locked test split reaches the model
        assert "iter 4 rejected at gate" in sent  # the latest failure is fed back
        assert "costs 2 basis points" in sent  # the model is told the run's real costs

        fake.script(*(good(reply(8 + k, 30 + 5 * k)) for k in range(3)))
        res = run(fake, data, wd, iterations=8)
        assert res.returncode == 0, res.stdout + res.stderr
        assert all((wd / f"iter_{n}_results.json").exists() for n in range(9))
        assert [line.split("\t")[0] for line in (wd / "results.tsv").read_text().splitlines()[1:]] == [str(n) for n in range(9)]


def test_unreachable_endpoint_stops_cleanly_before_any_iteration_is_lost(frozen_data: Path, tmp_path: Path) -> None:
    wd = tmp_path / "run"
    env = local_env(OPENAI_BASE_URL=closed_port_url(), OPENAI_API_KEY="", OPENAI_MODEL="m")
    res = subprocess.run([sys.executable, str(ROOT / "harness.py"), "--iterations", "3", "--retries", "1", "--stress-paths", "0",
                          "--retry-backoff", "0.01", "--timeout", "1", "--workdir", str(wd), "--data", str(frozen_data)],
                         env=env, cwd=tmp_path, capture_output=True, text=True, timeout=240)
    assert res.returncode == 3, res.stdout + res.stderr
    assert (wd / "iter_0_results.json").exists() and not (wd / "iter_1_results.json").exists()
    assert "Traceback" not in res.stderr and "resume" in res.stdout
