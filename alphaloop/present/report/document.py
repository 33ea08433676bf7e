"""The whole report document: navigation, the sections in order, and the atomic write."""

from __future__ import annotations

from pathlib import Path

from alphaloop.present.report.analysis import analysis_html, best_windows, equity_csv
from alphaloop.present.report.best import best_html, years_html
from alphaloop.present.report.data import Run, load_run
from alphaloop.present.report.html import esc
from alphaloop.present.report.performance import equity_html, folds_html
from alphaloop.present.report.robustness import cross_html, stats_html, stress_html
from alphaloop.present.report.style import CSS
from alphaloop.present.report.summary import (
    header_html,
    hypotheses_html,
    learnings_html,
    population_html,
    progress_html,
)
from alphaloop.present.report.universe import universe_html
from alphaloop.run.records import infer_task
from alphaloop.run.store import read_json
from alphaloop.run.workdir import Workdir
from alphaloop.tasks import Task, get_task

NAV = (("summary", "Summary"), ("progress", "Progress"), ("population", "Population"), ("best", "Best"),
       ("equity", "Equity"), ("universe", "Universe"), ("portfolio", "Portfolio"), ("years", "Per year"),
       ("analysis", "Trade analysis"),
       ("folds", "Walk-forward"),
       ("stress", "Stress"),
       ("cross", "Second market"), ("stats", "Statistics"),
       ("hypotheses", "Hypotheses"), ("learnings", "Learnings"))


def render_report(run: Run, task: Task | None = None) -> str:
    """The whole HTML document as a string (no file, network or test-split access); ``task`` adds its own
    sections (``Task.report_sections``) after the universe's."""
    own = task.report_sections(run) if task is not None else []
    omit = task.report_omits() if task is not None else frozenset()
    shared = (("population", population_html), ("best", best_html), ("equity", equity_html),
              ("universe", universe_html))
    later = (("years", years_html), ("analysis", analysis_html), ("folds", folds_html), ("stress", stress_html),
             ("cross", cross_html), ("stats", stats_html), ("hypotheses", hypotheses_html),
             ("learnings", learnings_html))
    parts = [header_html(run, task), progress_html(run, task), *(f(run) for sid, f in shared if sid not in omit),
             *own, *(f(run) for sid, f in later if sid not in omit)]
    body = "".join(parts)  # a section that is absent (the universe for one instrument) has no link either
    nav = "".join(f'<a href="#{sid}">{esc(label)}</a>' for sid, label in NAV if f'<section id="{sid}"' in body)
    title = f"alphaloop report — {run.workdir.name}"
    return (f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
            f'<meta name="viewport" content="width=device-width, initial-scale=1"><title>{esc(title)}</title>'
            f"<style>{CSS}</style></head><body><nav>{nav}</nav><main>{body}"
            f"<footer>alphaloop report · self-contained: no network, no external files · the test split is shown "
            f"only as recorded by harness.py final</footer></main></body></html>\n")


def workdir_task(wd: Workdir) -> Task | None:
    """The task state.json names (files from before the field: its metric tells); None when it cannot be
    read (the shared report explains a damaged run) or names a task this alphaloop does not have."""
    try:
        return get_task(infer_task(read_json(wd.state))) if wd.has_run() else None
    except (OSError, ValueError, AttributeError):  # UnknownTask is a ValueError
        return None


def write_report(workdir: Path, data_dir: Path) -> Path:
    """Write ``report.html`` into the workdir (atomically) and return its path; a task with a report of its
    own (``Task.report_writer``, e.g. the forecast task's) writes that one instead."""
    wd = Workdir(workdir)
    task = workdir_task(wd)
    own = task.report_writer() if task is not None else None
    if own is not None:
        return own(Path(workdir), Path(data_dir))
    run = load_run(Path(workdir), Path(data_dir))
    csv = equity_csv(best_windows(run))
    if csv:
        wd.write_equity_csv(csv)
    return wd.write_report(render_report(run, task))
