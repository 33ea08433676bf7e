"""The research loop: pick a parent, propose, evaluate, keep a top-K population, remember, repeat.

Every iteration is committed by writing ``iter_N_results.json`` (atomically); everything else
(state.json, results.tsv, learnings.md, best_trade.py) is derived from those records by
``LoopState.apply``. A run killed at any instant therefore resumes with no gap and no repeat:
records newer than state.json are replayed, and a trade file without a record is redone.
"""

from __future__ import annotations

import hashlib
import random
import signal
import time
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

from alphaloop.backtest import DEFAULT_COST_BPS
from alphaloop.candidate import TRADE_PY, extract_region, splice_region, template_text
from alphaloop.data import DataError, load_splits, manifest_digest, read_manifest
from alphaloop.learnings import Entry, Learnings, grade
from alphaloop.proposers.base import EndpointDown, Expectation, MemberSummary, Proposal, ProposalContext, Proposer
from alphaloop.scoring import DEFAULT_FOLDS, DEFAULT_METRIC, History
from alphaloop.store import atomic_write_json, atomic_write_text, clean_temp_files, read_json

TSV_HEADER = "n\tparent\tstatus\tstage\tval_metric\ttrain_metric\ttrades\tdescription\n"


class LoopStop(Exception):
    """The loop cannot start or continue; the message says why and what to do (exit code 2)."""


@dataclass
class LoopConfig:
    """The run's settings as harness.py parsed them; metric, costs and folds are fixed per workdir."""

    workdir: Path = Path("train")
    data_dir: Path = Path("data")
    iterations: int = 50
    max_fails: int = 5
    population: int = 3
    metric: str = DEFAULT_METRIC
    folds: int = DEFAULT_FOLDS
    cost_bps: float = DEFAULT_COST_BPS
    seed: int = 0
    stress_select: bool = False
    stress_paths: int = 8
    cross_ticker: str | None = None
    start_file: Path = TRADE_PY
    eval_timeout_s: float = 60.0  # pipeline.DEFAULT_EVAL_TIMEOUT_S: all sandbox runs of one candidate


@dataclass
class Member:
    """What the loop remembers of a population member without rereading its files."""

    iteration: int
    value: float
    val_metric: float
    train_metric: float
    val_trades: int
    description: str
    val: dict[str, float]
    fold_min: float | None = None
    fold_median: float | None = None
    signals_sha256: str | None = None


@dataclass
class LoopState:
    """Everything needed to continue a run; a pure function of the iteration records."""

    metric: str
    population_size: int
    data_manifest: str
    cost_bps: float | None = None
    folds: int | None = None
    next_iteration: int = 0
    population: list[Member] = field(default_factory=list)
    consecutive_fails: int = 0
    last_entered: bool = False
    trials: int = 0
    accepted: int = 0
    tokens: dict[str, int] = field(default_factory=lambda: {"prompt": 0, "completion": 0})
    learnings: dict = field(default_factory=dict)
    last_outcome: str | None = None
    stop_reason: str | None = None
    elapsed_s: float = 0.0
    tsv_rows: list[str] = field(default_factory=list)

    @property
    def best(self) -> Member | None:
        return self.population[0] if self.population else None

    def duplicate_of(self, signals_sha256: str | None) -> int | None:
        """The member that already trades exactly these signals: a copy adds nothing to the population."""
        return next((m.iteration for m in self.population if signals_sha256 and m.signals_sha256 == signals_sha256), None)

    def would_enter(self, value: float | None, signals_sha256: str | None = None) -> bool:
        if value is None or not np.isfinite(value) or self.duplicate_of(signals_sha256) is not None:
            return False
        if len(self.population) < self.population_size:
            return True
        return value > self.population[-1].value

    def pick_parent(self, n: int, seed: int) -> int:
        """After a success build on it; after a failure revert to a random top-K member."""
        members = [m.iteration for m in self.population]
        if self.last_entered and n - 1 in members:
            return n - 1
        if not members:
            return 0
        return random.Random(f"{seed}:parent:{n}").choice(members)

    def apply(self, record: dict, learnings: Learnings, compactor: Any = None) -> None:
        """Fold one iteration record into the state (used live and when replaying after a kill)."""
        n = record["iteration"]
        value = record.get("selection_value")
        entered = record["status"] == "accepted" and bool(record.get("in_population"))
        self.trials += 1 if record.get("stage") != "proposal" else 0
        self.accepted += record["status"] == "accepted"
        if entered:
            scores = record["scores"]["splits"]
            member = Member(
                iteration=n, value=float(value), val_metric=float(scores["val"][self.metric]),
                train_metric=float(scores["train"][self.metric]), val_trades=int(scores["val"]["round_trips"]),
                description=describe(record), val=scores["val"],
                fold_min=record["scores"].get("fold_spread", {}).get("min"),
                fold_median=record["scores"].get("fold_spread", {}).get("median"),
                signals_sha256=record.get("signals_sha256"),
            )
            self.population = sorted([*self.population, member], key=lambda m: -m.value)[: self.population_size]
        if n > 0:
            self.consecutive_fails = 0 if entered else self.consecutive_fails + 1
        self.last_entered = entered
        for k in ("prompt", "completion"):
            self.tokens[k] += int(record.get("tokens", {}).get(k, 0))
        learnings.add(entry_from_record(record, self.metric), compactor)
        self.learnings = learnings.to_json()
        self.last_outcome = outcome_line(record, self.metric)
        self.tsv_rows.append(tsv_row(record, self.metric))
        self.next_iteration = n + 1

    def to_json(self) -> dict:
        d = asdict(self)
        d["best_iteration"] = self.best.iteration if self.best else None
        return d

    @classmethod
    def from_json(cls, d: dict) -> "LoopState":
        d = {k: v for k, v in d.items() if k != "best_iteration"}
        d["population"] = [Member(**m) for m in d.get("population", [])]
        return cls(**d)


def describe(record: dict, limit: int = 100) -> str:
    """A one-line description of what an iteration tried, for tables, summaries and the report."""
    if record["iteration"] == 0:
        return "baseline (the region of the starting trade.py)"
    p = record.get("proposal") or {}
    text = p.get("change") or p.get("hypothesis") or p.get("error") or ""
    return " ".join(str(text).split())[:limit]


def tsv_row(record: dict, metric: str) -> str:
    """One results.tsv line, kept in the state so the file never needs all records reread."""
    s = record.get("scores")
    val = f"{s['splits']['val'][metric]:.6f}" if s else ""
    train = f"{s['splits']['train'][metric]:.6f}" if s else ""
    trades = f"{s['splits']['val']['round_trips']:.0f}" if s else ""
    parent = "" if record.get("parent") is None else str(record["parent"])
    status = record["status"] + ("+top" if record.get("in_population") else "")
    return f"{record['iteration']}\t{parent}\t{status}\t{record['stage']}\t{val}\t{train}\t{trades}\t{describe(record).replace(chr(9), ' ')}\n"


def outcome_line(record: dict, metric: str) -> str:
    """The latest outcome as the next prompt and the live view show it."""
    n = record["iteration"]
    if record["status"] != "accepted":  # the reason may quote the candidate's own text: flatten and clip it
        return f"iter {n} rejected at {record['stage']}: {' '.join(str(record['reason']).split())[:300]}"
    where = ("entered the population" if record.get("in_population") else
             f"trades exactly like iter {record['duplicate_of']}, so it adds nothing" if record.get("duplicate_of") is not None
             else "did not beat the population")
    return f"iter {n} accepted, val {metric} {record['selection_val']:.3f}; {where}"


def entry_from_record(record: dict, metric: str) -> Entry:
    """The learnings entry for one iteration, derived from its record alone (so replays match)."""
    p = record.get("proposal") or {}
    if record["status"] == "accepted":
        s = record["scores"]["splits"]
        where = "entered the population" if record.get("in_population") else "not in the top-K"
        if record.get("duplicate_of") is not None:
            where += f" (same signals as iter {record['duplicate_of']})"
        headline = f"accepted, val {metric} {s['val'][metric]:.3f} (train {s['train'][metric]:.3f}), {where}"
    else:
        headline = f"rejected at {record['stage']}: {' '.join(str(record['reason']).split())[:200]}"
    return Entry(
        iteration=record["iteration"], parent=record.get("parent"), headline=headline,
        hypothesis=p.get("hypothesis", ""), change=p.get("change", ""), expected=p.get("expected", ""),
        verdict=record.get("grading", ""), held=record.get("hypothesis_held"),
    )


class Workdir:
    """Paths of the files a run writes, and reading them back."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    def trade(self, n: int) -> Path:
        return self.root / f"iter_{n}_trade.py"

    def results(self, n: int) -> Path:
        return self.root / f"iter_{n}_results.json"

    @property
    def state(self) -> Path:
        return self.root / "state.json"

    @property
    def manifest(self) -> Path:
        return self.root / "data_manifest.json"

    def region(self, n: int) -> str:
        return extract_region(self.trade(n).read_text(encoding="utf-8"))

    def records(self) -> list[dict]:
        out, n = [], 0
        while self.results(n).is_file():
            out.append(read_json(self.results(n)))
            n += 1
        return out


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


class Loop:
    """One run of the research loop over a workdir; ``run`` returns an exit code."""

    def __init__(self, config: LoopConfig, proposer: Proposer, proposer_label: str, view: Any) -> None:
        self.cfg = config
        self.proposer = proposer
        self.proposer_label = proposer_label
        self.view = view
        self.wd = Workdir(config.workdir)
        self.stop_requested = False
        self._sigint_count = 0

    # ----- setup and resume -------------------------------------------------------------
    def _open(self) -> tuple[LoopState, Learnings, dict]:
        try:
            manifest = read_manifest(self.cfg.data_dir)
            splits = load_splits(self.cfg.data_dir)
        except DataError as exc:
            raise LoopStop(str(exc)) from exc
        digest = manifest_digest(manifest)
        try:
            return self._resume(manifest, splits, digest)
        except OSError as exc:
            raise LoopStop(f"cannot use {self.wd.root}/ as the run folder: {exc}") from exc
        except (ValueError, KeyError, TypeError) as exc:  # JSONDecodeError is a ValueError
            raise LoopStop(
                f"{self.wd.root}/ holds a state or iteration file alphaloop cannot read ({type(exc).__name__}: {exc}); "
                f"its writes are atomic, so it was edited or damaged outside the loop: restore it or use another --workdir"
            ) from exc

    def _resume(self, manifest: dict, splits: dict, digest: str) -> tuple[LoopState, Learnings, dict]:
        """Check the workdir belongs to this data, load the state and replay records a kill left behind."""
        self.wd.root.mkdir(parents=True, exist_ok=True)
        clean_temp_files(self.wd.root)
        if self.wd.manifest.is_file():
            recorded = read_json(self.wd.manifest)
            if manifest_digest(recorded) != digest:
                raise LoopStop(
                    f"the frozen data in {self.cfg.data_dir}/ no longer matches the data this run started on "
                    f"(hash {digest} now, {manifest_digest(recorded)} recorded in {self.wd.manifest}); "
                    f"restore that data or start a new run with another --workdir"
                )
        else:
            atomic_write_json(self.wd.manifest, manifest)
        if self.wd.state.is_file():
            state = LoopState.from_json(read_json(self.wd.state))
            for name, recorded, asked in (("metric", state.metric, self.cfg.metric), ("cost-bps", state.cost_bps, self.cfg.cost_bps),
                                          ("folds", state.folds, self.cfg.folds)):
                if recorded is not None and recorded != asked:
                    raise LoopStop(f"this workdir was scored with --{name} {recorded}; rerun with that value or use "
                                   f"another --workdir (mixing them would rank candidates on different scales)")
        else:
            state = LoopState(metric=self.cfg.metric, population_size=self.cfg.population, data_manifest=digest,
                              cost_bps=self.cfg.cost_bps, folds=self.cfg.folds)
        state.population_size = self.cfg.population
        learnings = Learnings.from_json(state.learnings) if state.learnings else Learnings()
        while self.wd.results(state.next_iteration).is_file():  # records written just before a kill
            state.apply(read_json(self.wd.results(state.next_iteration)), learnings, self.proposer.compact)
        self.wd.trade(state.next_iteration).unlink(missing_ok=True)  # an iteration that never finished
        self._write_derived(state, learnings)
        self.history = History.from_splits(splits)
        self.digest = digest
        return state, learnings, manifest

    # ----- one iteration ----------------------------------------------------------------
    def _iteration(self, n: int, state: LoopState, learnings: Learnings, ctx: Any) -> dict:
        from alphaloop.pipeline import evaluate

        t0 = time.perf_counter()
        if n == 0:
            parent, proposal = None, Proposal(region=extract_region(self.cfg.start_file.read_text(encoding="utf-8")),
                                              hypothesis="", change="baseline", expected="")
            proposal_label = "baseline"
        else:
            parent = state.pick_parent(n, self.cfg.seed)
            self.view.stage(n, "propose", f"parent iter {parent}")
            pctx = ProposalContext(
                iteration=n, parent_iteration=parent, parent_region=self._parent_region(parent),
                metric=self.cfg.metric, population=[MemberSummary(m.iteration, m.val_metric, m.train_metric, m.val_trades, m.description) for m in state.population],
                learnings=learnings.prompt_view(),
                last_outcome=state.last_outcome, cost_bps=self.cfg.cost_bps,
            )
            proposal = self.proposer.propose(pctx)
            proposal_label = self.proposer_label
        t_prop = time.perf_counter() - t0
        record: dict[str, Any] = {
            "iteration": n, "parent": parent, "created_at": _now(), "metric": self.cfg.metric,
            "cost_bps": self.cfg.cost_bps, "folds": self.cfg.folds,
            "proposer": proposal_label, "model": proposal.model, "tokens": dict(proposal.tokens),
            "data_manifest": self.digest, "proposal": {k: v for k, v in proposal.to_json().items() if k != "region"},
            "scores": None, "returns": None, "selection_val": None, "selection_value": None,
            "stress": None, "in_population": False, "hypothesis_held": None, "grading": "",
        }
        if proposal.region is None:
            record.update(status="rejected", stage="proposal", reason=proposal.error or "the reply held no usable code")
            record["timings"] = {"propose": t_prop, "evaluate": 0.0, "total": time.perf_counter() - t0}
            return record
        atomic_write_text(self.wd.trade(n), splice_region(template_text(), proposal.region))
        self.view.stage(n, "evaluate", "gate, sandbox, look-ahead, guards, score")
        t1 = time.perf_counter()
        ev = evaluate(proposal.region, ctx)
        record.update(status="accepted" if ev.accepted else "rejected", stage=ev.stage, reason=ev.reason,
                      details=ev.details, eval_timings=ev.timings)
        if ev.scores is not None:
            record["scores"] = ev.scores.to_json()
            record["selection_val"] = ev.scores.selection
            parent_val = next((m.val for m in state.population if m.iteration == parent), None)
            if parent_val is None and parent is not None and self.wd.results(parent).is_file():
                prec = read_json(self.wd.results(parent))
                parent_val = prec["scores"]["splits"]["val"] if prec.get("scores") else None
            held, verdict = grade(_expectation(proposal), parent_val, record["scores"]["splits"]["val"]) if n else (None, "")
            record["hypothesis_held"], record["grading"] = held, verdict
        if ev.accepted:
            record["returns"] = {k: np.round(v, 12).tolist() for k, v in ev.scores.returns.items()}
            value = ev.scores.selection
            if self.cfg.stress_select:
                from alphaloop.stress import stress_adjusted

                self.view.stage(n, "stress", f"{self.cfg.stress_paths} synthetic paths per scenario")
                record["stress"] = self.stress(proposal.region)
                value = stress_adjusted(value, record["stress"])
            record["selection_value"] = value
            record["signals_sha256"] = hashlib.sha256(np.asarray(ev.signals, dtype=np.int8).tobytes()).hexdigest()
            record["duplicate_of"] = state.duplicate_of(record["signals_sha256"])
            record["in_population"] = state.would_enter(value, record["signals_sha256"])
        record["timings"] = {"propose": t_prop, "evaluate": time.perf_counter() - t1, "total": time.perf_counter() - t0}
        return record

    def _parent_region(self, parent: int) -> str:
        path = self.wd.trade(parent)
        if path.is_file():
            return self.wd.region(parent)
        return extract_region(self.cfg.start_file.read_text(encoding="utf-8"))

    def stress(self, region: str) -> dict:
        """The stress suite for one region, in the warm worker; a failure is a result, not a crash."""
        from alphaloop.stress import run_stress

        try:
            return run_stress(region, self.history, self.sandbox, self.cfg.cost_bps, n_paths=self.cfg.stress_paths,
                              seed=self.cfg.seed, timeout_s=120.0)
        except Exception as exc:  # the stress suite must never lose an iteration
            return {"status": "failed", "reason": f"{type(exc).__name__}: {exc}"}

    def _commit(self, record: dict, state: LoopState, learnings: Learnings) -> None:
        atomic_write_json(self.wd.results(record["iteration"]), record)
        state.apply(record, learnings, self.proposer.compact)
        self._write_derived(state, learnings)

    def _write_derived(self, state: LoopState, learnings: Learnings) -> None:
        atomic_write_text(self.wd.root / "results.tsv", TSV_HEADER + "".join(state.tsv_rows))
        atomic_write_text(self.wd.root / "learnings.md", learnings.render())
        if state.best is not None:
            atomic_write_text(self.wd.root / "best_trade.py", self.wd.trade(state.best.iteration).read_text(encoding="utf-8"))
        atomic_write_json(self.wd.state, state.to_json())

    # ----- the run ------------------------------------------------------------------------
    def _on_sigint(self, signum: int, frame: Any) -> None:
        self._sigint_count += 1
        if self._sigint_count > 1:
            raise KeyboardInterrupt
        self.stop_requested = True
        self.view.note("Ctrl-C: finishing the current iteration, then stopping (press again to stop at once)")

    def run(self) -> int:
        from alphaloop.pipeline import EvalContext
        from sandbox.runner import Sandbox

        state, learnings, manifest = self._open()
        if state.stop_reason and state.stop_reason.startswith("max-fails") and state.consecutive_fails >= self.cfg.max_fails > 0:
            self.view.note(f"the last run stopped after {state.consecutive_fails} consecutive failures; continuing with the count reset")
            state.consecutive_fails = 0
        if state.next_iteration > self.cfg.iterations:
            self.view.note(f"{self.wd.root}/ already holds iterations 0..{state.next_iteration - 1}; "
                           f"pass --iterations N with N > {state.next_iteration - 1} to continue")
            self._finish(state, manifest)
            return 0
        old_int = signal.signal(signal.SIGINT, self._on_sigint)
        old_term = signal.signal(signal.SIGTERM, self._on_sigint)
        started = time.perf_counter()
        code = 0
        try:
            with Sandbox() as sandbox:
                self.sandbox = sandbox
                self.view.start(self, state, sandbox.describe())
                ctx = EvalContext(history=self.history, sandbox=sandbox, metric=self.cfg.metric,
                                  folds=self.cfg.folds, cost_bps=self.cfg.cost_bps,
                                  eval_timeout_s=self.cfg.eval_timeout_s)
                while True:
                    n = state.next_iteration
                    if n > self.cfg.iterations:
                        state.stop_reason = f"iterations: reached --iterations {self.cfg.iterations}"
                        break
                    if self.cfg.max_fails and state.consecutive_fails >= self.cfg.max_fails:
                        state.stop_reason = f"max-fails: {state.consecutive_fails} consecutive iterations without entering the top-{self.cfg.population}"
                        break
                    if self.stop_requested:
                        state.stop_reason = "interrupted: Ctrl-C or SIGTERM"
                        code = 130
                        break
                    try:
                        record = self._iteration(n, state, learnings, ctx)
                    except EndpointDown as exc:
                        state.stop_reason = f"endpoint-down: {exc}"
                        self.view.note(f"the LLM endpoint is down: {exc}\nstate saved after iteration {n - 1}; "
                                       f"rerun the same command to resume at iteration {n}")
                        code = 3
                        break
                    state.elapsed_s += time.perf_counter() - started
                    started = time.perf_counter()
                    self._commit(record, state, learnings)
                    self.view.iteration_done(record, state, learnings)
        except KeyboardInterrupt:
            state.stop_reason = "interrupted: Ctrl-C twice; the unfinished iteration will be redone on resume"
            code = 130
        finally:
            signal.signal(signal.SIGINT, old_int)
            signal.signal(signal.SIGTERM, old_term)
        state.elapsed_s += time.perf_counter() - started
        atomic_write_json(self.wd.state, state.to_json())
        self._finish(state, manifest)
        return code

    def _finish(self, state: LoopState, manifest: dict) -> None:
        """End-of-run figures: statistics over all trials, second market, the report."""
        from alphaloop.finish import finish_run

        finish_run(self, state, manifest)


def _expectation(p: Proposal) -> Expectation | None:
    e = p.expectation
    if e is None or isinstance(e, Expectation):
        return e
    return Expectation(**e)
