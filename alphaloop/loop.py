"""The research loop: pick a parent, propose, evaluate, keep a top-K population, remember, repeat.

Every iteration is committed by writing ``iter_N_results.json`` (atomically); everything else
(state.json, results.tsv, learnings.md, best_trade.py) is derived from those records by
``LoopState.apply``. A run killed at any instant therefore resumes with no gap and no repeat:
records newer than state.json are replayed, and a trade file without a record is redone.
"""

from __future__ import annotations

import random
import signal
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from alphaloop.backtest import DEFAULT_COST_BPS
from alphaloop.candidate import TRADE_PY, extract_region, splice_region, template_text
from alphaloop.data import DataError, load_splits, manifest_digest, read_manifest, restore_hint
from alphaloop.diversity import (
    BH_DISGUISE_CORRELATION,
    BH_DISGUISE_EXPOSURE,
    NEAR_COPY_CORRELATION,
    MemberReturns,
    buy_and_hold_in_disguise,
    novelty,
)
from alphaloop.learnings import Entry, Learnings, grade
from alphaloop.proposers.base import (
    CandidateFigures,
    EndpointDown,
    Expectation,
    GuardThreshold,
    MemberSummary,
    Proposal,
    ProposalContext,
    Proposer,
    WindowFigures,
)
from alphaloop.scoring import DEFAULT_FOLDS, DEFAULT_METRIC, History, beside_bh
from alphaloop.store import atomic_write_json, atomic_write_text, clean_temp_files, read_json
from alphaloop.text import clip
from alphaloop.universe import (
    bh_returns,
    figures_from_record,
    load_histories,
    positions_sha256,
    record_fields,
    signals_sha256,
)


def tsv_header(metric: str) -> str:
    """results.tsv's header: every figure column names its split and metric, buy and hold beside validation."""
    return (f"n\tparent\tstatus\tstage\tval_{metric}\tval_bh_{metric}\ttrain_{metric}\tval_round_trips\t"
            "novelty\tdescription\n")


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
    hours: float | None = None  # this command's wall-clock budget; stops at the next iteration boundary
    max_tokens: int | None = None  # this command's LLM token budget (prompt + completion)
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
    positions_sha256: str | None = None  # validation positions: equal keys trade identically on validation
    val_returns: list[float] | None = None  # daily validation returns, for the near-copy rule and correlations


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
    searched_after_test_reading: bool = False  # an iteration ran after `final` read the test split

    @property
    def best(self) -> Member | None:
        return self.population[0] if self.population else None

    def duplicate_of(self, signals_sha256: str | None) -> int | None:
        """The member that already trades exactly these signals: a copy adds nothing to the population."""
        return next((m.iteration for m in self.population if signals_sha256 and m.signals_sha256 == signals_sha256),
                    None)

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
                positions_sha256=record.get("positions_sha256"),
                val_returns=(record.get("returns") or {}).get("val"),
            )
            kept = [m for m in self.population if m.iteration != record.get("replaces")]
            self.population = sorted([*kept, member], key=lambda m: -m.value)[: self.population_size]
        if n > 0:
            self.consecutive_fails = 0 if entered else self.consecutive_fails + 1
        self.last_entered = entered
        self.searched_after_test_reading |= bool(record.get("test_readings_before"))
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
    def from_json(cls, d: dict) -> LoopState:
        d = {k: v for k, v in d.items() if k != "best_iteration"}
        d["population"] = [Member(**m) for m in d.get("population", [])]
        return cls(**d)


def describe(record: dict, limit: int = 100) -> str:
    """A one-line description of what an iteration tried, for tables, summaries and the report."""
    if record["iteration"] == 0:
        return "baseline (the region of the starting trade.py)"
    p = record.get("proposal") or {}
    text = p.get("change") or p.get("hypothesis") or p.get("error") or ""
    return clip(text, limit)


def tsv_row(record: dict, metric: str) -> str:
    """One results.tsv line, kept in the state so the file never needs all records reread."""
    s = record.get("scores")
    val = f"{s['splits']['val'][metric]:.6f}" if s else ""
    bh = s["splits"]["val"].get(f"bh_{metric}") if s else None
    val_bh = f"{bh:.6f}" if bh is not None else ""  # buy and hold has a figure for sharpe and total_return
    train = f"{s['splits']['train'][metric]:.6f}" if s else ""
    trades = f"{s['splits']['val']['round_trips']:.0f}" if s else ""
    parent = "" if record.get("parent") is None else str(record["parent"])
    status = record["status"] + ("+top" if record.get("in_population") else "")
    kind = ("bh_in_disguise" if (record.get("bh_disguise") or {}).get("disguised")
            else (record.get("novelty") or {}).get("kind", ""))
    if kind in ("duplicate", "near_copy"):
        kind += f":{record['novelty']['member']}"
    what = describe(record).replace(chr(9), " ")
    return (f"{record['iteration']}\t{parent}\t{status}\t{record['stage']}\t{val}\t{val_bh}\t{train}\t{trades}\t"
            f"{kind}\t{what}\n")


def outcome_line(record: dict, metric: str) -> str:
    """The latest outcome as the next prompt and the live view show it."""
    n = record["iteration"]
    if record["status"] != "accepted":  # the reason may quote the candidate's own text: flatten and clip it
        return f"iter {n} rejected at {record['stage']}: {clip(record['reason'], 300)}"
    where = "entered the population" if record.get("in_population") else "did not beat the population"
    if record.get("duplicate_of") is not None:
        where = f"holds the same validation positions as iter {record['duplicate_of']}, so it adds nothing"
    elif (record.get("bh_disguise") or {}).get("disguised"):
        where = f"kept out: {record['bh_disguise']['reason']}"
    elif (record.get("novelty") or {}).get("kind") == "near_copy":
        where = record["novelty"]["reason"]
    bh = beside_bh(record["scores"]["splits"]["val"], metric) if record.get("scores") else ""
    return f"iter {n} accepted, val {metric} {record['selection_val']:.3f}{bh}; {where}"


def entry_from_record(record: dict, metric: str) -> Entry:
    """The learnings entry for one iteration, derived from its record alone (so replays match)."""
    p = record.get("proposal") or {}
    if record["status"] == "accepted":
        s = record["scores"]["splits"]
        where = "entered the population" if record.get("in_population") else "not in the top-K"
        if record.get("duplicate_of") is not None:
            where += f" (same validation positions as iter {record['duplicate_of']})"
        elif (record.get("bh_disguise") or {}).get("disguised"):
            where += " (buy and hold in disguise)"
        elif (record.get("novelty") or {}).get("kind") == "near_copy":
            where += f" (near copy of iter {record['novelty']['member']})"
        headline = (f"accepted, val {metric} {s['val'][metric]:.3f}{beside_bh(s['val'], metric)} "
                    f"(train {s['train'][metric]:.3f}), {where}")
    else:
        headline = f"rejected at {record['stage']}: {clip(record['reason'], 200)}"
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

    def reply(self, n: int) -> Path:
        return self.root / f"iter_{n}_reply.md"

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


def _duration(seconds: float) -> str:
    """3725 -> '1h 02m', 75 -> '1m 15s', 4.2 -> '4s': coarse enough to read at a glance."""
    s = int(round(seconds))
    if s >= 3600:
        return f"{s // 3600}h {s % 3600 // 60:02d}m"
    return f"{s // 60}m {s % 60:02d}s" if s >= 60 else f"{s}s"


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


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
        self._shown_warnings: set[str] = set()
        self._t_start = time.monotonic()
        self._first_iteration = 0
        self._tokens_at_start = 0
        self.time_left_s: float | None = None  # estimate for the view while --hours or --max-tokens is set
        self.budget_note: str | None = None  # the same as words, e.g. "time left: about 1h 05m (bound by --hours 2)"
        self.test_readings = 0  # readings of the test split by `final` in this workdir, counted at start

    # ----- setup and resume -------------------------------------------------------------
    def _open(self) -> tuple[LoopState, Learnings, dict]:
        try:
            manifest = read_manifest(self.cfg.data_dir)
            splits = load_splits(self.cfg.data_dir)
            self.instrument_names, self.histories = load_histories(self.cfg.data_dir)  # all the loop may read
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
                f"its writes are atomic, so it was edited or damaged outside the loop: restore it or use another "
                f"--workdir"
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
                    f"restore that data ({restore_hint(recorded, out=str(self.cfg.data_dir))}) "
                    "or start a new run with another --workdir"
                )
        else:
            atomic_write_json(self.wd.manifest, manifest)
        if self.wd.state.is_file():
            state = LoopState.from_json(read_json(self.wd.state))
            for name, recorded, asked in (("metric", state.metric, self.cfg.metric),
                                          ("cost-bps", state.cost_bps, self.cfg.cost_bps),
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
        self.wd.reply(state.next_iteration).unlink(missing_ok=True)
        self._write_derived(state, learnings)
        self.history = History.from_splits(splits) if len(self.histories) == 1 else self.histories[0]
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
                metric=self.cfg.metric,
                population=[MemberSummary(m.iteration, m.val_metric, m.train_metric, m.val_trades, m.description)
                            for m in state.population],
                learnings=learnings.prompt_view(),
                last_outcome=state.last_outcome, cost_bps=self.cfg.cost_bps,
                **self._evidence(n, parent, state, ctx),
            )
            proposal = self.proposer.propose(pctx)
            proposal_label = self.proposer_label
            self._show_warnings(proposal)
        t_prop = time.perf_counter() - t0
        record: dict[str, Any] = {
            "iteration": n, "parent": parent, "created_at": _now(), "metric": self.cfg.metric,
            "cost_bps": self.cfg.cost_bps, "folds": self.cfg.folds,
            "proposer": proposal_label, "model": proposal.model, "tokens": dict(proposal.tokens),
            "data_manifest": self.digest, "test_readings_before": self.test_readings,
            "proposal": {k: v for k, v in proposal.to_json().items() if k != "region"},
            "scores": None, "returns": None, "selection_val": None, "selection_value": None,
            "stress": None, "in_population": False, "hypothesis_held": None, "grading": "",
        }
        if proposal.reply:  # the whole reply, think blocks included, for an audit the record's head cannot give
            atomic_write_text(self.wd.reply(n), proposal.reply)
            record["reply_file"] = self.wd.reply(n).name
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
            if ev.signals is not None:
                record["positions_sha256"] = positions_sha256(ctx.histories, ev.instrument_signals)
            record.update(record_fields(ev.universe, ev.accepted))
            record["selection_val"] = ev.scores.selection
            parent_val = next((m.val for m in state.population if m.iteration == parent), None)
            prec = self._record(parent) if parent_val is None else None
            if prec is not None and prec.get("scores"):
                parent_val = prec["scores"]["splits"]["val"]
            val_now = record["scores"]["splits"]["val"]
            held, verdict = grade(_expectation(proposal), parent_val, val_now) if n else (None, "")
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
            record["signals_sha256"] = signals_sha256(ev.instrument_signals)
            record.update(_diversity(record["positions_sha256"], ev, ctx.histories, value, state))
        record["timings"] = {"propose": t_prop, "evaluate": time.perf_counter() - t1, "total": time.perf_counter() - t0}
        return record

    def _record(self, n: int | None) -> dict | None:
        if n is None or n < 0 or not self.wd.results(n).is_file():
            return None
        return read_json(self.wd.results(n))

    def _evidence(self, n: int, parent: int, state: LoopState, ctx: Any) -> dict[str, Any]:
        """What the researcher needs to reason: the parent's and the latest candidate's figures beside
        buy and hold, why this parent, whether the last change altered any position, the guards as numbers."""
        latest, parent_rec = self._record(n - 1), self._record(parent)
        if latest is None or parent == n - 1:
            reason = (f"building on iter {parent}: it entered the population, and the search builds on each "
                      "success" if latest is not None else None)
        else:
            what = ("was rejected at " + latest["stage"]) if latest["status"] != "accepted" else (
                "did not enter the population")
            reason = (f"reverting to iter {parent}, a population member drawn at random (seeded) so the search does "
                      f"not stack changes on one line: iter {n - 1} {what}")
        grand = self._record(latest.get("parent")) if latest is not None else None
        unchanged = bool(latest and grand and latest.get("positions_sha256")
                         and latest.get("positions_sha256") == grand.get("positions_sha256"))
        limits = ctx.limits
        guards = (GuardThreshold("min round trips per year on validation", limits.min_round_trips_per_year,
                                 "round trips/year"),
                  GuardThreshold("max turnover", limits.max_turnover_per_year, "position changes/year"),
                  GuardThreshold("always long (= buy and hold) at exposure", 100 * limits.always_long_exposure,
                                 "% of days"),
                  GuardThreshold("buy and hold in disguise: correlation with buy and hold above",
                                 BH_DISGUISE_CORRELATION, f"at exposure above {BH_DISGUISE_EXPOSURE:.0%}"),
                  GuardThreshold("near copy of a member: validation return correlation above",
                                 NEAR_COPY_CORRELATION, "(may only replace that member, if better)"))
        return {"parent_figures": candidate_figures(parent_rec),
                "latest_figures": candidate_figures(latest) if n - 1 != parent else None,
                "parent_reason": reason, "unchanged_positions": unchanged, "guards": guards}

    def _show_warnings(self, proposal: Proposal) -> None:
        """A proposer's advice to the user (e.g. a truncated context), printed the first time only."""
        for text in proposal.warnings:
            if text not in self._shown_warnings:
                self._shown_warnings.add(text)
                self.view.note(f"warning: {text}")

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
        atomic_write_text(self.wd.root / "results.tsv", tsv_header(self.cfg.metric) + "".join(state.tsv_rows))
        atomic_write_text(self.wd.root / "learnings.md", learnings.render())
        if state.best is not None:
            best = self.wd.trade(state.best.iteration).read_text(encoding="utf-8")
            atomic_write_text(self.wd.root / "best_trade.py", best)
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
        from alphaloop.ui import LiveView
        from sandbox.runner import Sandbox

        state, learnings, manifest = self._open()
        from alphaloop.final import earlier_readings

        self.test_readings = len(earlier_readings(self.wd.root))
        if state.next_iteration > self.cfg.iterations:  # nothing to run: say so now, not the last run's reason
            last = state.next_iteration - 1
            state.stop_reason = (f"iterations: {self.wd.root}/ already holds iterations 0..{last}, and --iterations "
                                 f"{self.cfg.iterations} asks for none beyond them; to continue, rerun with "
                                 f"--iterations N, N > {last} (e.g. --iterations {last + 10})")
            atomic_write_json(self.wd.state, state.to_json())
            self._finish(state, manifest)
            return 0
        stalled = state.stop_reason is not None and state.stop_reason.startswith("max-fails")
        if stalled and state.consecutive_fails >= self.cfg.max_fails > 0:
            self.view.note(f"the last run stopped after {state.consecutive_fails} consecutive failures; "
                           f"continuing with the count reset")
            state.consecutive_fails = 0
        if self.test_readings:
            self._warn_test_read()
        self._t_start = time.monotonic()
        self._first_iteration = state.next_iteration
        self._tokens_at_start = sum(state.tokens.values())
        old_int = signal.signal(signal.SIGINT, self._on_sigint)
        old_term = signal.signal(signal.SIGTERM, self._on_sigint)
        started = time.perf_counter()
        code = 0
        last_words: str | None = None
        try:
            with Sandbox() as sandbox:
                self.sandbox = sandbox
                self.view.start(self, state, sandbox.describe())
                ctx = EvalContext(history=self.history, sandbox=sandbox, metric=self.cfg.metric,
                                  folds=self.cfg.folds, cost_bps=self.cfg.cost_bps,
                                  eval_timeout_s=self.cfg.eval_timeout_s,
                                  universe=tuple(self.histories) if len(self.histories) > 1 else ())
                while True:
                    n = state.next_iteration
                    reason = self._stop_reason(state)
                    if reason is not None:
                        state.stop_reason = reason
                        code = 130 if reason.startswith("interrupted") else 0
                        break
                    try:
                        record = self._iteration(n, state, learnings, ctx)
                    except EndpointDown as exc:
                        state.stop_reason = (f"endpoint-down: the LLM endpoint stopped answering at iteration {n}; "
                                             f"rerun the same command to resume at iteration {n}")
                        last_words = (f"error: the LLM endpoint is down: {exc}\nstate saved after iteration {n - 1}; "
                                      f"rerun the same command to resume at iteration {n}")
                        code = 3
                        break
                    state.elapsed_s += time.perf_counter() - started
                    started = time.perf_counter()
                    self._commit(record, state, learnings)
                    self._estimate(state)
                    self.view.iteration_done(record, state, learnings)
                    if self.budget_note and not isinstance(self.view, LiveView):
                        self.view.note(f"  {self.budget_note}")
        except KeyboardInterrupt:
            state.stop_reason = (f"interrupted: Ctrl-C twice; rerun the same command to resume at iteration "
                                 f"{state.next_iteration} (the unfinished iteration is redone)")
            code = 130
        finally:
            signal.signal(signal.SIGINT, old_int)
            signal.signal(signal.SIGTERM, old_term)
        state.elapsed_s += time.perf_counter() - started
        atomic_write_json(self.wd.state, state.to_json())
        if last_words is not None and state.trials < 2:
            self.view.close()  # one trial has no statistics worth a summary; the error alone is the news
        else:
            self._finish(state, manifest)
        if last_words is not None:
            self.view.note(last_words)  # last, so the summary never buries why the run stopped
        return code

    def _warn_test_read(self) -> None:
        """Searching on after `final` makes the test split one more validation split; say so before it happens."""
        from alphaloop.final import READINGS
        from alphaloop.ui import warn_loudly

        warn_loudly("THE TEST SPLIT HAS ALREADY BEEN READ",
                    f"`python harness.py final` read the test split of this run {self.test_readings} time(s) "
                    f"({self.wd.root / READINGS}).\nSearching further after a reading turns the test split into one "
                    f"more validation split:\nits figures will no longer be an unbiased estimate. This is recorded in "
                    f"the run (state.json: searched_after_test_reading;\neach new iteration record: "
                    f"test_readings_before). For an untouched test split, prepare new data and use a new --workdir.")

    def _stop_reason(self, state: LoopState) -> str | None:
        """Why the run stops at this iteration boundary, and how to continue; None to go on."""
        n = state.next_iteration
        if n > self.cfg.iterations:
            return (f"iterations: reached --iterations {self.cfg.iterations}; to continue, rerun with "
                    f"--iterations N, N > {self.cfg.iterations}")
        if self.cfg.max_fails and state.consecutive_fails >= self.cfg.max_fails:
            why = (f"max-fails: {state.consecutive_fails} consecutive iterations without entering the "
                   f"top-{self.cfg.population}")
            if getattr(self.proposer, "name", "") == "offline":
                return (f"{why}: the offline search stalled (its variations of the population stopped improving on "
                        f"validation); to keep searching, rerun with --max-fails 0, or set OPENAI_BASE_URL (and "
                        f"OPENAI_MODEL) to let an LLM propose")
            return (f"{why}; rerun the same command to continue with the count reset, or add --max-fails 0 to "
                    f"never stop on failures")
        if self.stop_requested:
            return f"interrupted: Ctrl-C or SIGTERM; rerun the same command to resume at iteration {n}"
        if n == self._first_iteration:  # a budget always allows one iteration, so every rerun makes progress
            return None
        spent = time.monotonic() - self._t_start
        if self.cfg.hours is not None and spent >= self.cfg.hours * 3600:
            return (f"hours: --hours {self.cfg.hours:g} used up ({_duration(spent)} in this command); state saved: "
                    f"rerun the same command to resume at iteration {n} with a fresh budget")
        used = sum(state.tokens.values()) - self._tokens_at_start
        if self.cfg.max_tokens is not None and used >= self.cfg.max_tokens:
            return (f"max-tokens: {used:,} LLM tokens used in this command (--max-tokens {self.cfg.max_tokens:,}); "
                    f"state saved: rerun the same command to resume at iteration {n} with a fresh budget")
        return None

    def _estimate(self, state: LoopState) -> None:
        """Time left under the tightest limit, from this command's pace; only while a budget is set."""
        if self.cfg.hours is None and self.cfg.max_tokens is None:
            return
        done = state.next_iteration - self._first_iteration
        spent = time.monotonic() - self._t_start
        if done < 1 or spent <= 0:
            return
        left = {f"--iterations {self.cfg.iterations}": (self.cfg.iterations + 1 - state.next_iteration) * spent / done}
        if self.cfg.hours is not None:
            left[f"--hours {self.cfg.hours:g}"] = self.cfg.hours * 3600 - spent
        used = sum(state.tokens.values()) - self._tokens_at_start
        if self.cfg.max_tokens is not None and used > 0:
            left[f"--max-tokens {self.cfg.max_tokens:,}"] = (self.cfg.max_tokens - used) * spent / used
        bound, seconds = min(left.items(), key=lambda kv: kv[1])
        self.time_left_s = max(0.0, seconds)
        self.budget_note = (f"time left: about {_duration(self.time_left_s)} (bound by {bound}; "
                            f"estimate from this command's pace)")

    def _finish(self, state: LoopState, manifest: dict) -> None:
        """End-of-run figures: statistics over all trials, second market, the report."""
        from alphaloop.finish import finish_run

        finish_run(self, state, manifest)


def candidate_figures(record: dict | None) -> CandidateFigures | None:
    """The figures table the prompt shows for one iteration: train, each fold, validation, with buy and hold."""
    if record is None:
        return None
    status = "accepted" if record["status"] == "accepted" else (
        f"rejected at {record['stage']}: {clip(record.get('reason', ''), 200)}")
    scores = record.get("scores")
    if not scores:
        return CandidateFigures(record["iteration"], status=status)
    rows = [("train", scores["splits"]["train"]),
            *((f"train fold {i + 1}", f) for i, f in enumerate(scores["folds"])),
            ("validation", scores["splits"]["val"])]
    windows = tuple(WindowFigures(name, m["sharpe"], m["total_return"], m["max_drawdown"], m["exposure"],
                                  int(m["round_trips"]), m["turnover"], m["bh_sharpe"], m["bh_total_return"],
                                  m["bh_max_drawdown"]) for name, m in rows)
    return CandidateFigures(record["iteration"], windows=windows, universe=figures_from_record(record), status=status)


def _diversity(key: str, ev: Any, histories: History | Sequence[History], value: float,
               state: LoopState) -> dict[str, Any]:
    """Judge a scored candidate on what it does on validation: a duplicate (same positions on every
    instrument), a near copy of a member (returns correlate above the threshold: may only replace it,
    if better), buy and hold in disguise (kept out), or new (the top-K rule). For a universe the
    returns are the equal-weight portfolio's and buy and hold the equal-weight buy and hold."""
    returns = np.asarray(ev.scores.returns["val"], dtype=np.float64)
    universe = [histories] if isinstance(histories, History) else list(histories)
    disguise = buy_and_hold_in_disguise(returns, bh_returns(universe, "val"),
                                        float(ev.scores.splits["val"]["exposure"]))
    members = [MemberReturns(m.iteration, m.value, m.positions_sha256 or "", np.asarray(m.val_returns))
               for m in state.population if m.val_returns is not None and len(m.val_returns) == returns.size]
    verdict = novelty(key, returns, value, members, state.population_size)
    return {"positions_sha256": key, "novelty": verdict.to_json(), "bh_disguise": disguise.to_json(),
            "duplicate_of": verdict.member if verdict.kind == "duplicate" else None,
            "replaces": verdict.replaces if verdict.enters else None,
            "in_population": bool(verdict.enters and not disguise.disguised)}


def _expectation(p: Proposal) -> Expectation | None:
    e = p.expectation
    if e is None or isinstance(e, Expectation):
        return e
    return Expectation(**e)
