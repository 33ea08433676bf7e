"""A night at scale: a long offline run, a kill -9 near its end, the resume, and the figures that must not grow.

    python bench/bench_night.py [--iterations 3000] [--kill-at K | --stop-after S] [--window 200] [--workdir DIR]
                                [--data DIR] [--json OUT] [--paired 0] [--resume-only]

From a fresh clone, in the background (what docs/bench.md ran):

    nohup nice -n 10 python bench/bench_night.py --iterations 3000 --paired 40 --json night.json > night.out 2>&1 &

Runs the real command (`python harness.py --proposer offline --max-fails 0 --iterations N`) on the
bundled S&P 500 sample, frozen in a temp folder. Once record K (default 95% of N) is written the loop
gets SIGKILL (a `kill -9` mid-run); the same command is started again and resumes to N and to its end.
It prints, as JSON (progress lines go to stderr):
- per-iteration cost at the start and at the end of the night, over iterations 1..W and the last W
  before the kill (``--window``, default 200; 10% of the night when that is less), two ways:
  CPU seconds (``cpu_s_first``, ``cpu_s_last``, ``end_over_start``: the ``cpu`` each ``index.jsonl``
  line carries, the loop process and its sandbox workers since the previous commit, see
  alphaloop/run/cpuclock.py) and wall seconds (``wall_s_first``, ``wall_s_last``,
  ``wall_end_over_start``: the gaps between the lines' ``committed`` times). The CPU figure does not
  move with the machine's load (a wall ratio read 0.65x when the load fell during a night); flat
  means the end within 20% of the start;
- bytes written per iteration (the loop process's own ``write_bytes`` from /proc up to the kill, divided by
  the iterations it committed) and the folder's size and file count per iteration at the end (packs,
  index and report included);
- end-of-run time (the resumed run's last record -> its exit: statistics over every trial, stress,
  second market, report) and the report's size;
- resume time (start of the resumed process -> its first new record: reading the checkpoint, replaying
  the records after it, rebuilding the views, one evaluation);
- peak memory (VmHWM of the night's loop process and of the resumed one, end of run included);
- the machine's own speed over the same windows (``machine_end_over_start``): every 5 s this process
  times a fixed piece of Python and numpy work (its CPU seconds), and the median over the last window's
  minutes is divided by the median over the first's. On a machine whose speed moves (a virtual machine
  sharing its host: the same work took 0.39 s and 0.62 s minutes apart), ``end_over_start_at_equal_speed``
  is ``end_over_start`` divided by it: what the run's growth alone did.
``--stop-after S`` kills the night after S seconds instead (a night sized to the time there is);
``--resume-only`` skips the night and resumes a folder such a night left (``--workdir``, with its
``--data``): the night's own figures, bytes written and its peak memory, are then absent.
``--paired P`` adds a check paired in time: after the night the resume goes on for P more iterations
while a fresh run iterates beside it, under the same load; the ratio of their medians (CPU and wall)
says whether iteration N costs what iteration 1 does (1.0: flat).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from alphaloop.data.frozen import freeze, sample_frame, split, validate  # noqa: E402
from alphaloop.run.index import parse_index  # noqa: E402

ENV = {**os.environ, "OPENAI_API_KEY": "", "OPENAI_BASE_URL": ""}


def yardstick_s() -> float:
    """CPU seconds of a fixed piece of work, Python and numpy like an iteration's: what the machine's own
    speed is doing at this moment (it does not wait for a core, so the loop's load beside it counts only as
    the caches and cores they share)."""
    start = time.process_time()
    x = 0.0
    for i in range(120_000):
        x += math.sqrt(i) % 3.0
    a = np.arange(4096.0)
    for _ in range(600):
        a = np.sqrt(a * a + 1.0)
    return time.process_time() - start


Span = tuple[float, float]  # a time span: (start, end), Unix seconds


def machine_ratio(samples: list[tuple[float, float]], first: Span, last: Span) -> float | None:
    """The yardstick's median over the ``last`` time span divided by its median over the ``first``; None when
    either span holds fewer than 3 samples (a night too short for its windows to say anything)."""
    a = [s for t, s in samples if first[0] <= t <= first[1]]
    b = [s for t, s in samples if last[0] <= t <= last[1]]
    return statistics.median(b) / statistics.median(a) if len(a) >= 3 and len(b) >= 3 else None


def say(text: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {text}", file=sys.stderr, flush=True)


def _proc_field(pid: int, name: str, key: str) -> int | None:
    try:
        for line in Path(f"/proc/{pid}/{name}").read_text().splitlines():
            if line.startswith(key + ":"):
                return int(line.split()[1])
    except (OSError, ValueError):
        return None
    return None


def tree_rss_kb(root: int) -> int:
    """Resident memory of ``root`` and every process under it (the loop and its sandbox workers), in KiB."""
    parents: dict[int, list[int]] = {}
    for entry in os.scandir("/proc"):
        if entry.name.isdigit() and (ppid := _proc_field(int(entry.name), "status", "PPid")) is not None:
            parents.setdefault(ppid, []).append(int(entry.name))
    total, todo = 0, [root]
    while todo:
        pid = todo.pop()
        total += _proc_field(pid, "status", "VmRSS") or 0
        todo += parents.get(pid, [])
    return total


def committed(wd: Path) -> dict[int, float]:
    """Commit time of each iteration, from index.jsonl (lines a resume rebuilt carry none)."""
    index = wd / "index.jsonl"
    if not index.is_file():  # a folder from before the index: its records' write times
        found = ((p, p.name.split("_")[1]) for p in wd.glob("iter_*_results.json"))
        return {int(n): p.stat().st_mtime for p, n in found if n.isdigit()}
    return {n: e["committed"] for n, e in parse_index(index.read_text(encoding="utf-8")).items()
            if isinstance(e.get("committed"), (int, float))}


def cpu_times(wd: Path) -> dict[int, float]:
    """CPU seconds of each iteration, from index.jsonl (a command's first commit carries none)."""
    index = wd / "index.jsonl"
    if not index.is_file():
        return {}
    return {n: e["cpu"] for n, e in parse_index(index.read_text(encoding="utf-8")).items()
            if isinstance(e.get("cpu"), (int, float))}


def spread(values: list[float]) -> dict[str, float]:
    """Mean and median of ``values``."""
    return {"mean": statistics.mean(values), "median": statistics.median(values)} if values else {}


def watch(args: list[str], wd: Path, kill_at: int | None = None, first_new: int | None = None,
          kill_after: float | None = None) -> dict:
    """Run ``args``; poll its write_bytes and VmHWM until it exits, SIGKILL it once record ``kill_at`` is
    written (or ``kill_after`` seconds passed), and note when record ``first_new`` appears."""
    t0 = time.time()
    proc = subprocess.Popen(args, cwd=ROOT, env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    written = hwm = 0
    seen = None
    last_say = t0
    loads: list[tuple[float, float]] = []  # (time, 1-minute load average), every 10 s
    tree: list[int] = []  # resident KiB of the loop and its sandbox workers, every 10 s
    speed: list[tuple[float, float]] = []  # (time, the yardstick's CPU seconds), every 5 s
    while proc.poll() is None:
        if not loads or time.time() - loads[-1][0] >= 10:
            loads.append((time.time(), os.getloadavg()[0]))
            tree.append(tree_rss_kb(proc.pid))
        if not speed or time.time() - speed[-1][0] >= 5:
            speed.append((time.time(), yardstick_s()))
        written = _proc_field(proc.pid, "io", "write_bytes") or written
        hwm = _proc_field(proc.pid, "status", "VmHWM") or hwm
        if first_new is not None and seen is None and _has_record(wd, first_new):
            seen = time.time()
        if (kill_at is not None and _has_record(wd, kill_at)) or (kill_after and time.time() - t0 > kill_after):
            proc.send_signal(signal.SIGKILL)
            break
        if time.time() - last_say > 60:
            last_say = time.time()
            cpu = list(cpu_times(wd).values())[-50:]
            say(f"{len(committed(wd))} iterations committed, {written / 1e6:.1f} MB written, "
                f"VmHWM {hwm / 1024:.0f} MiB, CPU {statistics.mean(cpu) if cpu else 0:.3f} s/iteration (last 50), "
                f"load {os.getloadavg()[0]:.1f}")
        time.sleep(0.2)
    _, err = proc.communicate()
    return {"start": t0, "end": time.time(), "code": proc.returncode, "write_bytes": written, "vm_hwm_kb": hwm,
            "first_new_at": seen, "stderr": err[-2000:], "loads": loads,
            "tree_rss_kb": tree, "speed": speed}


def load_between(loads: list[tuple[float, float]], t0: float, t1: float) -> float | None:
    """The mean 1-minute load average sampled between t0 and t1 (what the wall figures ran beside)."""
    inside = [v for t, v in loads if t0 <= t <= t1]
    return round(statistics.mean(inside), 1) if inside else None


def _has_record(wd: Path, n: int) -> bool:
    """Whether record ``n`` is written (it is loose then: packs take a block a whole block later)."""
    return (wd / f"iter_{n}_results.json").is_file()


def gaps(times: dict[int, float], lo: int, hi: int) -> list[float]:
    """Gaps between consecutive commits of iterations lo..hi (both in ``times``)."""
    return [times[n] - times[n - 1] for n in range(lo + 1, hi + 1) if n in times and n - 1 in times]


def folder_size(wd: Path) -> tuple[int, int]:
    files = [p for p in wd.rglob("*") if p.is_file()]
    return sum(p.stat().st_size for p in files), len(files)


def paired(cmd: list[str], wd: Path, n: int, fresh_wd: Path, count: int) -> dict:
    """``count`` more iterations of the long run, and a fresh run beside it (same load): median gaps of each."""
    res = subprocess.Popen([*cmd, "--iterations", str(n + count), "--stress-paths", "0"], cwd=ROOT, env=ENV,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    fresh = None
    while res.poll() is None:
        if fresh is None and _has_record(wd, n + 1):
            fresh = subprocess.Popen([*cmd[:-1], str(fresh_wd), "--iterations", str(count + 1), "--stress-paths", "0"],
                                     cwd=ROOT, env=ENV,
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        if fresh is not None and fresh.poll() is None and _has_record(wd, n + count):
            os.killpg(fresh.pid, signal.SIGKILL)
            fresh.wait()
        time.sleep(0.2)
    if fresh is not None and fresh.poll() is None:
        os.killpg(fresh.pid, signal.SIGKILL)
        fresh.wait()
    long_gaps = gaps(committed(wd), n + 1, n + count)
    fresh_times = committed(fresh_wd)
    fresh_gaps = gaps(fresh_times, 1, max(fresh_times, default=0))
    long_cpu = [c for i, c in cpu_times(wd).items() if n + 1 < i <= n + count]
    fresh_cpu = [c for i, c in cpu_times(fresh_wd).items() if i >= 2]
    if not long_gaps or not fresh_gaps:
        return {}
    a, b = statistics.median(long_gaps), statistics.median(fresh_gaps)
    out = {"paired_iteration_s_after_night": round(a, 4), "paired_iteration_s_fresh_run": round(b, 4),
           "paired_ratio_night_over_fresh": round(a / b, 3), "paired_gaps": [len(long_gaps), len(fresh_gaps)]}
    if long_cpu and fresh_cpu:
        c, d = statistics.median(long_cpu), statistics.median(fresh_cpu)
        out.update({"paired_cpu_s_after_night": round(c, 4), "paired_cpu_s_fresh_run": round(d, 4),
                    "paired_cpu_ratio_night_over_fresh": round(c / d, 3)})
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--iterations", type=int, default=3000)
    p.add_argument("--kill-at", type=int, metavar="K", help="kill -9 the night once record K is written "
                   "(default: 95%% of --iterations)")
    p.add_argument("--stop-after", type=float, metavar="S", help="kill -9 the night after S seconds instead")
    p.add_argument("--workdir", type=Path, help="run folder (default: a temp folder); must not exist yet")
    p.add_argument("--data", type=Path, help="frozen data (default: the S&P 500 sample, frozen in a temp folder)")
    p.add_argument("--resume-only", action="store_true", help="resume the folder a cut night left (--workdir)")
    p.add_argument("--json", type=Path, help="also write the figures here as JSON")
    p.add_argument("--window", type=int, default=200, help="iterations compared at the start and at the end "
                   "(at most 10%% of the night)")
    p.add_argument("--paired", type=int, default=0, help="iterations of a paired after-night vs fresh comparison")
    a = p.parse_args()
    kill_at = int(a.iterations * 0.95) if a.kill_at is None else a.kill_at
    if a.iterations < 20 or not 10 <= kill_at < a.iterations:
        sys.exit("error: --iterations must be at least 20 and --kill-at between 10 and --iterations - 1")
    tmp = Path(tempfile.mkdtemp(prefix="bench_night_"))
    wd = a.workdir or tmp / "run"
    if wd.exists() != a.resume_only:
        sys.exit(f"error: {wd} " + ("already exists; the night needs a new folder" if wd.exists() else
                                    "does not exist; --resume-only resumes a folder a cut night left"))
    data = a.data or tmp / "data"
    if a.data is None:
        frame, name = sample_frame("SPY")
        frame, repairs = validate(frame, label="sample")
        freeze(split(frame), data, "sample", name, repairs)
    cmd = [sys.executable, str(ROOT / "harness.py"), "--proposer", "offline", "--max-fails", "0",
           "--data", str(data), "--workdir", str(wd)]
    commit = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"], capture_output=True,
                            text=True).stdout.strip()
    cut = f"after {a.stop_after:g} s" if a.stop_after else f"once record {kill_at} is written"
    night = None
    if not a.resume_only:
        say(f"night: {' '.join(cmd)} --iterations {a.iterations} (kill -9 {cut}), commit {commit}")
        night = watch([*cmd, "--iterations", str(a.iterations)], wd, kill_at=None if a.stop_after else kill_at,
                      kill_after=a.stop_after)
        if night["code"] != -signal.SIGKILL:
            sys.exit(f"error: the night exited {night['code']} before it was cut: {night['stderr']}")
    times = committed(wd)
    done = max(times) + 1  # iterations committed before the kill (0..done-1)
    say(f"killed after {done} iterations; resuming")
    first_new = done  # a kill between a record's file and its index line leaves that record on disk already
    while _has_record(wd, first_new):
        first_new += 1
    resume = watch([*cmd, "--iterations", str(a.iterations)], wd, first_new=first_new)
    if resume["code"] != 0:
        sys.exit(f"error: the resumed run exited {resume['code']}: {resume['stderr']}")
    after = committed(wd)
    last = max(after)
    size, files = folder_size(wd)
    k = max(10, min(a.window, (done - 1) // 10))  # iterations 1..k and the last k before the kill
    first, end = gaps(times, 0, k), gaps(times, done - 1 - k, done - 1)
    cpu = cpu_times(wd)
    cpu_first = spread([cpu[i] for i in range(1, k + 1) if i in cpu])
    cpu_end = spread([cpu[i] for i in range(done - k, done) if i in cpu])
    machine = machine_ratio(night["speed"], (times[0], times[k]), (times[done - 1 - k], times[done - 1])) \
        if night else None
    out = {
        "command": f"{' '.join(cmd)} --iterations {a.iterations}; kill -9 {cut}; the same command again",
        "commit": commit,
        "iterations": last + 1,
        "cut_by_kill_9": True,
        "iterations_before_kill": done,
        "wall_s": round(night["end"] - night["start"], 1) if night else None,
        "window": [[1, k], [done - k, done - 1]],
        "cpu_s_first": round(cpu_first["mean"], 4) if cpu_first else None,
        "cpu_s_last": round(cpu_end["mean"], 4) if cpu_end else None,
        "end_over_start": round(cpu_end["mean"] / cpu_first["mean"], 3) if cpu_first and cpu_end else None,
        "machine_end_over_start": round(machine, 3) if machine else None,
        "end_over_start_at_equal_speed": round(cpu_end["mean"] / cpu_first["mean"] / machine, 3)
        if machine and cpu_first and cpu_end else None,
        "median_cpu_s_first": round(cpu_first["median"], 4) if cpu_first else None,
        "median_cpu_s_last": round(cpu_end["median"], 4) if cpu_end else None,
        "wall_s_first": round(statistics.mean(first), 4),
        "wall_s_last": round(statistics.mean(end), 4),
        "wall_end_over_start": round(statistics.mean(end) / statistics.mean(first), 3),
        "median_wall_s_first": round(statistics.median(first), 4),
        "median_wall_s_last": round(statistics.median(end), 4),
        "load_first": load_between(night["loads"], times[0], times[k]) if night else None,
        "load_last": load_between(night["loads"], times[done - 1 - k], times[done - 1]) if night else None,
        "bytes_written_per_iteration": round(night["write_bytes"] / done) if night else None,
        "workdir_bytes_per_iteration": round(size / (last + 1)),
        "workdir_files_per_iteration": round(files / (last + 1), 3),
        "workdir_mb": round(size / 1e6, 1),
        "report_kb": round((wd / "report.html").stat().st_size / 1e3, 1) if (wd / "report.html").is_file() else None,
        "packs": len(list((wd / "packs").glob("*.zip"))) if (wd / "packs").is_dir() else 0,
        "end_of_run_s": round(resume["end"] - after[last], 1),
        "resume_to_next_record_s": round(resume["first_new_at"] - resume["start"], 2) if resume["first_new_at"]
        else None,
        "peak_rss_mb_loop": round(night["vm_hwm_kb"] / 1024, 1) if night else None,
        "peak_rss_mb_resume": round(resume["vm_hwm_kb"] / 1024, 1),  # its end of run included
        # the loop and its sandbox workers together (sampled every 10 s): a worker that grew would show here
        "rss_mb_tree_night_first_minute": round(max(night["tree_rss_kb"][:6]) / 1024, 1)
        if night and night["tree_rss_kb"] else None,
        "rss_mb_tree_night_last_minute": round(max(night["tree_rss_kb"][-6:]) / 1024, 1)
        if night and night["tree_rss_kb"] else None,
        "peak_rss_mb_tree_night": round(max(night["tree_rss_kb"]) / 1024, 1)
        if night and night["tree_rss_kb"] else None,
        "workdir": str(wd),
    }
    if a.paired:
        say(f"paired: {a.paired} more iterations beside a fresh run")
        out.update(paired(cmd, wd, last, tmp / "fresh", a.paired))
    text = json.dumps(out, indent=1)
    print(text)
    if a.json:
        a.json.write_text(text + "\n")


if __name__ == "__main__":
    main()
