"""A night at scale: a long offline run, then a resume, with the figures that must not grow with it.

    python bench/bench_night.py [--iterations 3000] [--workdir DIR] [--data DIR] [--json OUT]

Runs the real command (`python harness.py --proposer offline --max-fails 0 --iterations N`) on the
bundled S&P 500 sample, frozen in a temp folder, and reads back:
- per-iteration cost at the start and at the end of the run (median gap between consecutive records'
  write times over the first and the last 10% of iterations; flat means the end within 20% of the start);
- bytes written per iteration (the loop process's own ``write_bytes`` from /proc, polled until it exits,
  divided by the iterations) and the workdir's size and file count per iteration at the end;
- end-of-run time (last record written -> process exit: statistics, stress, second market, report);
- resume time (the same command with one more iteration: start -> that iteration's record, which
  includes reading the state, replaying the records after its checkpoint and one evaluation);
- peak memory (the loop process's VmHWM, and the largest child's maxrss).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from alphaloop.data.frozen import freeze, sample_frame, split, validate  # noqa: E402


def _proc_field(pid: int, name: str, key: str) -> int | None:
    try:
        for line in Path(f"/proc/{pid}/{name}").read_text().splitlines():
            if line.startswith(key + ":"):
                return int(line.split()[1])
    except (OSError, ValueError):
        return None
    return None


def run_watched(args: list[str], stop_at: Path | None = None) -> dict:
    """Run ``args``; poll its write_bytes and VmHWM until it exits (or ``stop_at`` appears, then kill it)."""
    t0 = time.time()
    proc = subprocess.Popen(args, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "OPENAI_API_KEY": "", "OPENAI_BASE_URL": ""})
    written = hwm = 0
    seen_at = None
    while proc.poll() is None:
        written = _proc_field(proc.pid, "io", "write_bytes") or written
        hwm = _proc_field(proc.pid, "status", "VmHWM") or hwm
        if stop_at is not None and stop_at.is_file():
            seen_at = stop_at.stat().st_mtime
            proc.terminate()
            break
        time.sleep(0.25)
    _, err = proc.communicate()
    return {"start": t0, "end": time.time(), "code": proc.returncode, "write_bytes": written, "vm_hwm_kb": hwm,
            "seen_at": seen_at, "stderr": err[-2000:]}


def record_times(wd: Path, n: int) -> list[float]:
    return [(wd / f"iter_{i}_results.json").stat().st_mtime for i in range(n + 1)]


def folder_size(wd: Path) -> tuple[int, int]:
    files = [p for p in wd.rglob("*") if p.is_file()]
    return sum(p.stat().st_size for p in files), len(files)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--iterations", type=int, default=3000)
    p.add_argument("--workdir", type=Path, help="run folder (default: a temp folder)")
    p.add_argument("--data", type=Path, help="frozen data (default: the S&P 500 sample, frozen in a temp folder)")
    p.add_argument("--json", type=Path, help="also write the figures here as JSON")
    a = p.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="bench_night_"))
    data = a.data
    if data is None:
        frame, name = sample_frame("SPY")
        frame, repairs = validate(frame, label="sample")
        data = tmp / "data"
        freeze(split(frame), data, "sample", name, repairs)
    wd = a.workdir or tmp / "run"
    n = a.iterations
    cmd = [sys.executable, str(ROOT / "harness.py"), "--proposer", "offline", "--max-fails", "0", "--data", str(data),
           "--workdir", str(wd)]
    night = run_watched([*cmd, "--iterations", str(n)])
    if night["code"] != 0:
        sys.exit(f"error: the run exited {night['code']}: {night['stderr']}")
    times = record_times(wd, n)
    gaps = [b - a for a, b in zip(times[1:], times[2:], strict=False)]  # iteration 0 (the baseline) excluded
    k = max(10, len(gaps) // 10)
    start, end = statistics.median(gaps[:k]), statistics.median(gaps[-k:])
    size, files = folder_size(wd)
    resume = run_watched([*cmd, "--iterations", str(n + 1)], stop_at=wd / f"iter_{n + 1}_results.json")
    out = {
        "command": " ".join([*cmd, "--iterations", str(n)]),
        "iterations": n,
        "wall_s": round(night["end"] - night["start"], 1),
        "iteration_s_first_10pct": round(start, 4),
        "iteration_s_last_10pct": round(end, 4),
        "end_over_start": round(end / start, 3),
        "bytes_written_per_iteration": round(night["write_bytes"] / (n + 1)),
        "workdir_bytes_per_iteration": round(size / (n + 1)),
        "workdir_files_per_iteration": round(files / (n + 1), 2),
        "workdir_mb": round(size / 1e6, 1),
        "end_of_run_s": round(night["end"] - times[-1], 1),
        "resume_to_next_record_s": round(resume["seen_at"] - resume["start"], 2) if resume["seen_at"] else None,
        "peak_rss_mb_loop": round(night["vm_hwm_kb"] / 1024, 1),
        "peak_rss_mb_largest_child": round(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024, 1),
        "workdir": str(wd),
    }
    text = json.dumps(out, indent=1)
    print(text)
    if a.json:
        a.json.write_text(text + "\n")


if __name__ == "__main__":
    main()
