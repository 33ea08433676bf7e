"""Everything alphaloop shows on a terminal: loud warnings, tables, the live view of the loop."""

from __future__ import annotations

from typing import TYPE_CHECKING

from rich.console import Console, RenderableType
from rich.panel import Panel

if TYPE_CHECKING:
    from alphaloop.learnings import Learnings
    from alphaloop.loop import Loop, LoopState

console = Console(soft_wrap=True)
console_err = Console(stderr=True)


def warn_loudly(title: str, body: str) -> None:
    """A warning nobody can miss (offline data, offline proposer, weak isolation), on stderr."""
    console_err.print(Panel(body, title=f"[bold]{title}[/]", border_style="bold yellow", expand=False))


def _fmt(x: float | None, spec: str = ".3f") -> str:
    return "-" if x is None else format(x, spec)


class PlainView:
    """One log line per event: what a user sees when stdout is a file or a pipe."""

    def __init__(self, total: int, out: Console | None = None) -> None:
        self.total = total
        self.out = out or Console(highlight=False, soft_wrap=True, markup=False)
        self.loop = None
        self.state = None

    def start(self, loop: "Loop", state: "LoopState", isolation: str) -> None:
        self.loop, self.state = loop, state
        cfg = loop.cfg
        self.out.print(f"alphaloop: proposer {loop.proposer_label}, metric val {cfg.metric} (validation split), "
                       f"population {cfg.population}, iterations up to {cfg.iterations}, workdir {cfg.workdir}/")
        self.out.print(isolation)
        if state.next_iteration:
            self.out.print(f"resuming at iteration {state.next_iteration} ({len(state.population)} in the population, "
                           f"{state.consecutive_fails} consecutive failures)")

    def stage(self, n: int, stage: str, detail: str = "") -> None:
        pass

    def note(self, text: str) -> None:
        self.out.print(text)

    def iteration_done(self, record: dict, state: "LoopState", learnings: "Learnings") -> None:
        n = record["iteration"]
        parent = "-" if record.get("parent") is None else record["parent"]
        if record["status"] == "accepted":
            s = record["scores"]["splits"]
            folds = record["scores"].get("fold_spread") or {}
            what = (f"accepted val {state.metric} {_fmt(s['val'][state.metric])} (train {_fmt(s['train'][state.metric])}, "
                    f"folds min {_fmt(folds.get('min'))} median {_fmt(folds.get('median'))}), "
                    f"val trades {s['val']['round_trips']:.0f}, {'ENTERED top-' + str(state.population_size) if record['in_population'] else 'not in top-' + str(state.population_size)}")
        else:
            what = f"rejected at {record['stage']}: {record['reason'][:160]}"
        best = state.best
        tokens = sum(record.get("tokens", {}).values())
        self.out.print(f"[iter {n}/{self.total}] parent {parent} | {what} | {record['timings']['total']:.2f}s"
                       f"{f' | {tokens} tokens' if tokens else ''} | best iter {best.iteration if best else '-'} "
                       f"val {state.metric} {_fmt(best.val_metric if best else None)} | hit rate {learnings.hit_rate()}")

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

    def start(self, loop: "Loop", state: "LoopState", isolation: str) -> None:
        import time

        self.loop, self.state, self.isolation = loop, state, isolation
        self.t0 = time.perf_counter()
        self.live.start()
        self._refresh()

    def stage(self, n: int, stage: str, detail: str = "") -> None:
        self.current = (str(n), stage, detail)
        self._refresh()

    def note(self, text: str) -> None:
        self.live.console.print(text) if self.live.is_started else console.print(text)

    def iteration_done(self, record: dict, state: "LoopState", learnings: "Learnings") -> None:
        self.done_here += 1
        self.hit_rate = learnings.hit_rate()
        self.last = state.last_outcome or "-"
        self.current = (str(record["iteration"]), "done", "")
        self._refresh()

    def _render(self) -> RenderableType:
        import time

        from rich.console import Group
        from rich.table import Table

        st, cfg = self.state, self.loop.cfg
        elapsed = time.perf_counter() - self.t0
        rate = self.done_here / elapsed * 60 if elapsed > 0 else 0.0
        head = Table.grid(padding=(0, 2))
        head.add_row(f"[bold]iteration[/] {self.current[0] if self.current[0] != '-' else st.next_iteration}/{self.total}", f"[bold]stage[/] {self.current[1]} {self.current[2]}",
                     f"[bold]elapsed[/] {elapsed:,.0f}s ({rate:.1f} it/min)",
                     f"[bold]tokens[/] {st.tokens['prompt']:,} in / {st.tokens['completion']:,} out")
        head.add_row(f"[bold]proposer[/] {self.loop.proposer_label}", f"[bold]fails in a row[/] {st.consecutive_fails}/{cfg.max_fails or 'inf'}",
                     f"[bold]trials[/] {st.trials} ({st.accepted} accepted)", f"[bold]hit rate[/] {self.hit_rate}")
        pop = Table(title=f"population (top-{st.population_size} by val {st.metric}; every figure says its split)", expand=True)
        for col, just in (("iter", "right"), (f"val {st.metric}", "right"), (f"train {st.metric}", "right"),
                          ("folds min / median", "right"), ("val trades", "right"), ("what it tried", "left")):
            pop.add_column(col, justify=just, overflow="ellipsis", no_wrap=col != "what it tried")
        for m in st.population:
            pop.add_row(str(m.iteration), _fmt(m.val_metric), _fmt(m.train_metric),
                        f"{_fmt(m.fold_min)} / {_fmt(m.fold_median)}", str(m.val_trades), m.description)
        return Panel(Group(head, pop, f"[bold]last outcome[/] {self.last}", f"[dim]{self.isolation}[/]"),
                     title="alphaloop", border_style="cyan")

    def _refresh(self) -> None:
        if self.live.is_started:
            self.live.update(self._render(), refresh=True)

    def close(self) -> None:
        if self.live.is_started:
            self.live.stop()


def make_view(total: int) -> PlainView:
    """The live panel on a terminal, plain log lines otherwise."""
    return LiveView(total) if console.is_terminal else PlainView(total)
