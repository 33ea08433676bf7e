"""The report of a long night: time, peak memory and HTML size at 1,000 / 10,000 / 100,000 iterations.

    python bench/bench_report.py [--iterations 1000 10000 100000] [--code DIR] [--keep DIR]

First a real short run (prepare.py on the bundled S&P 500 sample, then `harness.py --proposer offline
--iterations 6`): its records are the templates. Then, for each count, ``grow`` writes a run folder of
that many iterations from them through the loop's own writers (``Workdir.write_trade``, ``write_record``,
``write_views``: the index line, the results.tsv row, the packs of rejected candidates, the state
checkpoints), as a night leaves it: ~60% accepted, the rest rejected at the proposal, the gate, the
sandbox (unscored), the look-ahead probes or the guards (scored); the validation figure of each is its
template's plus noise, so the best so far rises in steps as a search's does; the population is the
top 3 by that figure, with the seed's end-of-run files (statistics, stress, second market) carried over
to them. The folder is written without fsync (a bench folder need not survive a power cut), so that
100,000 iterations take minutes, not a night. Then the report ``harness.py report`` writes
(``present.report.write_report``) in a fresh process: that process's wall time, the report step's own
time and peak memory (VmHWM, imports included), the HTML's size and what in it could grow with the
iterations (table rows, images and their bytes, the points the progress chart drew of how many).
Ratios are against the first count, in the same command. ``--code DIR``: report with another
checkout's code; ``--against DIR --pairs P``: P reports per count alternating this code and DIR's, with
the median of the paired ratios (a before/after that the machine's load moves less).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path
from unittest import mock

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from alphaloop.run.records import CrossMarket, IterationRecord, Member, RunStats, StressCache  # noqa: E402
from alphaloop.run.state import LoopState  # noqa: E402
from alphaloop.run.workdir import Workdir  # noqa: E402

TIMED = ("command_s", "report_s", "peak_mb")  # medians over --pairs
ENV = {**os.environ, "OPENAI_API_KEY": "", "OPENAI_BASE_URL": ""}
POPULATION = 3
REJECTED = (("proposal", False, 0.03), ("gate", False, 0.07), ("sandbox", False, 0.10), ("lookahead", True, 0.10),
            ("guards", True, 0.10))  # stage, scored, share of the iterations; the rest (60%) is accepted


def seed_run(folder: Path, iterations: int = 6) -> tuple[Path, Path]:
    """A real short offline run on the bundled sample: (its workdir, its frozen data)."""
    for args in (("prepare.py", "--source", "sample", "--out", "d"),
                 ("harness.py", "--iterations", str(iterations), "--stress-paths", "4", "--proposer", "offline",
                  "--data", "d", "--workdir", "w")):
        subprocess.run([sys.executable, str(ROOT / args[0]), *args[1:]], cwd=folder, env=ENV, check=True,
                       capture_output=True, text=True)
    return folder / "w", folder / "d"


def grow(seed: Path, out: Path, iterations: int, seed_rng: int = 0) -> int:
    """A run folder of ``iterations`` iterations built from the records of ``seed`` (a real run) through the
    loop's writers; returns the best iteration."""
    with mock.patch("os.fsync"):
        return _grow(Workdir(seed), Workdir(out), iterations, np.random.default_rng(seed_rng))


def _grow(src: Workdir, wd: Workdir, iterations: int, rng: np.random.Generator) -> int:
    wd.prepare()
    wd.write_manifest(src.read_manifest() or {})
    seed_state = src.read_state()
    records = [src.record(n).to_json() for n in range(seed_state.next_iteration)]
    returns = [(r.pop("returns"), r.pop("instrument_returns", None)) for r in records]  # read, never changed
    templates = [json.dumps(r) for r in records]  # the rest is copied fresh for each iteration
    codes = [src.trade(n).read_text(encoding="utf-8") for n in range(seed_state.next_iteration)]
    header, *rows = src.results_tsv.read_text(encoding="utf-8").splitlines(keepends=True)
    wd.results_tsv.write_text(header, encoding="utf-8")
    learnings = src.read_learnings()
    members = sorted(seed_state.population, key=lambda m: -m.value)
    state = LoopState.from_json({**seed_state.to_json(), "next_iteration": 0, "population": [], "trials": 0,
                                 "accepted": 0, "stop_reason": None})
    stages = rng.choice(len(REJECTED) + 1, size=iterations,
                        p=[*(share for _, _, share in REJECTED), 1 - sum(s for _, _, s in REJECTED)])
    noise = rng.normal(0.0, 0.25, iterations)
    top: list[tuple[float, int]] = []
    for n in range(iterations):
        t = 0 if n == 0 else 1 + n % (len(templates) - 1)
        d = {**json.loads(templates[t]), "returns": returns[t][0], "instrument_returns": returns[t][1]}
        val = float(d["scores"]["splits"]["val"][d["metric"]] + (noise[n] if n else 0.0))
        d["scores"]["splits"]["val"][d["metric"]] = d["selection"] = float(val)
        d.update(iteration=n, parent=None if n == 0 else int(rng.integers(0, n)), replaces=None, duplicate_of=None)
        kind = len(REJECTED) if n == 0 else int(stages[n])
        if kind < len(REJECTED):
            stage, scored, _ = REJECTED[kind]
            d.update(status="rejected", stage=stage, reason=f"rejected at {stage} (bench)", in_population=False,
                     stress=None)
            if not scored:
                d.update(scores=None, trades=None, selection=None, hypothesis_held=None, grading="")
        else:
            entered = bool(len(top) < POPULATION or val > top[-1][0])
            d.update(status="accepted", stage="ok", in_population=entered, stress=None)
            if entered:
                top = sorted([*top, (float(val), n)], reverse=True)[:POPULATION]
        rec = IterationRecord.from_json(d)
        wd.write_trade(n, codes[t])
        wd.write_record(rec)
        state.next_iteration, state.trials = n + 1, n + 1
        state.accepted += rec.status == "accepted"
        if rec.in_population:
            state.population = [_member(members[min(i, len(members) - 1)], v, k) for i, (v, k) in enumerate(top)]
        row = f"{n}\t{rows[t].split(chr(9), 1)[1]}" if t < len(rows) else None
        wd.write_views(state, learnings, row, rec)
    state.stop_reason = f"bench: {iterations:,} iterations written by bench/bench_report.py"
    wd.write_state(state)
    _end_files(src, wd, members, [k for _, k in top], iterations)
    return top[0][1]


def _member(like: Member, value: float, n: int) -> Member:
    return replace(like, iteration=n, value=value, val_metric=value)


def _end_files(src: Workdir, wd: Workdir, seed_members: list[Member], population: list[int], trials: int) -> None:
    """The seed's end-of-run files, their members renamed to the grown population's (rank for rank); stress.json
    last: main() takes it as the sign of a finished folder."""
    rename = {str(m.iteration): str(n) for m, n in zip(seed_members, population, strict=False)}
    stats = src.read_stats()
    if stats is not None:
        wd.write_stats(RunStats.from_json({**stats.to_json(), "trials": trials, "best_iteration": population[0]}))
    cross = src.read_cross_market()
    if cross is not None:
        wd.write_cross_market(CrossMarket(cross.label, cross.metric,
                                          {rename[k]: v for k, v in cross.members.items() if k in rename}))
    stress = src.read_stress()
    wd.write_stress(StressCache({rename[k]: v for k, v in stress.members.items() if k in rename}))


def page_figures(html: str) -> dict:
    """What in a report could grow with the iterations."""
    images = re.findall(r'src="data:image/png;base64,([^"]*)"', html)
    drawn = re.search(r"downsampled: ([\d,]+) of ([\d,]+) points drawn", html)
    return {"html_kb": round(len(html.encode()) / 1024, 1), "table_rows": html.count("<tr"),
            "images": len(images), "image_kb": round(sum(map(len, images)) / 1024, 1), "svg": html.count("<svg"),
            "scripts": html.count("<script"),
            "chart_points": drawn.group(1) + " of " + drawn.group(2) if drawn else "every point"}


MEASURE = """
import json, sys, time
from pathlib import Path
t0 = time.perf_counter()
from alphaloop.present.report import write_report
path = write_report(Path(sys.argv[1]), Path(sys.argv[2]))
seconds = time.perf_counter() - t0
hwm = next(int(line.split()[1]) for line in Path("/proc/self/status").read_text().splitlines()
           if line.startswith("VmHWM:"))
print(json.dumps({"report_s": round(seconds, 2), "peak_mb": round(hwm / 1024, 1), "html": str(path)}))
"""  # the report step in a fresh process of the code measured: seconds and peak memory (VmHWM, imports included)


def report_once(code: Path, folder: Path, data: Path) -> dict:
    """The report of ``folder`` written by ``code``'s alphaloop in a fresh process, with the page's figures."""
    t0 = time.perf_counter()
    out = subprocess.run([sys.executable, "-c", MEASURE, str(folder), str(data)], cwd=code,
                         env={**ENV, "PYTHONPATH": str(code)}, capture_output=True, text=True, check=True)
    fig = {"command_s": round(time.perf_counter() - t0, 2), **json.loads(out.stdout.strip().splitlines()[-1])}
    fig.update(page_figures(Path(fig.pop("html")).read_text(encoding="utf-8")))
    return fig


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--iterations", type=int, nargs="+", default=[1000, 10000, 100000])
    p.add_argument("--code", type=Path, help="report with this checkout's alphaloop (default: this one)")
    p.add_argument("--against", type=Path, help="also report with this checkout's alphaloop, alternating with "
                   "--code in pairs, and print the paired ratios (e.g. the main branch's, for a before/after)")
    p.add_argument("--pairs", type=int, default=1, help="reports per count (alternated with --against)")
    p.add_argument("--keep", type=Path, help="build the folders here and keep them (default: a temp folder)")
    a = p.parse_args()
    tmp = a.keep or Path(tempfile.mkdtemp(prefix="bench_report_"))
    tmp.mkdir(parents=True, exist_ok=True)
    seed, data = (tmp / "w", tmp / "d") if (tmp / "w" / "state.json").is_file() else seed_run(tmp)
    code = (a.code or ROOT).resolve()
    first = None
    for n in a.iterations:
        folder = tmp / f"run{n}"
        if not (folder / "stress.json").is_file():  # written last by grow
            t0 = time.perf_counter()
            grow(seed, folder, n)
            print(f"[{n:,} iterations written in {time.perf_counter() - t0:.0f} s]", file=sys.stderr, flush=True)
        runs, other = [], []
        for _ in range(a.pairs):
            runs.append(report_once(code, folder, data))
            if a.against:
                other.append(report_once(a.against.resolve(), folder, data))
        fig = {"iterations": n, **runs[-1], **{k: round(statistics.median(r[k] for r in runs), 2) for k in TIMED}}
        first = first or fig
        ratios = ", ".join(f"{k} {fig[k] / first[k]:.2f}x" for k in (*TIMED, "html_kb"))
        print(json.dumps(fig), flush=True)
        print(f"  against {first['iterations']:,} iterations: {ratios}", flush=True)
        if other:
            paired = ", ".join(f"{k} {statistics.median(r[k] / o[k] for r, o in zip(runs, other, strict=True)):.2f}x"
                               for k in (*TIMED, "html_kb"))
            theirs = {"iterations": n, **other[-1], **{k: round(statistics.median(o[k] for o in other), 2)
                                                       for k in TIMED}}
            print(f"  against {a.against} (median of {a.pairs} alternated pairs): {paired}; theirs: "
                  f"{json.dumps(theirs)}", flush=True)


if __name__ == "__main__":
    main()
