"""Start-up: each command's import time, and `check` one-shot against the weekend harness's `python trade.py`.

    python bench/bench_startup.py [--pairs 15] [--data DIR]

Import time: each command run once under `python -X importtime`; the figure is the sum of the
top-level imports' cumulative times (everything the command imported, lazily imported modules
included), with the heaviest top-level packages named. One-shot: `harness.py check trade.py` and
`bench/weekend_trade.py` (the original weekend harness, the region run in-process) alternated in
``--pairs`` pairs in this one command; the ratio of their medians is the figure (goal: <= 1.5).

The one-shot figure is given twice, each on a temporary copy of the project's code: without
bytecode caches (PYTHONDONTWRITEBYTECODE=1, as in environments that set it: the ~50 alphaloop and
sandbox modules `check` imports are compiled from source by every command) and with them (the copy
compiled first, as after any first run on a default Python). Both commands run in the same state in
each pair.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from alphaloop.data.frozen import freeze, sample_frame, split, validate  # noqa: E402


def import_profile(args: list[str]) -> tuple[float, list[tuple[str, float]]]:
    """Seconds of imports of one command, and its five heaviest top-level imports."""
    out = subprocess.run([sys.executable, "-X", "importtime", *args], cwd=ROOT, capture_output=True, text=True)
    top = []
    for line in out.stderr.splitlines():
        if not line.startswith("import time:") or "cumulative" in line:
            continue
        _, _, cumulative, name = (part.strip() for part in line.replace("import time:", "|").split("|"))
        if not line.split("|")[2].startswith("  "):  # depth 0: a top-level import
            top.append((name, int(cumulative) / 1e6))
    total = sum(t for _, t in top)
    return total, sorted(top, key=lambda x: -x[1])[:5]


def timed(args: list[str], cwd: Path = ROOT, env: dict[str, str] | None = None) -> float:
    t0 = time.perf_counter()
    subprocess.run([sys.executable, *args], cwd=cwd, capture_output=True, check=True, env=env)
    return time.perf_counter() - t0


def one_shot(code: Path, data: Path, pairs: int, label: str) -> None:
    """check and the weekend trade.py of the copy ``code``, alternated ``pairs`` times; the ratio of their
    medians and pair by pair."""
    check = [str(code / "harness.py"), "check", str(code / "trade.py"), "--data", str(data)]
    weekend = [str(code / "bench" / "weekend_trade.py"), "--data", str(data)]
    env = {**os.environ, "PYTHONPATH": str(code), "PYTHONDONTWRITEBYTECODE": "1"}
    runs = [(timed(check, code, env), timed(weekend, code, env)) for _ in range(pairs)]
    c, w = statistics.median(x for x, _ in runs), statistics.median(y for _, y in runs)
    ratios = sorted(x / y for x, y in runs)
    print(f"one-shot {label}, {pairs} alternated pairs: check {c:.3f} s, weekend trade.py {w:.3f} s, "
          f"ratio {c / w:.2f}x (goal <= 1.5x); pair by pair median {statistics.median(ratios):.2f}x, "
          f"spread {ratios[0]:.2f}-{ratios[-1]:.2f}x")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--pairs", type=int, default=15,
                   help="alternated pairs per line (default 15: a machine's speed moves from one minute to the next)")
    p.add_argument("--data", type=Path, help="frozen data (default: the S&P 500 sample, frozen in a temp folder)")
    a = p.parse_args()
    data = a.data
    if data is None:
        frame, name = sample_frame("SPY")
        frame, repairs = validate(frame, label="sample")
        data = Path(tempfile.mkdtemp(prefix="bench_startup_")) / "data"
        freeze(split(frame), data, "sample", name, repairs)
    check = [str(ROOT / "harness.py"), "check", str(ROOT / "trade.py"), "--data", str(data)]
    weekend = [str(ROOT / "bench" / "weekend_trade.py"), "--data", str(data)]
    commands = {
        "harness.py --help": [str(ROOT / "harness.py"), "--help"],
        "harness.py check trade.py": check,
        "loop start (harness, loop, commands, offline proposer, sandbox)": [
            "-c", "import harness, alphaloop.run.loop, alphaloop.commands.final, alphaloop.commands.finish, "
                  "alphaloop.propose.offline, sandbox.runner, sandbox.child"],
        "harness.py report (import only)": ["-c", "import harness, alphaloop.present.report"],
        "weekend trade.py (baseline)": weekend,
    }
    print("import time per command (python -X importtime, sum of top-level cumulative):")
    for label, args in commands.items():
        total, top = import_profile(args)
        print(f"  {label}: {total:.3f} s  [" + ", ".join(f"{n} {t:.3f}" for n, t in top) + "]")
    with tempfile.TemporaryDirectory(prefix="bench_startup_code_") as tmp:
        code = Path(tmp)
        for part in ("alphaloop", "sandbox", "prompts", "harness.py", "trade.py", "bench/weekend_trade.py"):
            if (ROOT / part).is_dir():
                shutil.copytree(ROOT / part, code / part, ignore=shutil.ignore_patterns("__pycache__"))
            elif (ROOT / part).is_file():
                (code / part).parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(ROOT / part, code / part)
        one_shot(code, data, a.pairs, "without bytecode caches (PYTHONDONTWRITEBYTECODE=1, a fresh copy)")
        subprocess.run([sys.executable, "-m", "compileall", "-q", str(code)], check=True, capture_output=True)
        one_shot(code, data, a.pairs, "with bytecode caches (the copy compiled first, as after a first run)")


if __name__ == "__main__":
    main()
