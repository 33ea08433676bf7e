"""Everything alphaloop shows on a terminal: loud warnings, tables, the live view of the loop.

Text that may come from a candidate or a model (descriptions, reasons, notes, labels) goes through
``alphaloop.present.text`` first: ``safe``/``clip`` where it is printed without markup, ``rich`` where the
line holds markup, so neither an escape sequence nor ``[bold]`` in a name reaches the terminal.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from rich.console import Console, RenderableType
from rich.panel import Panel

from alphaloop.present.text import clip, fmt, rich, safe

if TYPE_CHECKING:
    from alphaloop.run.learnings import Learnings
    from alphaloop.run.records import IterationRecord, TestReading
    from alphaloop.run.state import LoopState

console = Console(soft_wrap=True)
console_err = Console(stderr=True)


class RunView(Protocol):
    """What a view reads of the run it shows (the loop satisfies it; the view never imports the loop)."""

    cfg: Any  # loop.LoopConfig: metric, population, iterations, max_fails, workdir
    task: Any  # alphaloop.tasks.protocol.Task: the benchmark beside each figure, and the task's own figures
    proposer_label: str
    budget_note: str | None  # time left while --hours or --max-tokens is set, else None



def warn_loudly(title: str, body: str) -> None:
    """A warning nobody can miss (offline data, offline proposer, weak isolation), on stderr."""
    console_err.print(Panel(rich(body, keep="\n"), title=f"[bold]{rich(title)}[/]", border_style="bold yellow",
                            expand=False))


def warn_read_before(before: Sequence[TestReading], root: Path, candidate: str, list_earlier: bool = False) -> None:
    """The loud warning that this workdir's test split was read before (``before``: its earlier readings),
    naming what was chosen by it (``candidate``: "strategy", "portfolio"...); silent on a first reading.

    Why: each reading used to choose or change a candidate turns the test split into one more validation split."""
    if not before:
        return
    earlier = ("Earlier readings: " + "; ".join(f"{r.time} iteration {r.iteration}" for r in before) + ".\n"
               if list_earlier else "")
    warn_loudly("THE TEST SPLIT HAS BEEN READ BEFORE",
                f"This is reading number {len(before) + 1} of the test split in {root}.\n{earlier}"
                f"Each reading used to choose or change a {candidate} turns the test split into one more "
                "validation split;\nthe figures below are no longer an unbiased estimate.")


def limits_text(cfg: Any) -> str:
    """How the run will end, in words: the iteration cap, the time budget and what failures do."""
    parts = [f"iterations up to {cfg.iterations}" if cfg.iterations is not None else "no iteration cap"]
    if cfg.hours is not None:
        parts.append(f"until --hours {cfg.hours:g}")
    parts.append(f"stops after {cfg.max_fails} fails in a row" if cfg.max_fails
                 else f"after {cfg.stall_after} fails in a row the search widens")
    return ", ".join(parts)


def iteration_of(n: int | str, total: int | None) -> str:
    """'7/50' with an iteration cap, '7' without one."""
    return f"{n}/{total}" if total is not None else str(n)


def fails_text(fails: int, cfg: Any) -> str:
    """The failure count beside what it leads to: a stop (--max-fails) or a wider search."""
    if cfg.max_fails:
        return f"{fails} (stops at {cfg.max_fails})"
    return f"{fails} (the search widens at {cfg.stall_after})"


def flow(facts: list[tuple[str, str]], width: int, max_lines: int = 0, style: str = "") -> list[RenderableType]:
    """Labelled facts packed into lines of at most ``width`` characters, each fact whole on one line; a fact
    longer than a line wraps at words, never inside one (``max_lines`` > 0 clips the result, at a word)."""
    from rich.text import Text

    sep = "  ·  "
    lines: list[Text] = []
    current = Text(style=style, no_wrap=False, overflow="fold")  # the console soft-wraps; a panel line must not
    for label, value in facts:
        plain = f"{label} {value}" if label else value
        if max_lines:
            plain = clip(plain, max_lines * width - 2 * max_lines)
        piece = Text.assemble((label, "bold"), " " if label else "", plain[len(label) + 1 if label else 0:],
                              style=style)
        if current.plain and len(current.plain) + len(sep) + len(plain) > width:
            lines.append(current)
            current = Text(style=style, no_wrap=False, overflow="fold")
        if current.plain:
            current.append(sep)
        current.append_text(piece)
    if current.plain:
        lines.append(current)
    return list(lines)


class QuietView:
    """Shows nothing: for code that runs the loop and prints its own figures (the rank benches)."""

    def start(self, loop: RunView, state: LoopState, isolation: str) -> None: ...
    def stage(self, n: int, stage: str, detail: str = "") -> None: ...
    def note(self, text: str) -> None: ...
    def iteration_done(self, record: IterationRecord, state: LoopState, learnings: Learnings) -> None: ...
    def close(self) -> None: ...


class PlainView:
    """One log line per event: what a user sees when stdout is a file or a pipe."""

    def __init__(self, total: int | None, out: Console | None = None) -> None:
        self.total = total
        self.out = out or Console(highlight=False, soft_wrap=True, markup=False)
        self.loop = None
        self.state = None

    def start(self, loop: RunView, state: LoopState, isolation: str) -> None:
        self.loop, self.state = loop, state
        cfg = loop.cfg
        self.out.print(f"alphaloop: proposer {safe(loop.proposer_label)}, metric val {cfg.metric} (validation split), "
                       f"population {cfg.population}, {limits_text(cfg)}, workdir {cfg.workdir}/")
        if cfg.workers > 1 or cfg.executor != "local":
            self.out.print(f"workers: {cfg.workers} iterations in flight ({cfg.executor} executor); iteration k "
                           f"proposes from the state committed up to k-{cfg.workers}, records committed in order")
        self.out.print(safe(isolation))
        if state.next_iteration:
            self.out.print(f"resuming at iteration {state.next_iteration} ({len(state.population)} in the population, "
                           f"{state.consecutive_fails} consecutive failures)")

    def stage(self, n: int, stage: str, detail: str = "") -> None:
        pass

    def note(self, text: str) -> None:
        self.out.print(safe(text, keep="\n"))

    def iteration_done(self, record: IterationRecord, state: LoopState, learnings: Learnings) -> None:
        n = record.iteration
        parent = "-" if record.parent is None else record.parent
        if record.accepted:
            s = record.scores["splits"]
            folds = record.fold_spread
            top = f"top-{state.population_size}"
            what = (f"accepted val {state.metric} {fmt(s['val'][state.metric])}"
                    f"{self.loop.task.beside_benchmark(s['val'], state.metric)} "
                    f"(train {fmt(s['train'][state.metric])}, "
                    f"folds min {fmt(folds.get('min'))} median {fmt(folds.get('median'))}), "
                    f"{self.loop.task.live_note(s['val'])}, "
                    f"{'ENTERED ' + top if record.in_population else record.copy_words or 'not in ' + top}")
        else:
            what = f"rejected at {safe(record.stage)}: {clip(record.reason, 160)}"
        best = state.best
        tokens = sum(record.tokens.values())
        self.out.print(f"[iter {iteration_of(n, self.total)}] parent {parent} | {what} | {record.timings['total']:.2f}s"
                       f"{f' | {tokens} tokens' if tokens else ''} | best iter {best.iteration if best else '-'} "
                       f"val {state.metric} {fmt(best.val_metric if best else None)}"
                       f"{self.loop.task.beside_benchmark(best.val, state.metric) if best else ''} | "
                       f"hit rate {learnings.hit_rate()}")

    def close(self) -> None:
        pass


class LiveView(PlainView):
    """A live panel on a terminal: progress, stage, population, last outcome, tokens and rate."""

    def __init__(self, total: int | None) -> None:
        super().__init__(total, console)
        from rich.live import Live

        self.live = Live(console=console, refresh_per_second=4, transient=False)
        self.current = ("-", "starting", "")
        self.last = "-"
        self.isolation = ""
        self.hit_rate = "no graded hypotheses yet"
        self.t0 = 0.0
        self.done_here = 0

    def start(self, loop: RunView, state: LoopState, isolation: str) -> None:
        import time

        self.loop, self.state, self.isolation = loop, state, safe(isolation)
        if state.next_iteration:  # said once, above the panel, as the plain lines say it
            console.print(f"resuming at iteration {state.next_iteration} ({len(state.population)} in the population, "
                          f"{state.consecutive_fails} consecutive failures)", markup=False, highlight=False)
        self.t0 = time.perf_counter()
        self.live.start()
        self._refresh()

    def stage(self, n: int, stage: str, detail: str = "") -> None:
        self.current = (str(n), safe(stage), clip(detail, 120))
        self._refresh()

    def note(self, text: str) -> None:
        out = self.live.console if self.live.is_started else console
        out.print(safe(text, keep="\n"), markup=False, highlight=False)

    def iteration_done(self, record: IterationRecord, state: LoopState, learnings: Learnings) -> None:
        self.done_here += 1
        self.hit_rate = learnings.hit_rate()
        self.last = clip(state.last_outcome, 300) if state.last_outcome else "-"
        self.current = (str(record.iteration), "done", "")
        self._refresh()

    def _render(self) -> RenderableType:
        """A panel that fits a 100x30 terminal: facts flow into lines whole (never cut inside a word), the
        population table keeps room for what each member is, and the height stays bounded."""
        import time

        from rich.console import Group

        st, cfg = self.state, self.loop.cfg
        width = max(40, self.live.console.width - 4)  # inside the panel's border and padding
        elapsed = time.perf_counter() - self.t0
        rate = self.done_here / elapsed * 60 if elapsed > 0 else 0.0
        shown = self.current[0] if self.current[0] != "-" else st.next_iteration
        budget = self.loop.budget_note
        facts = [("iteration", iteration_of(shown, self.total)),
                 ("elapsed", f"{elapsed:,.0f}s ({rate:.1f} it/min)"),
                 *([("time left", budget.removeprefix("time left: "))] if budget else []),
                 ("proposer", self.loop.proposer_label),
                 ("tokens", f"{st.tokens['prompt']:,} in / {st.tokens['completion']:,} out"),
                 ("trials", f"{st.trials} ({st.accepted} accepted)"),
                 ("fails in a row", fails_text(st.consecutive_fails, cfg)),
                 ("hit rate", self.hit_rate)]
        lines = [*flow(facts, width), *flow(self._activity(), width), self._population(width),
                 *flow([("last outcome", self.last)], width, max_lines=2),
                 *flow([("", self.isolation)], width, max_lines=1, style="dim")]
        return Panel(Group(*lines), title="alphaloop", border_style="cyan")

    def _activity(self) -> list[tuple[str, str]]:
        """What runs now: each iteration in flight with its stage, and how many sandbox workers are evaluating.

        Iterations in flight may all be proposing (waiting for a model) while no worker evaluates; the
        words say which, so "0 evaluating" beside "2 in flight" is no contradiction."""
        loop = self.loop
        executor, flights = getattr(loop, "executor", None), getattr(loop, "flights", None)
        stats = executor.stats() if executor is not None else {"workers": loop.cfg.workers, "busy": 0}
        stages = flights.stages() if flights is not None else []
        now = ", ".join(f"iter {k} {stage.split(' (')[0]}" for k, stage in stages)  # "evaluate", not its stages
        if not now:
            now = f"iter {self.current[0]} {self.current[1]} {self.current[2]}".strip()
        facts = [("in flight" if loop.cfg.workers > 1 else "now", now)]
        if loop.cfg.workers > 1 or loop.cfg.executor != "local":
            facts.append(("sandbox workers", f"{stats.get('busy', 0)} of {stats.get('workers', loop.cfg.workers)} "
                                             f"evaluating ({loop.cfg.executor})"))
            rate = flights.per_minute() if flights is not None else 0.0
            facts.append(("throughput", f"{rate:.1f} candidates/min"))
        return facts

    def _population(self, width: int) -> RenderableType:
        """The top-K with buy and hold beside each figure; the last column (what each member is) takes the room
        the figures leave, wrapped at words."""
        from rich.table import Table

        st = self.state
        task = self.loop.task
        pop = Table(title=f"population: top-{st.population_size} by {st.metric} on validation", expand=True,
                    title_justify="left", padding=(0, 1))
        for col in ("iter", "val", f"val {task.benchmark}", "train", "train folds min/med",
                    "val trades"):
            pop.add_column(col, justify="right", no_wrap=True)
        pop.add_column("what it is", justify="left", ratio=1, min_width=16, overflow="fold")
        room = max(16, width - 70)  # the figures' columns take about 70 characters with their borders
        for m in st.population:
            pop.add_row(str(m.iteration), fmt(m.val_metric),
                        fmt(task.benchmark_value(m.val, st.metric)), fmt(m.train_metric),
                        f"{fmt(m.fold_min)} / {fmt(m.fold_median)}", str(m.val_trades),
                        rich(clip(m.description, 2 * room - 6)))
        return pop

    def _refresh(self) -> None:
        if self.live.is_started:
            self.live.update(_Rendered(self), refresh=True)  # rendered at every auto-refresh: workers stay live

    def close(self) -> None:
        if self.live.is_started:
            self.live.stop()


class _Rendered:
    """The panel rebuilt each time rich draws it, so workers busy and throughput move between events."""

    def __init__(self, view: LiveView) -> None:
        self.view = view

    def __rich__(self) -> RenderableType:
        return self.view._render()


def make_view(total: int | None) -> PlainView:
    """The live panel on a terminal, plain log lines otherwise."""
    return LiveView(total) if console.is_terminal else PlainView(total)
