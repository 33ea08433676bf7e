"""--workers N end to end: deterministic records, each naming the state it proposed from, and a resume
after kill -9 with iterations in flight that gives the records of a run nobody killed."""

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

ROOT = Path(__file__).resolve().parent.parent
# times, and the probes' draw (a secret nonce per run makes its cuts unpredictable): everything else must repeat exactly
VOLATILE = {"created_at", "timings", "eval_timings", "seconds", "lookahead"}


def harness(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "OPENAI_API_KEY": "", "OPENAI_BASE_URL": ""}
    return subprocess.run([sys.executable, str(ROOT / "harness.py"), *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=300)


def stable(x: object) -> object:
    """A record without the times it took, at any depth."""
    if isinstance(x, dict):
        return {k: stable(v) for k, v in x.items() if k not in VOLATILE and not k.endswith("_s")}
    if isinstance(x, list):
        return [stable(v) for v in x]
    return x


def records(wd: Path) -> list[dict]:
    paths = sorted(wd.glob("iter_*_results.json"), key=lambda p: int(p.name.split("_")[1]))
    return [stable(json.loads(p.read_text())) for p in paths]


@pytest.fixture
def data_copy(frozen_data: Path, tmp_path: Path) -> Path:
    dst = tmp_path / "data"
    shutil.copytree(frozen_data, dst)
    return dst


def test_two_workers_resume_after_kill_9_with_iterations_in_flight(data_copy: Path, tmp_path: Path) -> None:
    args = ["--proposer", "offline", "--max-fails", "0", "--seed", "7", "--stress-paths", "0", "--workers", "2",
            "--data", str(data_copy)]
    ref = tmp_path / "ref"
    res = harness(*args, "--iterations", "9", "--workdir", str(ref), cwd=tmp_path)
    assert res.returncode == 0, res.stdout + res.stderr
    assert "workers: 2 iterations in flight (local executor)" in res.stdout
    expected = records(ref)
    assert [r["proposed_from"] for r in expected] == [None, 0, *range(8)]  # iteration 0 first
    assert "up to k-2" in (ref / "learnings.md").read_text() and (ref / "snapshots.json").is_file()

    wd = tmp_path / "killed"
    env = {**os.environ, "OPENAI_API_KEY": "", "OPENAI_BASE_URL": ""}
    proc = subprocess.Popen([sys.executable, str(ROOT / "harness.py"), *args, "--iterations", "40",
                             "--workdir", str(wd)], cwd=tmp_path, env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.time() + 180
    while not (wd / "iter_4_results.json").exists() and time.time() < deadline:
        time.sleep(0.01)
    os.killpg(proc.pid, signal.SIGKILL)  # iteration 5, and maybe 6, are in flight
    proc.wait()
    before = {p.name: p.read_bytes() for p in wd.glob("iter_*_results.json")}
    assert len(before) >= 5
    res = harness(*args, "--iterations", "9", "--workdir", str(wd), cwd=tmp_path)
    assert res.returncode == 0, res.stdout + res.stderr
    assert records(wd) == expected  # no gap, no repeat, the same records as the run nobody killed
    for name, content in before.items():
        assert (wd / name).read_bytes() == content  # committed iterations are never redone
    rows = [r.split("\t")[0] for r in (wd / "results.tsv").read_text().strip().splitlines()[1:]]
    assert rows == [str(n) for n in range(10)]
    assert sorted(int(p.name.split("_")[1]) for p in wd.glob("iter_*_trade.py")) == list(range(10))
    assert not list(wd.glob(".*.tmp"))


def test_workers_must_be_positive_and_ray_address_needs_ray(data_copy: Path, tmp_path: Path) -> None:
    res = harness("--proposer", "offline", "--workers", "0", "--workdir", str(tmp_path / "w"), cwd=tmp_path)
    assert res.returncode == 2 and "--workers must be >= 1" in res.stderr
    res = harness("--proposer", "offline", "--ray-address", "auto", "--workdir", str(tmp_path / "w"), cwd=tmp_path)
    assert res.returncode == 2 and "--ray-address needs --executor ray" in res.stderr
    assert not (tmp_path / "w").exists()
