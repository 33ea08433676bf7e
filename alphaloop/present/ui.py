"""Everything alphaloop shows on a terminal: loud warnings, tables, the live view of the loop.

Text that may come from a candidate or a model (descriptions, reasons, notes, labels) goes through
``alphaloop.present.text`` first: ``safe``/``clip`` where it is printed without markup, ``rich`` where the
line holds markup, so neither an escape sequence nor ``[bold]`` in a name reaches the terminal.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol

from rich.console import Console, RenderableType
from rich.panel import Panel

from alphaloop.present.text import clip, fmt, rich, safe

if TYPE_CHECKING:
    from alphaloop.run.learnings import Learnings
    from alphaloop.run.records import IterationRecord
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


class PlainView:
    """One log line per event: what a user sees when stdout is a file or a pipe."""

    def __init__(self, total: int, out: Console | None = None) -> None:
        self.total = total
        self.out = out or Console(highlight=False, soft_wrap=True, markup=False)
        self.loop = None
        self.state = None

    def start(self, loop: RunView, state: LoopState, isolation: str) -> None:
        self.loop, self.state = loop, state
        cfg = loop.cfg
        self.out.print(f"alphaloop: proposer {safe(loop.proposer_label)}, metric val {cfg.metric} (validation split), "
                       f"population {cfg.population}, iterations up to {cfg.iterations}, workdir {cfg.workdir}/")
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
            task = self.loop.task
            what = (f"accepted val {state.metric} {fmt(s['val'][state.metric])}"
                    f"{task.beside_benchmark(s['val'], state.metric)} "
                    f"(train {fmt(s['train'][state.metric])}, "
                    f"folds min {fmt(folds.get('min'))} median {fmt(folds.get('median'))}), "
                    f"{task.live_note(s['val'])}, "
                    f"{'ENTERED ' + top if record.in_population else 'not in ' + top}")
        else:
            what = f"rejected at {safe(record.stage)}: {clip(record.reason, 160)}"
        best = state.best
        tokens = sum(record.tokens.values())
        self.out.print(f"[iter {n}/{self.total}] parent {parent} | {what} | {record.timings['total']:.2f}s"
                       f"{f' | {tokens} tokens' if tokens else ''} | best iter {best.iteration if best else '-'} "
                       f"val {state.metric} {fmt(best.val_metric if best else None)}"
                       f"{self.loop.task.beside_benchmark(best.val, state.metric) if best else ''} | "
                       f"hit rate {learnings.hit_rate()}")

    def close(self) -> None:
        pass


class LiveView(PlainView):
    """A live panel on a terminal: progress, stage, population, last outcome, tokens and rate."""

    def __init__(self, total: int) -> None:
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

        self.loop, self.state, self.isolation = loop, state, rich(isolation)
        self.t0 = time.perf_counter()
        self.live.start()
        self._refresh()

    def stage(self, n: int, stage: str, detail: str = "") -> None:
        self.current = (str(n), rich(stage), rich(clip(detail, 120)))
        self._refresh()

    def note(self, text: str) -> None:
        out = self.live.console if self.live.is_started else console
        out.print(safe(text, keep="\n"), markup=False, highlight=False)

    def iteration_done(self, record: IterationRecord, state: LoopState, learnings: Learnings) -> None:
        self.done_here += 1
        self.hit_rate = learnings.hit_rate()
        self.last = rich(clip(state.last_outcome, 300)) if state.last_outcome else "-"
        self.current = (str(record.iteration), "done", "")
        self._refresh()

    def _render(self) -> RenderableType:
        import time

        from rich.console import Group
        from rich.table import Table

        st, cfg = self.state, self.loop.cfg
        elapsed = time.perf_counter() - self.t0
        rate = self.done_here / elapsed * 60 if elapsed > 0 else 0.0
        head = Table.grid(padding=(0, 2))
        shown = self.current[0] if self.current[0] != "-" else st.next_iteration
        head.add_row(f"[bold]iteration[/] {shown}/{self.total}", f"[bold]stage[/] {self.current[1]} {self.current[2]}",
                     f"[bold]elapsed[/] {elapsed:,.0f}s ({rate:.1f} it/min)",
                     f"[bold]tokens[/] {st.tokens['prompt']:,} in / {st.tokens['completion']:,} out")
        head.add_row(f"[bold]proposer[/] {rich(self.loop.proposer_label)}",
                     f"[bold]fails in a row[/] {st.consecutive_fails}/{cfg.max_fails or 'inf'}",
                     f"[bold]trials[/] {st.trials} ({st.accepted} accepted)", f"[bold]hit rate[/] {self.hit_rate}")
        pop = Table(title=f"population (top-{st.population_size} by val {st.metric}; every figure says its split)",
                    expand=True)
        task = self.loop.task
        bench = task.benchmark
        for col, just in (("iter", "right"), (f"val {st.metric}", "right"), (f"val {bench} {st.metric}", "right"),
                          (f"train {st.metric}", "right"),
                          ("train folds min / median", "right"), ("val trades", "right"), ("what it tried", "left")):
            pop.add_column(col, justify=just, overflow="ellipsis", no_wrap=col != "what it tried")
        for m in st.population:
            pop.add_row(str(m.iteration), fmt(m.val_metric),
                        fmt(task.benchmark_value(m.val, st.metric)),
                        fmt(m.train_metric),
                        f"{fmt(m.fold_min)} / {fmt(m.fold_median)}", str(m.val_trades), rich(clip(m.description, 300)))
        budget = self.loop.budget_note
        lines = [f"[bold]last outcome[/] {self.last}", *([rich(budget)] if budget else []), self._workers_line(),
                 f"[dim]{self.isolation}[/]"]
        return Panel(Group(head, pop, *lines),
                     title="alphaloop", border_style="cyan")

    def _workers_line(self) -> str:
        """Workers busy, the iterations in flight and the stage each is at, and committed candidates a minute."""
        loop = self.loop
        executor, flights = getattr(loop, "executor", None), getattr(loop, "flights", None)
        stats = executor.stats() if executor is not None else {"workers": loop.cfg.workers, "busy": 0}
        stages = ", ".join(f"{k} {stage}" for k, stage in flights.stages()) if flights is not None else ""
        rate = flights.per_minute() if flights is not None else 0.0
        return (f"[bold]workers busy[/] {stats.get('busy', 0)}/{stats.get('workers', loop.cfg.workers)} "
                f"({rich(loop.cfg.executor)})  [bold]in flight[/] {len(flights.flights) if flights else 0} "
                f"({rich(stages) or '-'})  [bold]throughput[/] {rate:.1f} candidates/min")

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


def make_view(total: int) -> PlainView:
    """The live panel on a terminal, plain log lines otherwise."""
    return LiveView(total) if console.is_terminal else PlainView(total)
