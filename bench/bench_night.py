"""A night at scale: a long offline run, then a resume, with the figures that must not grow with it.

    python bench/bench_night.py [--iterations 3000] [--stop-after S] [--workdir DIR] [--data DIR] [--json OUT]

Runs the real command (`python harness.py --proposer offline --max-fails 0 --iterations N`) on the
bundled S&P 500 sample, frozen in a temp folder, and reads back:
- per-iteration cost at the start and at the end of the run (median gap between consecutive records'
  write times over the first and the last 10% of iterations; flat means the end within 20% of the start);
- bytes written per iteration (the loop process's own ``write_bytes`` from /proc, polled until it exits,
  divided by the iterations) and the workdir's size and file count per iteration at the end;
- end-of-run time (last record written -> process exit: statistics, stress, second market, report);
- resume time (the same command with one more iteration: start -> that iteration's record, which
  includes reading the state, replaying the records after its checkpoint and one evaluation);
- peak memory (the loop process's VmHWM, and the largest child's maxrss);
- a paired figure that the machine's load cannot bias: the resume goes on for ``--paired`` iterations
  while a fresh run in a new folder iterates beside it, and the ratio of their median costs per
  iteration says whether iteration N costs what iteration 1 does (1.0: flat).

``--stop-after S`` sizes a night to the time there is: after S seconds the loop gets SIGKILL (a
``kill -9`` mid-run), and the resume runs it to one more iteration and to its end, so the resume
time is the one after a kill and the end-of-run time is the resumed run's (every trial counted).
``--resume-only`` skips the night and measures a workdir such a night left (figures of the night
itself that only its process knew, bytes written and its peak memory, are then absent).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import signal
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


def run_watched(args: list[str], stop_at: Path | None = None, kill_after: float | None = None) -> dict:
    """Run ``args``; poll its write_bytes and VmHWM until it exits (or ``stop_at`` appears, then stop it;
    or ``kill_after`` seconds pass, then SIGKILL it)."""
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
        if kill_after is not None and time.time() - t0 > kill_after:
            proc.send_signal(signal.SIGKILL)
            break
        time.sleep(0.25)
    _, err = proc.communicate()
    return {"start": t0, "end": time.time(), "code": proc.returncode, "write_bytes": written, "vm_hwm_kb": hwm,
            "seen_at": seen_at, "stderr": err[-2000:]}


def resume_paired(cmd: list[str], wd: Path, n: int, fresh_cmd: list[str], fresh_wd: Path, paired: int) -> dict:
    """Resume ``wd`` for ``paired`` more iterations; once its first new record is written, a fresh run
    starts beside it, so both iterate under the same machine load (it is killed when the resume has
    its last record). Returns the resume's timings and both runs' record times."""
    t0 = time.time()
    env = {**os.environ, "OPENAI_API_KEY": "", "OPENAI_BASE_URL": ""}
    res = subprocess.Popen([*cmd, "--iterations", str(n + paired)], cwd=ROOT, stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL, env=env)
    fresh, seen_at, hwm = None, None, 0
    while res.poll() is None:
        hwm = _proc_field(res.pid, "status", "VmHWM") or hwm
        if seen_at is None and (wd / f"iter_{n + 1}_results.json").is_file():
            seen_at = (wd / f"iter_{n + 1}_results.json").stat().st_mtime
            fresh = subprocess.Popen([*fresh_cmd, "--iterations", str(paired + 1)], cwd=ROOT, env=env,
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        if fresh is not None and fresh.poll() is None and (wd / f"iter_{n + paired}_results.json").is_file():
            os.killpg(fresh.pid, signal.SIGKILL)
            fresh.wait()
        time.sleep(0.25)
    if fresh is not None and fresh.poll() is None:
        os.killpg(fresh.pid, signal.SIGKILL)
        fresh.wait()
    return {"start": t0, "end": time.time(), "seen_at": seen_at, "vm_hwm_kb": hwm,
            "long": record_times(wd)[n + 1:], "fresh": record_times(fresh_wd)}


def record_times(wd: Path) -> list[float]:
    """Write times of records 0, 1, ... up to the first gap."""
    out, i = [], 0
    while (wd / f"iter_{i}_results.json").is_file():
        out.append((wd / f"iter_{i}_results.json").stat().st_mtime)
        i += 1
    return out


def folder_size(wd: Path) -> tuple[int, int]:
    files = [p for p in wd.rglob("*") if p.is_file()]
    return sum(p.stat().st_size for p in files), len(files)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--iterations", type=int, default=3000)
    p.add_argument("--workdir", type=Path, help="run folder (default: a temp folder)")
    p.add_argument("--data", type=Path, help="frozen data (default: the S&P 500 sample, frozen in a temp folder)")
    p.add_argument("--json", type=Path, help="also write the figures here as JSON")
    p.add_argument("--stop-after", type=float, metavar="S", help="kill -9 the night after S seconds, then resume")
    p.add_argument("--resume-only", action="store_true", help="measure the workdir a cut night left (needs --workdir)")
    p.add_argument("--paired", type=int, default=40, help="iterations of the resume, paired with a fresh run")
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
    night = None if a.resume_only else run_watched([*cmd, "--iterations", str(n)], kill_after=a.stop_after)
    cut = night is None or night["code"] == -signal.SIGKILL
    if night is not None and not cut and night["code"] != 0:
        sys.exit(f"error: the run exited {night['code']}: {night['stderr']}")
    times = record_times(wd)
    n = len(times) - 1
    gaps = [b - a for a, b in zip(times[1:], times[2:], strict=False)]  # iteration 0 (the baseline) excluded
    k = max(10, len(gaps) // 10)
    start, end = statistics.median(gaps[:k]), statistics.median(gaps[-k:])
    size, files = folder_size(wd)
    fresh_wd = tmp / "fresh"
    fresh_cmd = [*cmd[:-1], str(fresh_wd)]
    resume = resume_paired(cmd, wd, n, fresh_cmd, fresh_wd, a.paired)
    long_gaps = [b - a for a, b in zip(resume["long"][:-1], resume["long"][1:], strict=False)]
    fresh_gaps = [b - a for a, b in zip(resume["fresh"][1:-1], resume["fresh"][2:], strict=False)]
    if cut:  # the resumed run went on to its end: its end-of-run counts every trial
        night_end, last = resume["end"], resume["long"][-1]
    else:
        night_end, last = night["end"], times[-1]
    out = {
        "command": " ".join([*cmd, "--iterations", str(a.iterations)])
        + (f" (kill -9 after {a.stop_after:g} s)" if a.stop_after and cut else "")
        + f", then --iterations {n + a.paired}",
        "iterations": n,
        "cut_by_kill_9": cut,
        "wall_s": round(night["end"] - night["start"], 1) if night else None,
        "iteration_s_first_10pct": round(start, 4),
        "iteration_s_last_10pct": round(end, 4),
        "end_over_start": round(end / start, 3),
        "paired_iteration_s_after_night": round(statistics.median(long_gaps), 4) if long_gaps else None,
        "paired_iteration_s_fresh_run": round(statistics.median(fresh_gaps), 4) if fresh_gaps else None,
        "paired_ratio_night_over_fresh": (round(statistics.median(long_gaps) / statistics.median(fresh_gaps), 3)
                                          if long_gaps and fresh_gaps else None),
        "paired_gaps": [len(long_gaps), len(fresh_gaps)],
        "bytes_written_per_iteration": round(night["write_bytes"] / (n + 1)) if night else None,
        "workdir_bytes_per_iteration": round(size / (n + 1)),
        "workdir_files_per_iteration": round(files / (n + 1), 2),
        "workdir_mb": round(size / 1e6, 1),
        "end_of_run_s": round(night_end - last, 1),
        "end_of_run_after_resume_s": round(resume["end"] - resume["long"][-1], 1),
        "resume_to_next_record_s": round(resume["seen_at"] - resume["start"], 2) if resume["seen_at"] else None,
        "peak_rss_mb_loop": round(night["vm_hwm_kb"] / 1024, 1) if night else None,
        "peak_rss_mb_resume": round(resume["vm_hwm_kb"] / 1024, 1),
        "peak_rss_mb_largest_child": round(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024, 1),
        "workdir": str(wd),
    }
    text = json.dumps(out, indent=1)
    print(text)
    if a.json:
        a.json.write_text(text + "\n")


if __name__ == "__main__":
    main()
