"""The loop end to end, as a user runs it: real harness.py processes, real files, real signals."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from alphaloop.run.workdir import Workdir

ROOT = Path(__file__).resolve().parent.parent


def harness(*args: str, cwd: Path, env: dict | None = None, timeout: float = 240) -> subprocess.CompletedProcess:
    full_env = {**os.environ, "OPENAI_API_KEY": "", "OPENAI_BASE_URL": "", **(env or {})}
    return subprocess.run([sys.executable, str(ROOT / "harness.py"), *args], cwd=cwd, env=full_env,
                          capture_output=True, text=True, timeout=timeout)


def summary(workdir: Path) -> list[tuple]:
    """What must be identical between an interrupted and an uninterrupted run."""
    return [(r.iteration, r.parent, r.status, r.stage, r.val_metric, r.in_population)
            for r in Workdir(workdir).records()]


@pytest.fixture
def data_copy(frozen_data: Path, tmp_path: Path) -> Path:
    dst = tmp_path / "data"
    shutil.copytree(frozen_data, dst)
    return dst


def test_offline_loop_writes_every_file_and_stays_off_the_test_split(data_copy: Path, tmp_path: Path) -> None:
    test_csv = data_copy / "test.csv"
    test_csv.unlink()
    os.mkfifo(test_csv)  # opening it for reading would block: the loop must never try
    wd = tmp_path / "run"
    res = harness("--proposer", "offline", "--iterations", "4", "--max-fails", "0", "--workdir", str(wd),
                  "--data", str(data_copy), cwd=tmp_path)
    assert res.returncode == 0, res.stdout + res.stderr
    assert "OFFLINE PROPOSER" in res.stderr
    for n in range(5):
        assert (wd / f"iter_{n}_results.json").is_file()
        record = json.loads((wd / f"iter_{n}_results.json").read_text())
        assert record["proposer"] and record["data_manifest"] and "timings" in record
    assert (wd / "iter_0_trade.py").read_text().count("ALPHALOOP CANDIDATE REGION START") == 1
    # the cost per iteration a night's start and end compare whatever the load: CPU seconds of the loop and its
    # sandbox workers since the previous commit (each candidate's runs are the workers'), none on the first commit
    index = [json.loads(line) for line in (wd / "index.jsonl").read_text().splitlines()]
    assert index[0]["cpu"] is None and all(e["cpu"] > 0.01 for e in index[1:])
    assert [json.loads((wd / f"iter_{n}_results.json").read_text())["timings"].get("cpu") for n in range(5)] == [
        e["cpu"] for e in index]
    rows = (wd / "results.tsv").read_text().strip().splitlines()
    assert rows[0].startswith("n\tparent\tstatus") and [r.split("\t")[0] for r in rows[1:]] == ["0", "1", "2", "3", "4"]
    assert "# Learnings" in (wd / "learnings.md").read_text() and "hit rate" in (wd / "learnings.md").read_text()
    assert (wd / "best_trade.py").is_file() and (wd / "stats.json").is_file()
    records = [json.loads((wd / f"iter_{n}_results.json").read_text()) for n in range(5)]
    stats = json.loads((wd / "stats.json").read_text())
    # the end-of-run statistics must count the run's real trials (a DSR with trials=1 once passed every test)
    assert stats["trials"] == sum(r["stage"] != "proposal" for r in records) > 1
    assert stats["scored_trials"] == sum(bool(r.get("scores")) for r in records)
    assert stats["accepted"] == sum(r["status"] == "accepted" for r in records)
    stress = {k: v.to_json() for k, v in Workdir(wd).read_stress().members.items()}
    population = [m["iteration"] for m in json.loads((wd / "state.json").read_text())["population"]]
    assert sorted(int(k) for k in stress) == sorted(population) and all(v["status"] == "ok" for v in stress.values())
    assert set(json.loads((wd / "cross_market.json").read_text())["members"]) == {str(n) for n in population}
    assert "<html" in (wd / "report.html").read_text()[:500].lower()
    assert "[iter 4/4]" in res.stdout and "trials" in res.stdout.lower()
    assert not list(wd.glob(".*.tmp"))
    assert "returns on: Close as traded (Adj Close equals Close" in res.stdout  # which prices, said at the start
    for r in records:  # the round trips the report lists and draws: one per trade the scores counted
        if r["status"] == "accepted":
            assert {k: len(v) for k, v in r["trades"].items()} == {
                k: int(m["round_trips"]) for k, m in r["scores"]["splits"].items()}


def test_kill_9_then_rerun_resumes_exactly(data_copy: Path, tmp_path: Path) -> None:
    # --eval-timeout 600: the one wall-clock input to a verdict is the evaluation budget; under heavy load
    # (the whole suite beside other work) a candidate could time out in one run and not the other.
    args = ["--proposer", "offline", "--max-fails", "0", "--seed", "7", "--stress-paths", "0", "--eval-timeout", "600",
            "--data", str(data_copy)]
    ref = tmp_path / "ref"
    assert harness(*args, "--iterations", "7", "--workdir", str(ref), cwd=tmp_path).returncode == 0

    wd = tmp_path / "killed"
    env = {**os.environ, "OPENAI_API_KEY": "", "OPENAI_BASE_URL": ""}
    proc = subprocess.Popen([sys.executable, str(ROOT / "harness.py"), *args, "--iterations", "40",
                             "--workdir", str(wd)],
                            cwd=tmp_path, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    deadline = time.time() + 180
    while not (wd / "iter_3_results.json").exists() and time.time() < deadline:
        time.sleep(0.02)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    before = {p.name: p.read_bytes() for p in wd.glob("iter_*_results.json")}
    res = harness(*args, "--iterations", "7", "--workdir", str(wd), cwd=tmp_path)
    assert res.returncode == 0, res.stdout + res.stderr
    assert summary(wd) == summary(ref)
    for name, content in before.items():
        assert (wd / name).read_bytes() == content  # nothing redone
    rows = [r.split("\t")[0] for r in (wd / "results.tsv").read_text().strip().splitlines()[1:]]
    assert rows == [str(n) for n in range(8)]
    assert not list(wd.glob(".*.tmp"))
    state = json.loads((wd / "state.json").read_text())
    ref_state = json.loads((ref / "state.json").read_text())
    assert state["population"] == ref_state["population"]
    assert state["consecutive_fails"] == ref_state["consecutive_fails"]


def test_changed_data_is_refused(data_copy: Path, tmp_path: Path) -> None:
    wd = tmp_path / "run"
    assert harness("--proposer", "offline", "--stress-paths", "0", "--iterations", "0", "--workdir", str(wd),
                   "--data", str(data_copy), cwd=tmp_path).returncode == 0
    subprocess.run([sys.executable, str(ROOT / "prepare.py"), "--source", "sample", "--train-end", "2010-12-31",
                    "--out", str(data_copy), "--force"], check=True, capture_output=True, timeout=120)
    res = harness("--proposer", "offline", "--stress-paths", "0", "--iterations", "2", "--workdir", str(wd),
                  "--data", str(data_copy), cwd=tmp_path)
    assert res.returncode == 2
    assert "no longer matches" in res.stderr and "--workdir" in res.stderr
    assert "prepare.py" in res.stderr and "--force" in res.stderr  # how to restore it
    assert not (wd / "iter_1_results.json").exists()


def stop_line(stdout: str) -> str:
    return next(line for line in stdout.splitlines() if line.startswith("stopped: "))


def test_finished_run_says_how_to_continue(data_copy: Path, tmp_path: Path) -> None:
    wd = tmp_path / "run"
    args = ["--proposer", "offline", "--stress-paths", "0", "--workdir", str(wd), "--data", str(data_copy)]
    res = harness(*args, "--iterations", "1", cwd=tmp_path)
    assert res.returncode == 0
    assert "stopped: iterations: reached --iterations 1; to continue, rerun with --iterations N, N > 1" in res.stdout
    res = harness(*args, "--iterations", "1", cwd=tmp_path)
    assert res.returncode == 0 and "--iterations" in res.stdout
    assert not (wd / "iter_2_results.json").exists()
    # the offline search stalling says so, and what to run instead
    res = harness(*args, "--iterations", "40", "--max-fails", "1", cwd=tmp_path)
    assert res.returncode == 0, res.stdout + res.stderr
    line = stop_line(res.stdout)
    assert line.startswith("stopped: max-fails: 1 consecutive") and "offline search stalled" in line
    assert "--hours 8" in line and "--max-fails 0" in line and "OPENAI_BASE_URL" in line
    last = json.loads((wd / "state.json").read_text())["next_iteration"] - 1
    # asking for no new iterations reports that, not the previous run's max-fails
    res = harness(*args, "--iterations", "1", cwd=tmp_path)
    assert res.returncode == 0 and "max-fails" not in res.stdout
    assert f"already holds iterations 0..{last}" in stop_line(res.stdout) and f"N > {last}" in stop_line(res.stdout)
    assert not (wd / f"iter_{last + 1}_results.json").exists()


def test_ctrl_c_finishes_the_iteration_then_stops_and_resumes(data_copy: Path, tmp_path: Path) -> None:
    wd = tmp_path / "run"
    env = {**os.environ, "OPENAI_API_KEY": "", "OPENAI_BASE_URL": ""}
    cmd = [sys.executable, str(ROOT / "harness.py"), "--proposer", "offline", "--max-fails", "0", "--stress-paths", "0",
           "--workdir", str(wd), "--data", str(data_copy)]
    proc = subprocess.Popen([*cmd, "--iterations", "40"], cwd=tmp_path, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, start_new_session=True)
    deadline = time.time() + 180
    while not (wd / "iter_2_results.json").exists() and time.time() < deadline:
        time.sleep(0.02)
    os.killpg(proc.pid, signal.SIGINT)  # what a terminal's Ctrl-C does: the whole foreground group
    out, err = proc.communicate(timeout=180)
    assert proc.returncode == 130, out + err
    assert "Ctrl-C" in out and "Traceback" not in err
    assert "rerun the same command to resume at iteration" in stop_line(out)
    state = json.loads((wd / "state.json").read_text())
    last = state["next_iteration"] - 1
    assert 2 <= last < 40 and (wd / f"iter_{last}_results.json").exists()
    assert not (wd / f"iter_{last + 1}_results.json").exists() and not (wd / f"iter_{last + 1}_trade.py").exists()
    assert all(json.loads((wd / f"iter_{n}_results.json").read_text())["stage"] != "sandbox" for n in range(last + 1))
    res = subprocess.run([*cmd, "--iterations", str(last + 1)], cwd=tmp_path, env=env, capture_output=True, text=True,
                         timeout=240)
    assert res.returncode == 0 and (wd / f"iter_{last + 1}_results.json").exists()


def test_damaged_workdir_gets_one_clear_line(data_copy: Path, tmp_path: Path) -> None:
    wd = tmp_path / "run"
    args = ["--proposer", "offline", "--stress-paths", "0", "--workdir", str(wd), "--data", str(data_copy)]
    assert harness(*args, "--iterations", "0", cwd=tmp_path).returncode == 0
    (wd / "state.json").write_text('{"metric": "sharpe", "population_si')
    res = harness(*args, "--iterations", "1", cwd=tmp_path)
    assert res.returncode == 2 and "Traceback" not in res.stderr
    assert res.stderr.strip().splitlines()[-1].startswith("error: ") and "state or iteration file" in res.stderr
    afile = tmp_path / "afile"
    afile.write_text("x")
    res = harness("--proposer", "offline", "--workdir", str(afile), "--data", str(data_copy), cwd=tmp_path)
    assert res.returncode == 2 and "cannot use" in res.stderr and "Traceback" not in res.stderr


def test_options_shape_the_run(data_copy: Path, tmp_path: Path) -> None:
    """--population, --metric, --folds, --start-from and --stress-select each change what the run does."""
    start = tmp_path / "start.py"
    text = (ROOT / "trade.py").read_text().replace("rolling(20)", "rolling(10)").replace("rolling(50)", "rolling(30)")
    start.write_text(text)
    wd = tmp_path / "run"
    res = harness("--proposer", "offline", "--iterations", "3", "--max-fails", "0", "--population", "2",
                  "--metric", "total_return", "--folds", "3", "--start-from", str(start), "--stress-select",
                  "--stress-paths", "2", "--workdir", str(wd), "--data", str(data_copy), cwd=tmp_path)
    assert res.returncode == 0, res.stdout + res.stderr
    assert "rolling(10)" in (wd / "iter_0_trade.py").read_text()
    state = json.loads((wd / "state.json").read_text())
    assert state["metric"] == "total_return" and state["folds"] == 3 and len(state["population"]) <= 2
    from alphaloop.evaluate.stress import stress_penalty

    for n in range(4):
        rec = Workdir(wd).record(n)
        if rec.status != "accepted":
            continue
        r = rec.to_json()
        assert len(r["scores"]["folds"]) == 3 and rec.val_metric == r["scores"]["splits"]["val"]["total_return"]
        assert r["stress"]["status"] == "ok" and r["stress"]["n_paths"] == 2
        assert rec.selection == pytest.approx(rec.val_metric + stress_penalty(r["stress"]))
    res = harness("--proposer", "offline", "--iterations", "4", "--metric", "sharpe", "--workdir", str(wd),
                  "--data", str(data_copy), cwd=tmp_path)
    assert res.returncode == 2 and "--metric total_return" in res.stderr
    res = harness("--proposer", "offline", "--start-from", str(tmp_path / "missing.py"), "--workdir", str(wd),
                  "--data", str(data_copy), cwd=tmp_path)
    assert res.returncode == 2 and "no such file" in res.stderr


def test_hours_budget_stops_at_an_iteration_boundary_and_resumes(data_copy: Path, tmp_path: Path) -> None:
    wd = tmp_path / "run"
    args = ["--proposer", "offline", "--stress-paths", "0", "--max-fails", "0", "--iterations", "40",
            "--hours", "0.000001", "--workdir", str(wd), "--data", str(data_copy)]  # 3.6 ms: one iteration per command
    res = harness(*args, cwd=tmp_path)
    assert res.returncode == 0, res.stdout + res.stderr
    line = stop_line(res.stdout)
    assert line.startswith("stopped: hours: --hours 1e-06 used up") and "resume at iteration 1" in line
    assert "time left: about 0s (bound by --hours 1e-06" in res.stdout
    state = json.loads((wd / "state.json").read_text())
    assert state["next_iteration"] == 1 and state["stop_reason"].startswith("hours")
    res = harness(*args, cwd=tmp_path)
    assert res.returncode == 0 and "resume at iteration 2" in stop_line(res.stdout)
    assert json.loads((wd / "state.json").read_text())["next_iteration"] == 2 and (wd / "iter_1_results.json").is_file()
    res = harness(*args[:-4], "--hours", "0", "--workdir", str(wd), "--data", str(data_copy), cwd=tmp_path)
    assert res.returncode == 2 and res.stderr.startswith("error: --hours must be > 0")


def test_messages_stay_true_after_final_reads_the_test_split(data_copy: Path, tmp_path: Path) -> None:
    wd = tmp_path / "run"
    args = ["--proposer", "offline", "--stress-paths", "0", "--max-fails", "0", "--workdir", str(wd),
            "--data", str(data_copy)]
    res = harness(*args, "--iterations", "1", cwd=tmp_path)
    assert res.returncode == 0, res.stdout + res.stderr
    assert "test split not read yet" in (wd / "report.html").read_text()
    assert "ALREADY BEEN READ" not in res.stderr
    state = json.loads((wd / "state.json").read_text())
    assert state["searched_after_test_reading"] is False
    res = subprocess.run([sys.executable, str(ROOT / "harness.py"), "final", "--workdir", str(wd), "--data",
                          str(data_copy)], cwd=tmp_path, capture_output=True, text=True, timeout=240)
    assert res.returncode == 0, res.stdout + res.stderr
    assert "on the test split the candidate " in res.stdout and "buy and hold" in res.stdout
    assert f"report: {wd / 'report.html'} (refreshed with this reading)" in res.stdout
    assert "test split not read yet" not in (wd / "report.html").read_text()  # final refreshed the report
    res = harness(*args, "--iterations", "2", cwd=tmp_path)
    assert res.returncode == 0, res.stdout + res.stderr
    assert "THE TEST SPLIT HAS ALREADY BEEN READ" in res.stderr and "validation split" in res.stderr
    record = json.loads((wd / "iter_2_results.json").read_text())
    assert record["test_readings_before"] == 1
    assert json.loads((wd / "iter_1_results.json").read_text())["test_readings_before"] == 0
    assert json.loads((wd / "state.json").read_text())["searched_after_test_reading"] is True
