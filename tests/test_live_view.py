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


class Screen:
    """A terminal of ``cols`` x ``rows`` with its scrollback, enough for what rich's live display writes: text
    (wrapping at the right edge), CR, LF, cursor up (never above the visible screen) and erase line."""

    def __init__(self, cols: int, rows: int) -> None:
        self.cols, self.rows, self.lines, self.x, self.y = cols, rows, [""], 0, 0

    def _down(self) -> None:
        self.y += 1
        if self.y == len(self.lines):
            self.lines.append("")

    def feed(self, text: str) -> None:
        import re

        for tok in re.split(r"(\x1b\[[0-9;?]*[A-Za-z]|\r|\n)", text):
            if tok == "\r":
                self.x = 0
            elif tok == "\n":
                self._down()
            elif tok == "\x1b[1A":  # what scrolled off the screen cannot be reached again: a ghost stays there
                self.y = max(self.y - 1, len(self.lines) - self.rows, 0)
            elif tok == "\x1b[2K":
                self.lines[self.y] = ""
            elif tok and not tok.startswith("\x1b"):
                for ch in tok:
                    if self.x >= self.cols:
                        self._down()
                        self.x = 0
                    line = self.lines[self.y].ljust(self.x)
                    self.lines[self.y] = line[:self.x] + ch + line[self.x + 1:]
                    self.x += 1

    def panels(self) -> int:
        """How many live panels (their top border) the screen and its scrollback hold now."""
        return sum("─ alphaloop ─" in line for line in self.lines)


def test_no_ghost_panel_with_two_workers_in_a_100x30_terminal(frozen_data, tmp_path) -> None:
    """A real loop with --workers 2 in a pseudo-terminal of 100x30: at every refresh exactly one panel is on the
    screen and in its scrollback, so no earlier panel is left above the live one."""
    import fcntl
    import os
    import pty
    import select
    import struct
    import subprocess
    import sys
    import termios
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 30, 100, 0, 0))
    env = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "LINES", "NO_COLOR", "TERM", "CI")}
    env.update(TERM="xterm-256color", OPENAI_API_KEY="", OPENAI_BASE_URL="", PYTHONPATH=str(root))
    proc = subprocess.Popen([sys.executable, str(root / "harness.py"), "--workers", "2", "--iterations", "8",
                             "--stress-paths", "0", "--data", str(frozen_data), "--workdir", str(tmp_path / "run")],
                            stdin=slave, stdout=slave, stderr=slave, env=env, cwd=tmp_path)
    os.close(slave)
    screen, out, refreshes = Screen(100, 30), b"", 0
    while True:
        ready, _, _ = select.select([master], [], [], 300)
        assert ready, "the loop printed nothing for 300 s"
        try:
            chunk = os.read(master, 65536)
        except OSError:  # EIO: the child closed the terminal
            break
        if not chunk:
            break
        out += chunk
    assert proc.wait(timeout=60) == 0, out.decode("utf-8", "replace")[-3000:]
    os.close(master)
    text = out.decode("utf-8", "replace")
    frames = text.split("\r\x1b[2K")  # each refresh of the live display starts by erasing the last one
    assert len(frames) > 10, "the live panel was not drawn: no terminal?"
    for frame in frames:
        screen.feed("\r\x1b[2K" + frame)
        refreshes += 1
        assert screen.panels() <= 1, "\n".join(screen.lines[-60:])
    assert screen.panels() == 1 and "stopped: iterations" in text
