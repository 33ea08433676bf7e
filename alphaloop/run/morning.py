"""The morning verdict at the head of ``learnings.md``: what the end-of-run statistics concluded, in words,
and the latest reading of the test split, if ``harness.py final`` made one.

These lines are written into the file only: the prompt is built from the loop's state
(``Learnings.prompt_view``), never from the file, so the test reading never reaches the model. The
loop rewrites the file after every iteration; the end of every run and every ``final`` put the lines
back (``refresh_morning``), so a resumed run's file carries them again when it ends.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from alphaloop.run.records import TestReading
from alphaloop.run.store import atomic_write_text
from alphaloop.run.workdir import Workdir

if TYPE_CHECKING:
    from alphaloop.tasks.protocol import Task

PREFIXES = ("- Morning verdict", "- Test split (read by harness.py final")
HEADER = "## Distilled"


def _figure(value: Any) -> str:
    return f"{value:.3f}" if isinstance(value, (int, float)) else "-"


def verdict_line(stats: dict[str, Any] | None) -> str | None:
    """The statistics' verdict in words (SPA against buy and hold, Sharpe and excess DSR), or None."""
    if not stats:
        return None
    u = stats.get("universe") or {}
    words = u.get("verdict") or "; ".join(str(stats[k]) for k in ("verdict_spa", "verdict_dsr") if stats.get(k))
    if not words:
        return None
    best = stats.get("best_iteration")
    return (f"- Morning verdict (end of run, {stats.get('split', 'val')} split"
            + (f", best iter {best}" if best is not None else "") + f"): {words}.")


def reading_line(readings: list[TestReading], task: Task | None = None) -> str | None:
    """The latest reading of the test split in words, beside its benchmark and validation, or None.

    ``task`` (the run's) names the benchmark of a reading without buy and hold (a forecaster's climatology
    and rolling climatology); without it such a reading is still said, with the benchmark it recorded."""
    if not readings:
        return None
    r = readings[-1]
    times = f"{len(readings)} time{'s' if len(readings) != 1 else ''}"
    head = f"- Test split (read by harness.py final {times}; never shown to the model): iter {r.iteration}"
    if r.status != "scored" or not r.test:
        return f"{head}, rejected at {r.stage or 'an unknown stage'} when rerun with the test rows."
    metric = r.metric or "metric"
    test = r.test.get(metric)
    valid = f"; validation had {_figure(r.val_metric)}."
    bh = r.bh_test_metric
    if bh is None and r.benchmark:  # the task's own benchmark (e.g. climatology), never "buy and hold -"
        beside = task.beside_benchmark(r.test, metric) if task is not None else f" ({r.benchmark})"
        return f"{head}, test {metric} {_figure(test)}{beside}{valid}"
    side = ("above" if test > bh else "below") if isinstance(test, (int, float)) and isinstance(bh, (int, float)) \
        else "beside"
    return f"{head}, test {metric} {_figure(test)}, {side} buy and hold {_figure(bh)}{valid}"


def with_morning(text: str, lines: list[str]) -> str:
    """``learnings.md`` with ``lines`` first under the distilled heading (replacing any earlier ones)."""
    kept = [line for line in text.splitlines() if not line.startswith(PREFIXES)]
    at = next((i for i, line in enumerate(kept) if line.startswith(HEADER)), None)
    if at is None or not lines:
        return "\n".join(kept) + ("\n" if text.endswith("\n") else "")
    at += 1
    while at < len(kept) and not kept[at].strip():
        at += 1
    return "\n".join(kept[:at] + lines + kept[at:]) + ("\n" if text.endswith("\n") else "")


def refresh_morning(wd: Workdir, task: Task | None = None) -> None:
    """Put the morning verdict and the latest test reading into ``learnings.md`` (when it exists)."""
    if not wd.learnings.is_file():
        return
    stats = wd.read_stats()
    lines = [line for line in (verdict_line(stats.to_json() if stats else None), reading_line(wd.test_readings(), task))
             if line]
    text = wd.read_learnings()
    new = with_morning(text, lines)
    if new != text:
        atomic_write_text(wd.learnings, new)
