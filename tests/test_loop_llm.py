"""The loop driven by an LLM over real HTTP: a scripted OpenAI-compatible server on 127.0.0.1."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

from fake_openai import Behaviour, FakeOpenAI, closed_port_url, error, good, slow

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
    return (f"Here is my proposal.\n```python\n{REGION.format(fast=fast, slow=slow)}```\n"
            f"{NOTES.format(fast=fast, slow=slow)}")


def full_file_reply(fast: int, slow: int) -> str:
    text = (ROOT / "trade.py").read_text()
    start = text.index("def generate_features")
    end = text.index("# === ALPHALOOP CANDIDATE REGION END")
    body = text[:start] + REGION.format(fast=fast, slow=slow) + "\n" + text[end:]
    return f"```py\r\n{body.replace(chr(10), chr(13) + chr(10))}```\r\n{NOTES.format(fast=fast, slow=slow)}"


def unmarked_file_reply(fast: int, slow: int) -> str:
    """A whole file without alphaloop's markers, as models write one: the loop keeps the functions only."""
    body = (f'"""A trend strategy."""\nimport pandas as pd\n\n{REGION.format(fast=fast, slow=slow)}\n\n'
            'class Backtester:\n    pass\n\n\nif __name__ == "__main__":\n    print(Backtester())\n')
    return f"```python\n{body}```\n{NOTES.format(fast=fast, slow=slow)}"


def local_env(**values: str) -> dict[str, str]:
    """The environment for a harness talking to 127.0.0.1: no proxy may stand in between."""
    proxies = {"HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy"}
    return {**{k: v for k, v in os.environ.items() if k not in proxies}, "NO_PROXY": "*", **values}


def run(fake: FakeOpenAI, data: Path, wd: Path, iterations: int, *extra: str) -> subprocess.CompletedProcess:
    fake.models = ["fake-model"]  # the pre-run check lists models, so it takes nothing from the scripted replies
    env = local_env(OPENAI_BASE_URL=fake.base_url, OPENAI_API_KEY="sk-test", OPENAI_MODEL="fake-model")
    return subprocess.run([sys.executable, str(ROOT / "harness.py"), "--iterations", str(iterations),
                           "--max-fails", "0", "--timeout", "4", "--retries", "2", "--retry-backoff", "0.05",
                           "--stress-paths", "0",
                           "--workdir", str(wd), "--data", str(data), *extra],
                          env=env, cwd=wd.parent, capture_output=True, text=True, timeout=300)


def last_line(text: str) -> str:
    return text.rstrip().splitlines()[-1]


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
        # the error comes last, after the summary, so the summary never buries it
        assert "resume at iteration 6" in last_line(res.stdout)
        assert res.stdout.rindex("error: the LLM endpoint is down") > res.stdout.index("stopped: endpoint-down")
        records = {n: json.loads((wd / f"iter_{n}_results.json").read_text()) for n in range(6)}
        assert not (wd / "iter_6_results.json").exists() and not (wd / "iter_6_trade.py").exists()
        assert records[1]["status"] == "accepted" and records[1]["model"] == "fake-model"
        assert records[1]["tokens"] == {"prompt": 1200, "completion": 300}
        assert records[1]["proposal"]["expectation"]["metric"] == "sharpe"
        assert records[1]["hypothesis_held"] in (True, False)
        assert records[2]["status"] == "accepted" and "ewm(span=15" in (wd / "iter_2_trade.py").read_text()
        assert (records[3]["status"], records[3]["stage"]) == ("rejected", "proposal")
        assert (records[4]["status"], records[4]["stage"]) == ("rejected", "gate") and "import" in records[4]["reason"]
        assert records[5]["status"] == "accepted" and "rolling(50)" in (wd / "iter_5_trade.py").read_text()
        assert not canary.exists()
        # every reply is kept whole beside its iteration; what a whole-file reply lost is in the record
        assert (wd / "iter_1_reply.md").read_text() == reply(10, 40) and records[1]["reply_file"] == "iter_1_reply.md"
        assert "no code for you" in (wd / "iter_3_reply.md").read_text()
        assert "def generate_features" in (wd / "iter_2_reply.md").read_text()
        assert not (wd / "iter_0_reply.md").exists()
        assert res.stdout.count("warning: the server counted") == 1  # usage of 100 prompt tokens: warned once
        state = json.loads((wd / "state.json").read_text())
        assert state["tokens"]["prompt"] == sum(r["tokens"]["prompt"] for r in records.values()) >= 1200 + 100 * 4
        assert state["next_iteration"] == 6
        test_start = json.loads((data / "manifest.json").read_text())["splits"]["test"]["start"]
        sent = json.dumps(fake.requests)
        assert test_start not in sent  # nothing from the locked test split reaches the model
        assert "iter 4 rejected at gate" in sent  # the latest failure is fed back
        assert "costs 2 basis points" in sent  # the model is told the run's real costs

        fake.script(good(unmarked_file_reply(9, 33)), *(good(reply(8 + k, 30 + 5 * k)) for k in range(1, 3)))
        res = run(fake, data, wd, iterations=8)
        assert res.returncode == 0, res.stdout + res.stderr
        record = json.loads((wd / "iter_6_results.json").read_text())
        assert record["status"] == "accepted" and "class Backtester" in record["proposal"]["dropped"]
        assert "class Backtester" in (wd / "iter_6_reply.md").read_text()
        assert all((wd / f"iter_{n}_results.json").exists() for n in range(9))
        rows = (wd / "results.tsv").read_text().splitlines()[1:]
        assert [line.split("\t")[0] for line in rows] == [str(n) for n in range(9)]


def harness_llm(env: dict[str, str], cwd: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(ROOT / "harness.py"), "--proposer", "llm", "--stress-paths", "0", *args],
                          env=env, cwd=cwd, capture_output=True, text=True, timeout=120)


def test_llm_without_an_endpoint_is_refused_at_once_and_writes_nothing(tmp_path: Path) -> None:
    env = local_env(OPENAI_BASE_URL="", OPENAI_API_KEY="", OPENAI_MODEL="")
    res = harness_llm(env, tmp_path, "--workdir", str(tmp_path / "run"), "--data", str(tmp_path / "data"))
    assert res.returncode == 2, res.stdout + res.stderr
    line = res.stderr.strip()
    assert line.startswith("error: --proposer llm needs an endpoint") and len(line.splitlines()) == 1
    assert "OPENAI_BASE_URL" in line and "--proposer offline" in line and "Traceback" not in res.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == []  # no workdir, no data frozen


def test_unreachable_endpoint_fails_the_check_before_anything_is_written(frozen_data: Path, tmp_path: Path) -> None:
    wd = tmp_path / "run"
    env = local_env(OPENAI_BASE_URL=closed_port_url(), OPENAI_API_KEY="", OPENAI_MODEL="m")
    res = harness_llm(env, tmp_path, "--iterations", "3", "--retries", "1", "--retry-backoff", "0.01", "--timeout", "1",
                      "--workdir", str(wd), "--data", str(frozen_data))
    assert res.returncode == 3, res.stdout + res.stderr
    assert not wd.exists()
    assert "Traceback" not in res.stderr and "did not answer" in res.stderr and "OPENAI_BASE_URL" in res.stderr


def test_wrong_key_fails_the_check_and_an_existing_run_is_untouched(frozen_data: Path, tmp_path: Path) -> None:
    wd = tmp_path / "run"
    with FakeOpenAI() as fake:
        fake.script(good(reply(10, 40)))
        assert run(fake, frozen_data, wd, 1).returncode == 0
        before = {p.name: p.read_bytes() for p in wd.iterdir()}
        fake.models_status = 401
        env = local_env(OPENAI_BASE_URL=fake.base_url, OPENAI_API_KEY="sk-wrong", OPENAI_MODEL="fake-model")
        res = harness_llm(env, tmp_path, "--iterations", "3", "--workdir", str(wd), "--data", str(frozen_data))
        assert res.returncode == 3, res.stdout + res.stderr
        assert "refused the check" in res.stderr and "OPENAI_API_KEY" in res.stderr
        assert {p.name: p.read_bytes() for p in wd.iterdir()} == before
        assert len(fake.requests) == 1  # only iteration 1's proposal: the check asked /models, not the model


def test_endpoint_down_after_one_trial_prints_the_error_alone(frozen_data: Path, tmp_path: Path) -> None:
    wd = tmp_path / "run"
    with FakeOpenAI() as fake:  # nothing scripted: every chat request fails with a 500
        res = run(fake, frozen_data, wd, 3, "--max-reply-tokens", "321")
        assert res.returncode == 3, res.stdout + res.stderr
        assert fake.requests and all(r["json"].get("max_tokens") == 321 for r in fake.requests)
    assert "resume at iteration 1" in last_line(res.stdout) and "error: the LLM endpoint is down" in res.stdout
    assert "statistics:" not in res.stdout and "report:" not in res.stdout  # no summary for a single trial
    state = json.loads((wd / "state.json").read_text())
    assert state["next_iteration"] == 1 and state["stop_reason"].startswith("endpoint-down")


def test_token_budget_stops_at_an_iteration_boundary_and_a_rerun_gets_a_fresh_one(frozen_data: Path,
                                                                                 tmp_path: Path) -> None:
    wd = tmp_path / "run"
    with FakeOpenAI() as fake:
        fake.script(*(good(reply(8 + k, 30 + 5 * k), usage=(100, 50)) for k in range(6)))
        res = run(fake, frozen_data, wd, 20, "--max-tokens", "200")
        assert res.returncode == 0, res.stdout + res.stderr
        state = json.loads((wd / "state.json").read_text())
        assert state["next_iteration"] == 3 and state["tokens"] == {"prompt": 200, "completion": 100}
        line = next(x for x in res.stdout.splitlines() if x.startswith("stopped: "))
        assert line.startswith("stopped: max-tokens: 300 LLM tokens used in this command (--max-tokens 200)")
        assert "resume at iteration 3" in line and "time left: about" in res.stdout
        res = run(fake, frozen_data, wd, 20, "--max-tokens", "200")
        assert res.returncode == 0, res.stdout + res.stderr
        assert json.loads((wd / "state.json").read_text())["next_iteration"] == 5


def test_three_workers_keep_three_requests_in_flight_and_count_every_token(frozen_data: Path, tmp_path: Path) -> None:
    wd = tmp_path / "run"
    with FakeOpenAI() as fake:
        # each reply takes 3 s: iteration 0 (the baseline, no request) is committed first, then 1, 2 and 3 start
        fake.script(*(Behaviour(content=reply(8 + k, 30 + 5 * k), usage=(100 + k, 50), delay_s=3.0) for k in range(6)))
        res = run(fake, frozen_data, wd, 6, "--workers", "3", "--timeout", "20")
        assert res.returncode == 0, res.stdout + res.stderr
        assert fake.max_active == 3  # the server saw three requests overlap, and never more
        assert len(fake.requests) == 6
    records = [json.loads((wd / f"iter_{n}_results.json").read_text()) for n in range(7)]
    assert [r["proposed_from"] for r in records] == [None, 0, 0, 0, 1, 2, 3]
    assert all("parent" in r for r in records) and records[1]["parent"] == 0
    state = json.loads((wd / "state.json").read_text())
    assert state["tokens"] == {"prompt": sum(100 + k for k in range(6)), "completion": 300}
    assert state["tokens"]["prompt"] == sum(r["tokens"]["prompt"] for r in records)
    assert "iteration k proposes from the state committed up to k-3" in (wd / "learnings.md").read_text()


def test_a_copy_is_called_a_duplicate_of_its_iteration_in_the_line_the_tsv_and_the_report(frozen_data: Path,
                                                                                          tmp_path: Path) -> None:
    data = tmp_path / "data"
    shutil.copytree(frozen_data, data)
    wd = tmp_path / "run"
    copy = reply(10, 40).replace('    return df\n', '    return df  # the same rule, written again\n', 1)
    with FakeOpenAI() as fake:
        fake.script(good(reply(10, 40)), good(copy))
        res = run(fake, data, wd, 2)
    assert res.returncode == 0, res.stdout + res.stderr
    row = (wd / "results.tsv").read_text().splitlines()[3].split("\t")
    assert row[0] == "2" and "duplicate:1" in row  # the same validation positions as iteration 1
    line = next(x for x in res.stdout.splitlines() if x.startswith("[iter 2/2]"))
    assert "duplicate of iter 1" in line and "not in top" not in line
    report = (wd / "report.html").read_text(encoding="utf-8")
    assert "accepted, duplicate of iter 1" in report
