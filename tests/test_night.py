"""A night lasts the night: --hours runs until its budget, a stalled search widens instead of stopping."""

from __future__ import annotations

import io
import json
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

from rich.console import Console

from alphaloop.config import LoopConfig, run_limits
from alphaloop.present.ui import PlainView
from alphaloop.propose.base import ProposalContext
from alphaloop.propose.offline import OfflineProposer
from alphaloop.propose.offline.mutate import FAMILY
from alphaloop.propose.offline.spec import spec_of
from alphaloop.propose.prompting import build_messages, load_prompts
from alphaloop.run.loop import Loop
from alphaloop.tasks.forecast.prompting import FORECAST_PROGRAM_PATH, FORECAST_TEMPLATE_PATH

ROOT = Path(__file__).resolve().parents[1]


def run(args: list[str], cwd: Path, timeout: float = 400) -> subprocess.CompletedProcess:
    env = {**os.environ, "OPENAI_API_KEY": "", "OPENAI_BASE_URL": ""}
    return subprocess.run([sys.executable, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)


def test_with_hours_there_is_no_iteration_cap_and_no_stop_on_failures() -> None:
    assert run_limits(None, None, None) == (LoopConfig().iterations, LoopConfig().max_fails)
    assert run_limits(None, None, 8.0) == (None, 0)
    assert run_limits(120, 7, 8.0) == (120, 7)  # what the user asks for still holds


def test_the_readme_overnight_recipe_runs_until_its_budget(frozen_data: Path, tmp_path: Path) -> None:
    """The recipe's own command line, with a budget of seconds instead of hours."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    recipe = re.search(r"^python harness\.py --hours 8\s+#", readme, flags=re.M)
    assert recipe is not None, "the README gives `python harness.py --hours 8` as the overnight recipe"
    command = shlex.split(recipe.group(0).rstrip("#").replace("--hours 8", "--hours 0.004"))
    wd = tmp_path / "night"
    res = run([str(ROOT / command[1]), *command[2:], "--workdir", str(wd), "--data", str(frozen_data),
               "--stress-paths", "0"], cwd=tmp_path)
    assert res.returncode == 0, res.stdout + res.stderr
    assert "no iteration cap, until --hours 0.004" in res.stdout
    stop = next(line for line in res.stdout.splitlines() if line.startswith("stopped: "))
    assert stop.startswith("stopped: hours: --hours 0.004 used up"), stop
    assert "time left: about" in res.stdout and "Traceback" not in res.stderr
    assert json.loads((wd / "state.json").read_text())["next_iteration"] >= 2


def test_iterations_alone_give_an_estimate_of_the_time_left(frozen_data: Path, tmp_path: Path) -> None:
    res = run([str(ROOT / "harness.py"), "--proposer", "offline", "--iterations", "2", "--stress-paths", "0",
               "--workdir", str(tmp_path / "run"), "--data", str(frozen_data)], cwd=tmp_path)
    assert res.returncode == 0, res.stdout + res.stderr
    assert "time left: about" in res.stdout and "(bound by --iterations 2;" in res.stdout
    assert "[iter 2/2]" in res.stdout and "stops after 5 fails in a row" in res.stdout


def test_a_stalled_offline_search_restarts_from_another_family(frozen_data: Path, tmp_path: Path) -> None:
    wd = tmp_path / "run"
    cfg = LoopConfig(workdir=wd, data_dir=frozen_data, iterations=8, max_fails=0, stall_after=1, population=1,
                     stress_paths=0, seed=2)
    assert Loop(cfg, OfflineProposer(seed=2), "offline", PlainView(8, Console(file=io.StringIO()))).run() == 0
    records = [json.loads((wd / f"iter_{n}_results.json").read_text()) for n in range(9)]
    restarts = [r for r in records if r["proposal"]["change"].startswith("restart:")]
    assert restarts, "a failure with stall_after=1 makes the next proposal a restart"
    for r in restarts:
        assert records[r["iteration"] - 1]["status"] != "accepted" or not records[r["iteration"] - 1].get(
            "in_population")
        parent = spec_of((wd / f"iter_{r['parent']}_trade.py").read_text()) if r["parent"] else None
        child = spec_of((wd / f"iter_{r['iteration']}_trade.py").read_text())
        assert child is not None and "stalled" in r["proposal"]["hypothesis"]
        if parent is not None:
            assert FAMILY[child["entry"]["kind"]] != FAMILY[parent["entry"]["kind"]]


def _context(stalled: int) -> ProposalContext:
    return ProposalContext(iteration=9, parent_iteration=3, parent_region="def generate_features(df):\n    return df",
                           metric="sharpe", population=[], learnings="", last_outcome=None, stalled=stalled)


def test_a_stall_is_told_to_the_model_in_both_tasks() -> None:
    for program, template in (load_prompts(), load_prompts(FORECAST_PROGRAM_PATH, FORECAST_TEMPLATE_PATH)):
        told = build_messages(_context(6), program, template)[-1]["content"]
        assert "The search has stalled" in told and "last 6 proposals in a row" in told
        assert "broader hypothesis" in told and "{{stall}}" not in told
        assert "stalled" not in build_messages(_context(0), program, template)[-1]["content"]


def test_ctrl_c_during_the_end_of_run_steps_ends_with_a_stopped_line(frozen_data: Path, tmp_path: Path) -> None:
    import signal
    import time

    env = {**os.environ, "OPENAI_API_KEY": "", "OPENAI_BASE_URL": "", "PYTHONUNBUFFERED": "1"}
    wd = tmp_path / "run"
    proc = subprocess.Popen([sys.executable, str(ROOT / "harness.py"), "--proposer", "offline", "--iterations", "1",
                             "--stress-paths", "64", "--workdir", str(wd), "--data", str(frozen_data)],
                            cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)
    assert proc.stdout is not None
    seen = []
    for line in proc.stdout:  # the end-of-run steps start with the stop line; the stress suite takes seconds
        seen.append(line)
        if line.startswith("stopped: iterations"):
            break
    time.sleep(0.5)
    os.killpg(proc.pid, signal.SIGINT)  # what a terminal's Ctrl-C does: the whole foreground group
    out, err = proc.communicate(timeout=120)
    out = "".join(seen) + out
    assert proc.returncode == 130, out + err
    assert "Traceback" not in err and "KeyboardInterrupt" not in err + out
    last = [line for line in out.splitlines() if line.strip()][-1]
    assert last.startswith("stopped: interrupted: Ctrl-C during the end-of-run steps") and "iteration 2" in last
    assert json.loads((wd / "state.json").read_text())["next_iteration"] == 2


def test_with_workers_the_first_prompts_show_the_baseline_and_name_their_siblings(frozen_data: Path,
                                                                                   tmp_path: Path) -> None:
    """Iteration 0 is scored before any other starts; a prompt says which iterations build on its parent now."""
    seen: list[ProposalContext] = []

    class Watching(OfflineProposer):
        def propose(self, ctx: ProposalContext):  # type: ignore[override]
            seen.append(ctx)
            return super().propose(ctx)

    wd = tmp_path / "run"
    cfg = LoopConfig(workdir=wd, data_dir=frozen_data, iterations=4, max_fails=0, stress_paths=0, seed=3, workers=2)
    assert Loop(cfg, Watching(seed=3), "offline", PlainView(4, Console(file=io.StringIO()))).run() == 0
    first = next(c for c in seen if c.iteration == 1)
    assert first.parent_figures is not None and first.parent_figures.windows, "iteration 1 sees iteration 0's figures"
    assert first.population and first.population[0].iteration == 0
    records = {n: json.loads((wd / f"iter_{n}_results.json").read_text()) for n in range(5)}
    assert [records[n]["proposed_from"] for n in range(5)] == [None, 0, 0, 1, 2]
    for ctx in seen:  # the siblings named are exactly the iterations outside its state with the same parent
        expected = tuple(j for j in range(max(records[ctx.iteration]["proposed_from"] + 1, 1), ctx.iteration)
                         if records[j]["parent"] == ctx.parent_iteration)
        assert ctx.siblings == expected
    assert any(ctx.siblings for ctx in seen)
    program, template = load_prompts()
    told = build_messages(next(c for c in seen if c.siblings), program, template)[-1]["content"]
    assert "**In flight from the same parent**" in told and "different change" in told


def test_the_notes_are_compacted_only_when_a_later_proposal_can_use_them(frozen_data: Path, tmp_path: Path,
                                                                        monkeypatch) -> None:
    from alphaloop.run import learnings
    from alphaloop.run.flight import proposes_after

    asked: list[int] = []

    class Compacting(OfflineProposer):
        def compact(self, text: str, budget_tokens: int) -> str | None:
            asked.append(len(asked))
            return f"- lesson {len(asked)}"

    monkeypatch.setattr(learnings, "BUDGET_TOKENS", 350)  # compact after a few iterations, not after dozens
    wd = tmp_path / "run"
    cfg = LoopConfig(workdir=wd, data_dir=frozen_data, iterations=8, max_fails=0, stress_paths=0, seed=1)
    assert Loop(cfg, Compacting(seed=1), "offline", PlainView(8, Console(file=io.StringIO()))).run() == 0
    records = [json.loads((wd / f"iter_{n}_results.json").read_text()) for n in range(9)]
    compacted = [r["iteration"] for r in records if r.get("learnings_compacted")]
    # from iteration 6 on every record compacts the notes (seed 1, this budget); the last one is not asked:
    # no proposal would read it, and the request would only hold up the end of the run
    assert compacted == [6, 7] and records[8].get("learnings_compacted") is None and len(asked) == 2
    assert proposes_after(5, 1, 6) and not proposes_after(6, 1, 6)
    assert proposes_after(0, 2, 1) and proposes_after(1, 2, 3) and not proposes_after(2, 2, 3)
    assert proposes_after(10**6, 4, None)
