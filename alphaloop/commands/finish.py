"""What every loop run ends with: the task's end-of-run steps (data-snooping statistics over all
trials, and for the trade task the stress suite and the second market), then the HTML report. Each
step failing is reported, never fatal to the run.

The steps take what they need as arguments (``commands.inputs.FinishInputs``), not the loop that ran.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from alphaloop.commands.inputs import FinishInputs
from alphaloop.evaluate.sandboxed import open_sandbox
from alphaloop.present.text import clip, fmt, rich
from alphaloop.present.ui import console
from alphaloop.run.learnings import Learnings
from alphaloop.run.morning import refresh_morning
from alphaloop.run.state import LoopState


def finish_run(run: FinishInputs, close_view: Callable[[], None]) -> bool:
    """Close the view, then print and store the end-of-run figures, each step failing alone.

    A Ctrl-C here cuts the steps short with one ``stopped:`` line, never a traceback: every iteration
    is already saved. Returns False when that happened."""
    close_view()
    try:
        _finish_steps(run)
    except KeyboardInterrupt:
        console.print(f"\nstopped: interrupted: Ctrl-C during the end-of-run steps; every iteration is saved: "
                      f"rerun the same command to resume at iteration {run.state.next_iteration}, or "
                      f"`python harness.py report --workdir {rich(run.wd.root)}` to rebuild the report",
                      highlight=False)
        return False
    return True


def _finish_steps(run: FinishInputs) -> None:
    state = run.state
    if state.stop_reason:
        console.print(f"stopped: {rich(state.stop_reason)}")
    best = state.best
    if best is not None:
        console.print(f"best: iter {best.iteration}, val {state.metric} {fmt(best.val_metric)}"
                      f"{run.task.beside_benchmark(best.val, state.metric)} "
                      f"(train {fmt(best.train_metric)}), saved as {rich(run.wd.best_trade)}; "
                      f"researcher hit rate: {loop_hit_rate(state)}")
    with open_sandbox() as sandbox:
        steps = run.task.finish_steps(run, sandbox)  # statistics over all trials, then what the task adds
        steps.append(("morning verdict", lambda: refresh_morning(run.wd, run.task)))
        steps.append(("report", lambda: console.print(f"report: {rich(_write_report(run.wd.root, run.data_dir))}")))
        for name, step in steps:
            try:
                step()
            except Exception as exc:  # a summary step must not hide the run's own results
                console.print(f"[yellow]warning:[/] {name} failed: {type(exc).__name__}: {rich(clip(exc, 300))}")
    console.print(f"files: {rich(run.wd.root)}/ ({', '.join(run.wd.user_files())}); "
                  + _test_split_note(run.test_readings))


def _test_split_note(readings: int) -> str:
    """What is true of the locked test split now: untouched, or read by ``final`` (and so less locked)."""
    if readings <= 0:
        return "the test split is untouched until `python harness.py final`"
    return (f"the test split has been read {readings} time{'s' * (readings != 1)} by `final`; searching further "
            "turns it into one more validation split")


def loop_hit_rate(state: LoopState) -> str:
    return Learnings.from_json(state.learnings).hit_rate() if state.learnings else "no graded hypotheses yet"


def _write_report(root: Path, data_dir: Path) -> Path:
    """The report, imported when written: matplotlib would otherwise load at every loop start."""
    from alphaloop.present.report import write_report

    return write_report(root, data_dir)
