"""The task protocol: everything that differs between tasks, asked of one object.

The loop, the pipeline, the sandbox, the records, the workdir and the commands are shared by every
task and never ask which one runs; they call the methods below on the task chosen once by
``--task`` (``alphaloop.tasks.get_task``) and written into every record (``task``). A new task is
one package ``alphaloop/tasks/<name>/`` defining a ``Task`` subclass, and one line in
``alphaloop.tasks.PLUGINS``.

Why a base class and not a ``typing.Protocol``: most methods have one right default (the trade
task's conventions: trade.py as the starting file, no invariance probes unless the task
asks for them...), so a new task overrides what differs and inherits the rest; abstract methods are
the ones no default can answer.

This module imports nothing from alphaloop, so every layer may receive a ``Task`` and call it: the
pipeline, the state fold, the rows and the view are handed the task object and never import the
registry. Types from the rest of the package are written ``Any`` in signatures and named in the
docstrings: ``Trial``/``Verdict``/``Evaluation`` (alphaloop.evaluate.pipeline), ``History``
(alphaloop.evaluate.scoring), ``IterationRecord`` (alphaloop.run.records), ``LoopState``
(alphaloop.run.state), ``FinishInputs``/``FinalInputs`` (alphaloop.commands.inputs).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]


def driver_source(name: str) -> str:
    """The text of task ``name``'s child-side driver, ``alphaloop/tasks/<name>/driver.py`` ("" if none).

    A function of the name alone, so a one-shot command can hand the driver to a sandbox worker it starts
    before importing the task (``harness.py check``)."""
    path = Path(__file__).resolve().parent / name / "driver.py"
    return path.read_text(encoding="utf-8") if name.isidentifier() and path.is_file() else ""


class Task(ABC):
    """One kind of research the loop can run (``--task NAME``)."""

    name: str = ""  # the --task value, the ``task`` field of every record and of state.json, and what its saved
    # candidates are named after: iter_N_<name>.py and best_<name>.py (alphaloop.run.workdir; older runs: _trade.py)
    summary: str = ""  # one line for ``--task``'s help: what a candidate defines and how it is scored
    functions: tuple[str, ...] = ()  # the functions the gate requires the region to define
    candidates: str = "strategies"  # what the task's candidates are called, in the plural ("forecasters")
    metrics: tuple[str, ...] = ("sharpe", "total_return", "sortino", "calmar", "cagr")  # --metric values it accepts
    benchmark: str = "B&H"  # the benchmark's short name in tables (the live view's column)
    baseline: str = "baseline (the region of the starting trade.py)"  # iteration 0's description
    shows_trades: bool = True  # whether the prompt's population lines give a trade count
    has_positions: bool = True  # stress, the second market and the report's trade sections judge positions
    benchmark_words: str = "buy & hold"  # the benchmark in the report's words (cards, charts, assumptions)

    # ----- the candidate's contract ---------------------------------------------------------
    def gate(self) -> Callable[[str], Any]:
        """The static AST check of a region for this task (``sandbox.gate.check`` with its functions).

        Why here: the gate is shared, but which functions a region must define is the task's contract."""
        from sandbox.gate import check

        required = self.functions
        return lambda source: check(source, required=required)

    def driver_source(self) -> str:
        """The text of the child-side driver (``alphaloop/tasks/<name>/driver.py``) shipped to the sandbox.

        Why text, not a module: the sandbox imports nothing from alphaloop (the trust boundary); the driver
        turns one frame into named float64 arrays and imports only the stdlib, numpy and pandas.
        Empty while the task still runs on the sandbox's built-in driver."""
        return driver_source(self.name)

    def output_decoder(self) -> Callable[..., Any] | None:
        """The trusted parent's reading of the arrays the driver sends back: ``(arrays, panel)`` in, one
        result per instrument out, ``ValueError`` naming what is wrong; None hands back the raw arrays.

        Why here: what the child's arrays must look like is the task's contract; the sandbox only moves them."""
        return None

    def start_file(self) -> Path:
        """The file whose region is iteration 0 when ``--start-from`` is not given: ./trade.py when the
        command runs where one is, else the repository's.

        Why: iteration 0 is the baseline every later figure is compared with; each task has its own."""
        return Path("trade.py") if Path("trade.py").is_file() else REPO / "trade.py"

    def file_doc(self) -> str:
        """What a saved region file (``iter_N_<stem>.py``, ``best_<stem>.py``) holds, in the user's words.

        Why: a forecaster described as "a trading strategy" misleads whoever opens it in the morning."""
        return "A trading strategy"

    def selection_metric(self, requested: str) -> str:
        """The metric the population is ranked by, given ``--metric``; a task with its own scale fixes it.

        Why: the loop refuses to resume a workdir with another metric, so the task decides it once."""
        return requested

    # ----- evaluation (alphaloop.evaluate.pipeline calls these on ``ctx.task``) ----------------
    def run_sandbox(self, box: Any, region: str, frames: Sequence[Any], timeout_s: float) -> Any:
        """One sandbox run of the region on ``frames`` by the task's own driver; returns the runner's ``RunOutcome``.

        Why: the sandbox holds every task's driver; the task names its own, so nothing else asks which runs."""
        return box.run(region, list(frames), timeout_s=timeout_s, task=self.name)

    def check_outputs(self, t: Any) -> Any:
        """A ``Verdict`` on the full run's outputs beyond what the decoder checks, or None when none applies.

        Why: some contracts depend on the run's settings (the portfolio task's gross cap), which the
        sandbox's decoder does not know; a breach rejects at the sandbox stage, before any probe runs."""
        return None

    def lookahead(self, t: Any) -> Any:
        """The task's own look-ahead stage (a ``Verdict``), or None for the shared per-instrument probes.

        Why: a task whose output on a date reads every instrument (the portfolio task) must be probed with
        every instrument cut at one date, which per-instrument probes cannot do."""
        return None

    def invariance_probes(self, frame: Any, seed: int) -> list[Any]:
        """The invariance probes (date shift, history prepended, rows removed) of one frame, or none.

        Why: they judge positions; a task whose outputs are not positions asks for none, and the
        look-ahead probes alone guard it."""
        return []

    def outputs_of(self, full: Any) -> Any:
        """The validated output array of one instrument's full run (its ``FrameResult``).

        Why: the pipeline hands every instrument's outputs on (``Evaluation.outputs``) without knowing
        whether they are signals, probabilities or weights."""
        return full.signals

    def output_columns(self, result: Any) -> dict[str, Any]:
        """A run's outputs beyond features and signals as named 1-D columns, which the look-ahead probes
        compare row by row (names reach the leak's reason, e.g. "forecast h=3 p_up").

        Why: a leak in a forecaster's probabilities must be found even when its features are clean."""
        return {}

    @abstractmethod
    def score(self, t: Any) -> None:
        """Score a ``Trial``'s full runs on every instrument of ``t.ctx.histories``: set ``t.scores`` (the
        selection metric, every split, folds, benchmarks) and ``t.universe`` (per-instrument scores or None).

        Why: scoring is what a task is; a universe of one is scored by the same call."""

    @abstractmethod
    def guards(self, t: Any) -> Any:
        """The task's degenerate and reward-hacking guards on a scored ``Trial``; returns a ``Verdict``.

        Why: "too few trades" means nothing to a forecaster; each task knows its own cheats."""

    # ----- the record, the population and the text files -------------------------------------
    def scored_fields(self, ev: Any, histories: tuple[Any, ...]) -> dict[str, Any]:
        """Record fields of any scored candidate, accepted or not (e.g. the trade task's positions key).

        Why: a rejected candidate's positions still tell the next prompt whether it changed anything."""
        return {}

    @abstractmethod
    def accepted_fields(self, ev: Any, stress: dict | None, histories: tuple[Any, ...], state: Any,
                        stress_select: bool) -> dict[str, Any]:
        """The record's fields for an accepted candidate (``Evaluation`` ``ev``, ``LoopState`` ``state``):
        selection value, duplicate key, the series the end-of-run statistics need, and the admission
        verdict (``in_population``, ``duplicate_of``, ``replaces``; ``tasks.trade.evidence.admission`` for positions).

        Why: what counts as a copy is the task's (equal positions, equal probabilities); the rule that
        admits is shared, and ``LoopState.apply`` only folds what the record says."""

    def grading_view(self, split: dict | None) -> dict[str, float] | None:
        """One number per figure of a split, so an ``Expect:`` line can be graded against it.

        Why: a task with per-horizon figures grades on their means; the trade task's are numbers already."""
        return split

    def beside_benchmark(self, split: dict | None, metric: str) -> str:
        """" (buy and hold X)": the benchmark's figure beside a headline figure, or "".

        Why: no headline figure stands without its benchmark, and each task has its own."""
        bh = (split or {}).get(f"bh_{metric}")
        return f" (buy and hold {bh:.3f})" if isinstance(bh, int | float) else ""

    def benchmark_value(self, split: dict | None, metric: str) -> float | None:
        """The benchmark's figure of ``metric`` on a split (the column beside the candidate's)."""
        value = (split or {}).get(f"bh_{metric}")
        return float(value) if isinstance(value, int | float) else None

    def figures_note(self, split: dict | None) -> str:
        """Further figures for the outcome line and the learnings entry ("" for none).

        Why: a forecaster's calibration matters as much as its skill, and must reach the next prompt."""
        return ""

    def live_note(self, split: dict) -> str:
        """What the live view shows of an accepted candidate's split beside its metric (e.g. its trades)."""
        return f"val trades {split['round_trips']:.0f}"

    @abstractmethod
    def tsv_header(self, metric: str) -> str:
        """results.tsv's header line: every figure names its split, the benchmark beside validation."""

    @abstractmethod
    def tsv_row(self, record: Any, metric: str) -> str:
        """One results.tsv line of an ``IterationRecord`` (from the record alone, so replays match)."""

    # ----- harness.py check ------------------------------------------------------------------
    def settings_text(self, metric: str, cost_bps: float) -> str:
        """The settings ``check`` prints after the data line (what the candidate is ranked by)."""
        return f"metric {metric}, costs {cost_bps:g} bp"

    def check_notes(self, histories: tuple[Any, ...]) -> list[str]:
        """Lines ``check`` prints under the data's instruments: how several of them are scored together."""
        return []

    def data_notes(self, histories: tuple[Any, ...], manifest: dict) -> list[str]:
        """Lines ``check`` prints under the data line (e.g. which prices returns are measured on)."""
        return []

    @abstractmethod
    def scores_lines(self, ev: Any, cost_bps: float) -> list[Any]:
        """What ``check`` prints of an ``Evaluation``'s scores: tables (rich renderables) and lines (str).

        Why: a backtest reads as a metrics table, a forecaster as a calibration table per split."""

    def check_json(self, ev: Any, histories: tuple[Any, ...]) -> dict[str, Any]:
        """Keys ``check`` adds to its last line's JSON verdict (e.g. each instrument's figures)."""
        return {}

    # ----- proposing --------------------------------------------------------------------------
    def prompts(self) -> dict[str, Path]:
        """The LLM's program and template (``program_path``, ``template_path``), or {} for the defaults.

        Why: what the model is asked for is the task's contract, in words."""
        return {}

    @abstractmethod
    def offline_proposer(self, seed: int) -> Any:
        """The built-in ``Proposer`` used without an endpoint (the same seed gives the same proposals)."""

    def prepare(self, histories: tuple[Any, ...]) -> Any:
        """What the task's prompts need from the train split, derived once per run (e.g. bucket cut
        points); the loop hands it back to ``evidence`` as ``prepared``.

        Why: the evidence must be a pure function of the records plus this, so resumes match; and a
        task object is shared by every run in a process, so it keeps no run's state itself."""
        return None

    @abstractmethod
    def evidence(self, n: int, parent: int, latest: Any, parent_rec: Any, grand: Any, last: int,
                 prepared: Any = None, state: Any = None) -> dict[str, Any]:
        """``ProposalContext`` fields for iteration ``n`` from the records (``IterationRecord`` or None) of
        the latest iteration, the parent and its parent, and the ``LoopState`` it proposes from: why this
        parent, and the figures the prompt shows.

        Why: the prompt's evidence is what the researcher (model) reasons with; each task shows its own."""

    def run_notes(self, histories: tuple[Any, ...], manifest: dict) -> list[str]:
        """Lines the loop prints once at start about how this task scores these instruments (``manifest``:
        the frozen data's, e.g. which prices returns are measured on)."""
        return []

    # ----- after the run ----------------------------------------------------------------------
    @abstractmethod
    def finish_steps(self, run: Any, sandbox: Any) -> list[tuple[str, Callable[[], object]]]:
        """The end-of-run steps (name, action) for ``FinishInputs`` ``run``: statistics over all trials,
        stress, second market... (the shared report step follows them).

        Why: the data-snooping statistics and the stress suite differ per task; each step fails alone."""

    @abstractmethod
    def final(self, inputs: Any) -> int:
        """``harness.py final`` from its ``FinalInputs``: score the chosen candidate on the locked test
        split once, print it beside validation, record the reading; returns the exit code.

        Why: what a test reading shows (a backtest, a calibration table) is the task's."""

    def costs_words(self, cost_bps: float) -> str:
        """What the costs are and how a decision fills, in the report's assumptions line.

        Why: a position change and a change of weights are costed and filled in the task's own terms."""
        return (f"{cost_bps:g} bp of the traded value per change of position; a signal at a bar's close trades at "
                "that close")

    def report_omits(self) -> frozenset[str]:
        """Ids of the shared report's sections this task's runs do not have (its own sections may replace them).

        Why: the trade sections (round trips, stress, the second market) read positions a task may not take."""
        return frozenset()

    def report_sections(self, run: Any) -> list[str]:
        """HTML sections of the task's own in the shared report (its ``present.report.data.Run``), or none.

        Why: what a task's test reading shows beyond the shared sections (a portfolio's weights) is the task's."""
        return []

    def report_writer(self) -> Callable[[Path, Path], Path] | None:
        """A report of the task's own, (workdir, data dir) -> path written, or None for the shared report."""
        return None

    def __repr__(self) -> str:
        return f"<task {self.name}>"
