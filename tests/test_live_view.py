"""The live panel reads at 100x30: whole words, room for what each member is, a bounded height."""

from __future__ import annotations

import io
from types import SimpleNamespace

from rich.console import Console

from alphaloop.config import LoopConfig
from alphaloop.present import ui
from alphaloop.run.records import Member
from alphaloop.run.state import LoopState
from alphaloop.tasks import get_task

DESCRIPTION = ("enter when the 16-bar z-score of the close falls below -0.7 and the 48-bar return volatility is "
               "below 1.15x its 200-bar average; exit when the z-score is back above 1.4")


def _state(fails: int = 3) -> LoopState:
    st = LoopState(metric="sharpe", population_size=3, data_manifest="x", next_iteration=12, consecutive_fails=fails,
                   trials=12, accepted=10, last_outcome="iter 11 rejected at guards: too few trades on validation: "
                   "2 round trip(s) in 4.0 years, below the minimum of one a year; loosen the entry rule")
    st.population = [Member(iteration=k, value=0.7 - k / 100, val_metric=0.7 - k / 100, train_metric=0.1,
                            val_trades=11, description=DESCRIPTION, val={"sharpe": 0.7, "bh_sharpe": 1.035},
                            fold_min=-0.687, fold_median=0.302) for k in (4, 7, 9)]
    return st


def _panel(cfg: LoopConfig, st: LoopState, out: io.StringIO, workers_busy: int = 0) -> list[str]:
    console = Console(file=out, width=100, height=30, soft_wrap=True, color_system=None, force_terminal=False)
    view = ui.LiveView(cfg.iterations)
    view.live.console = console
    view.state = st
    view.hit_rate = "6/12 hypotheses held (50%); 0 ungraded; 1 of the graded on rejected (scored) candidates"
    view.last = st.last_outcome
    flights = SimpleNamespace(stages=lambda: [(12, "propose"), (13, "propose")], per_minute=lambda: 12.0)
    executor = SimpleNamespace(stats=lambda: {"workers": cfg.workers, "busy": workers_busy})
    view.loop = SimpleNamespace(cfg=cfg, proposer_label="llm qwen2.5-coder:14b @ http://localhost:11434/v1",
                                budget_note="time left: about 7h 58m (bound by --hours 8; estimate from this "
                                            "command's pace)", executor=executor, flights=flights,
                                task=get_task("trade"))
    console.print(view._render())
    return out.getvalue().splitlines()


def test_the_panel_fits_100_columns_with_whole_words_and_a_readable_population() -> None:
    cfg = LoopConfig(iterations=None, max_fails=0, hours=8, workers=2)
    lines = _panel(cfg, _state(), io.StringIO())
    text = "\n".join(lines)
    assert all(len(line) <= 100 for line in lines) and len(lines) <= 28, text
    assert "fails in a row 3 (the search widens at 5)" in text and "/inf" not in text
    assert "iteration 12 " in text and "time left about 7h 58m" in text
    # what each member is gets real room: a dozen letters at least on its first line
    row = next(line for line in lines if line.startswith("│ │    4 │"))
    assert len(row.split("│")[-3].strip()) >= 12, row
    # no word is cut inside: every word shown of the long texts is a word of the original
    words = set(DESCRIPTION.split()) | set(_state().last_outcome.split()) | {"…"}
    for line in lines:
        for cell in line.split("│"):
            for word in cell.split():
                if word.isalpha() and len(word) > 3 and word.lower() == word:
                    assert any(word in w for w in words) or word in text.replace("\n", " "), word


def test_iterations_in_flight_and_idle_workers_are_told_apart() -> None:
    cfg = LoopConfig(iterations=50, workers=2)
    text = "\n".join(_panel(cfg, _state(), io.StringIO(), workers_busy=0))
    assert "in flight iter 12 propose, iter 13 propose" in text
    assert "sandbox workers 0 of 2 evaluating" in text and "busy" not in text
    assert "fails in a row 3 (stops at 5)" in text and "iteration 12/50" in text


def test_a_resume_in_the_live_view_says_where_it_resumes(monkeypatch) -> None:
    out = io.StringIO()
    console = Console(file=out, width=100, color_system=None)
    monkeypatch.setattr(ui, "console", console)
    view = ui.LiveView(50)
    view.live.console = console
    monkeypatch.setattr(view.live, "start", lambda *a, **k: None)
    loop = SimpleNamespace(cfg=LoopConfig(), proposer_label="offline (seed 0)", budget_note=None,
                           task=get_task("trade"))
    view.start(loop, _state(), "isolation: full")
    assert "resuming at iteration 12 (3 in the population, 3 consecutive failures)" in out.getvalue()
