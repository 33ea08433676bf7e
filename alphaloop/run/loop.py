"""The research loop: pick a parent, propose, evaluate, keep a top-K population, remember, repeat.

Every iteration is committed by writing ``iter_N_results.json`` (atomically); everything else
(state.json, results.tsv, learnings.md, best_trade.py) is derived from those records by
``LoopState.apply``. A run killed at any instant therefore resumes with no gap and no repeat:
records newer than state.json are replayed, and a trade file without a record is redone.

With ``--workers N`` up to N iterations are in flight (``alphaloop.run.flight`` states the rule that
keeps their records reproducible); each proposes and is evaluated on its own thread, and this
module commits them one by one, in iteration order, on the main thread.
"""

from __future__ import annotations

import dataclasses
import signal
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from alphaloop.candidate import extract_region, splice_region, template_text
from alphaloop.commands.finish import finish_run
from alphaloop.commands.inputs import FinishInputs
from alphaloop.config import LoopConfig
from alphaloop.data.frozen import (
    DataError,
    bars_line,
    load_universe,
    manifest_digest,
    read_manifest,
    restore_hint,
    universe_line,
)
from alphaloop.evaluate.executor import EvalSettings, TaskResult, make_executor
from alphaloop.evaluate.pipeline import STAGES
from alphaloop.evaluate.universe import instrument_histories
from alphaloop.present.text import duration
from alphaloop.present.ui import LiveView, warn_loudly
from alphaloop.propose.base import EndpointDown, Expectation, MemberSummary, Proposal, ProposalContext, Proposer
from alphaloop.propose.parsing import in_reply_lines
from alphaloop.run import flight as rule
from alphaloop.run.cpuclock import TreeClock
from alphaloop.run.flight import BoundedProposer, Flight, InFlight, Snapshot, SnapshotStore, with_rule
from alphaloop.run.grading import grade
from alphaloop.run.learnings import Learnings
from alphaloop.run.records import IterationRecord, NewerSchema
from alphaloop.run.rows import entry_from_record
from alphaloop.run.state import LoopState
from alphaloop.run.workdir import Workdir
from alphaloop.tasks import get_task

EVALUATING = f"evaluate ({' > '.join(STAGES)})"  # what the live view says of an iteration in the pipeline


class LoopStop(Exception):
    """The loop cannot start or continue; the message says why and what to do (exit code 2)."""


@dataclass
class _Done:
    """What an iteration's thread hands back: its proposal and evaluation, for the record."""

    base: int  # the last committed iteration of the state it proposed from (-1: none)
    parent: int | None
    proposal: Proposal
    label: str
    result: TaskResult | None  # None when the proposal held no code
    created_at: str
    propose_s: float
    evaluate_s: float


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def expectation(p: Proposal) -> Expectation | None:
    """The proposal's machine-readable expectation (a dict from a reply, or already typed)."""
    e = p.expectation
    if e is None or isinstance(e, Expectation):
        return e
    return Expectation(**e)


class Loop:
    """One run of the research loop over a workdir; ``run`` returns an exit code."""

    def __init__(self, config: LoopConfig, proposer: Proposer, proposer_label: str, view: Any) -> None:
        self.cfg = config
        self.task = get_task(config.task)
        self.proposer = BoundedProposer(proposer, config.workers)  # at most N requests at once
        self.proposer_label = proposer_label
        self.view = view
        self.wd = Workdir(config.workdir, self.task.name)
        self.stop_requested = False
        self._sigint_count = 0
        self._shown_warnings: set[str] = set()
        self._t_start = time.monotonic()
        self._first_iteration = 0
        self._tokens_at_start = 0
        self.time_left_s: float | None = None  # estimate for the view while --hours or --max-tokens is set
        self.budget_note: str | None = None  # the same as words, e.g. "time left: about 1h 05m (bound by --hours 2)"
        self.test_readings = 0  # readings of the test split by `final` in this workdir, counted at start
        self._clock: TreeClock | None = None  # CPU of the loop and its workers, read at each commit

    # ----- setup and resume -------------------------------------------------------------
    def _open(self) -> tuple[LoopState, Learnings, dict]:
        try:
            manifest = read_manifest(self.cfg.data_dir)
            self.universe = load_universe(self.cfg.data_dir)
            splits = self.universe.splits[self.universe.instruments[0]]
        except DataError as exc:
            raise LoopStop(str(exc)) from exc
        digest = manifest_digest(manifest)
        try:
            return self._resume(manifest, splits, digest)
        except OSError as exc:
            raise LoopStop(f"cannot use {self.wd.root}/ as the run folder: {exc}") from exc
        except NewerSchema as exc:  # names the file and the version that wrote it
            raise LoopStop(str(exc)) from exc
        except (ValueError, KeyError, TypeError) as exc:  # RecordError and JSONDecodeError are ValueErrors
            raise LoopStop(
                f"{self.wd.root}/ holds a state or iteration file alphaloop cannot read ({type(exc).__name__}: {exc}); "
                f"its writes are atomic, so it was edited or damaged outside the loop: restore it or use another "
                f"--workdir"
            ) from exc

    def _resume(self, manifest: dict, splits: dict, digest: str) -> tuple[LoopState, Learnings, dict]:
        """Check the workdir belongs to this data, load the state and replay records a kill left behind."""
        self.wd.prepare()
        recorded = self.wd.read_manifest()
        if recorded is not None:
            if manifest_digest(recorded) != digest:
                raise LoopStop(
                    f"the frozen data in {self.cfg.data_dir}/ no longer matches the data this run started on "
                    f"(hash {digest} now, {manifest_digest(recorded)} recorded in {self.wd.manifest}); "
                    f"restore that data ({restore_hint(recorded, out=str(self.cfg.data_dir))}) "
                    "or start a new run with another --workdir"
                )
        else:
            self.wd.write_manifest(manifest)
        if self.wd.has_run():
            state = self.wd.read_state()
            for name, recorded_value, asked in (("task", state.task, self.cfg.task),
                                                ("metric", state.metric, self.cfg.metric),
                                                ("cost-bps", state.cost_bps, self.cfg.cost_bps),
                                                ("folds", state.folds, self.cfg.folds)):
                if recorded_value is not None and recorded_value != asked:
                    raise LoopStop(f"this workdir was scored with --{name} {recorded_value}; rerun with that value "
                                   f"or use another --workdir (mixing them would rank candidates on different scales)")
        else:
            state = LoopState(metric=self.cfg.metric, population_size=self.cfg.population, data_manifest=digest,
                              cost_bps=self.cfg.cost_bps, folds=self.cfg.folds, task=self.cfg.task)
        state.population_size = self.cfg.population
        learnings = Learnings.from_json(state.learnings) if state.learnings else Learnings()
        self.snapshots = SnapshotStore(self.wd.snapshots, self.cfg.workers)
        self.snapshots.add(state.next_iteration - 1, state.to_json(), learnings.to_json())
        while self.wd.has_record(state.next_iteration):  # records written just before a kill
            state.apply(self.wd.record(state.next_iteration), learnings, self.task)
            self.snapshots.add(state.next_iteration - 1, state.to_json(), learnings.to_json())
        self.wd.forget_unfinished(state.next_iteration)
        self.wd.resume_views(state, self.task.tsv_header(self.cfg.metric),
                             with_rule(learnings.render(), self.cfg.workers), self._row)
        self.histories = tuple(instrument_histories(self.universe))  # what every candidate runs on
        self.prepared = self.task.prepare(self.histories)  # what the task's prompts derive from the train split
        self.digest = digest
        return state, learnings, manifest

    # ----- one iteration ----------------------------------------------------------------
    def _work(self, flight: Flight, base: Snapshot, state: LoopState) -> _Done:
        """Propose from the snapshot (``state``: its state, parsed once at launch and only read here), then
        evaluate: on the iteration's own thread, writing nothing."""
        n, t0, created = flight.iteration, time.perf_counter(), _now()
        if n == 0:
            parent, proposal = None, Proposal(region=extract_region(self.cfg.start_file.read_text(encoding="utf-8")),
                                              hypothesis="", change="baseline", expected="")
            proposal_label = "baseline"
        else:
            parent = flight.parent  # chosen by ``_plan`` at launch: every iteration after the baseline has one
            assert parent is not None, "_plan picks a parent for every iteration after the baseline"
            learnings = Learnings.from_json(base.learnings) if base.learnings else Learnings()
            # proposing reads a record's parent, stage and figures, never its returns sidecar: a few small files
            latest = self.wd.record_or_none(base.after, returns=False)
            grand = self.wd.record_or_none(latest.parent, returns=False) if latest is not None else None
            pctx = ProposalContext(
                iteration=n, parent_iteration=parent, parent_region=self._parent_region(parent),
                metric=self.cfg.metric,
                population=[MemberSummary(m.iteration, m.val_metric, m.train_metric, m.val_trades, m.description)
                            for m in state.population],
                learnings=learnings.prompt_view(),
                last_outcome=state.last_outcome, cost_bps=self.cfg.cost_bps, shows_trades=self.task.shows_trades,
                max_gross=self.cfg.max_gross, columns=self.universe.columns,
                siblings=flight.siblings, stalled=rule.stalled(state.consecutive_fails, self.cfg.stall_after),
                **self.task.evidence(n, parent, latest, self.wd.record_or_none(parent, returns=False), grand,
                                     base.after, self.prepared, state),
            )
            proposal = self.proposer.propose(pctx)
            proposal_label = self.proposer_label
        t_prop = time.perf_counter() - t0
        flight.stage = EVALUATING
        result = self.executor.evaluate(proposal.region) if proposal.region is not None else None
        return _Done(base.after, parent, proposal, proposal_label, result, created, t_prop,
                     time.perf_counter() - t0 - t_prop)

    def _plan(self, n: int, base: Snapshot, state: LoopState) -> tuple[int | None, tuple[int, ...]]:
        """Iteration n's parent, and the iterations outside the state it proposes from (in flight, or committed
        since) that build on the same parent: its prompt says so, so two siblings need not make the same change.
        Each one's parent is its record's or its flight's, both fixed by the states they proposed from."""
        if n == 0:
            return None, ()
        parent = state.pick_parent(n, self.cfg.seed)
        flights = self.flights.flights
        def parent_of(j: int) -> int | None:
            return flights[j].parent if j in flights else getattr(self.wd.record_or_none(j, returns=False), "parent",
                                                                   None)
        return parent, tuple(j for j in range(max(base.after + 1, 1), n) if parent_of(j) == parent)

    def _iteration(self, n: int, done: _Done, state: LoopState) -> IterationRecord:
        """The record of a finished iteration, judged against the state committed up to n - 1; writes
        its reply and trade files (the record itself is the commit)."""
        parent, proposal, t_prop = done.parent, done.proposal, done.propose_s
        self._show_warnings(proposal)
        record = IterationRecord(
            iteration=n, parent=parent, proposed_from=None if done.base < 0 else done.base,
            created_at=done.created_at, metric=self.cfg.metric, task=self.cfg.task, cost_bps=self.cfg.cost_bps,
            folds=self.cfg.folds, eval_timeout_s=self.cfg.eval_timeout_s, proposer=done.label, model=proposal.model,
            tokens=dict(proposal.tokens),
            data_manifest=self.digest, test_readings_before=self.test_readings,
            proposal={k: v for k, v in proposal.to_json().items() if k != "region"},
            status="rejected", stage="proposal", reason="",
        )
        if proposal.reply:  # the whole reply, think blocks included, for an audit the record's head cannot give
            record.reply_file = self.wd.write_reply(n, proposal.reply)
        if proposal.region is None or done.result is None:
            record.reason = proposal.error or "the reply held no usable code"
            record.timings = {"propose": t_prop, "evaluate": 0.0, "total": t_prop}
            return record
        self.wd.write_trade(n, splice_region(template_text(self.task), proposal.region))
        ev = done.result.evaluation
        record.status, record.stage = "accepted" if ev.accepted else "rejected", ev.stage
        record.reason = in_reply_lines(ev.reason, proposal.reply, proposal.region)
        record.details, record.eval_timings = ev.details, ev.timings
        if ev.scores is not None:
            record.scores = {k: v for k, v in ev.scores.to_json().items() if k != "selection_val"}
            record = dataclasses.replace(record, **self.task.scored_fields(ev, self.histories))
            parent_val = next((m.val for m in state.population if m.iteration == parent), None)
            prec = self.wd.record_or_none(parent, returns=False) if parent_val is None else None
            if prec is not None and prec.scores:
                parent_val = prec.split("val")
            parent_val, now_val = self.task.grading_view(parent_val), self.task.grading_view(record.split("val"))
            if n:
                record.hypothesis_held, record.grading = grade(expectation(proposal), parent_val, now_val,
                                                               rejected=not ev.accepted)
        if ev.accepted:
            record = dataclasses.replace(record, **self.task.accepted_fields(
                ev, done.result.stress, self.histories, state, self.cfg.stress_select))
        record.timings = {"propose": t_prop, "evaluate": done.evaluate_s, "total": t_prop + done.evaluate_s}
        return record

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

    def _commit(self, record: IterationRecord, state: LoopState, learnings: Learnings,
                later: bool = True) -> IterationRecord:
        """Write the record, then fold in the record as read back: what a resume replays, to the bit
        (JSON turns NaN and infinities into null, numpy scalars into floats), so a killed and an
        uninterrupted run hold the same state. A compaction this record triggers is asked of the
        compactor here, live only, and its reply stored in the record, so replay never calls a model.
        ``timings["cpu"]``: CPU seconds of the loop and its sandbox workers since the previous commit
        (absent on a command's first, which carries its start-up)."""
        if self._clock is None:
            self._clock = TreeClock()
        else:
            record.timings["cpu"] = round(self._clock.lap(), 4)
        self.wd.write_record(record)
        record = self.wd.record(record.iteration)
        request = learnings.compaction_request(entry_from_record(record, self.cfg.metric, self.task)) if later else None
        if request is not None:  # decided on the record as read back, exactly as a replay will fold it
            self.view.stage(record.iteration, "compact", "rewriting the learnings' lessons")
            record.learnings_compacted = self.proposer.compact(request.text, request.budget_tokens)
            self.wd.write_record(record)
            record = self.wd.record(record.iteration)
        state.apply(record, learnings, self.task)
        self.wd.write_views(state, with_rule(learnings.render(), self.cfg.workers), self._row(record), record)
        return record

    def _row(self, record: IterationRecord) -> str:
        """The record's results.tsv line, in the task's words."""
        return self.task.tsv_row(record, self.cfg.metric)

    # ----- the run ------------------------------------------------------------------------
    def _on_sigint(self, signum: int, frame: Any) -> None:
        self._sigint_count += 1
        if self._sigint_count > 1:
            raise KeyboardInterrupt
        self.stop_requested = True
        self.view.note("Ctrl-C: finishing the iterations in flight, then stopping (press again to stop at once)")

    def run(self) -> int:
        state, learnings, manifest = self._open()
        self.test_readings = len(self.wd.test_readings())
        cap = self.cfg.iterations
        if cap is not None and state.next_iteration > cap:  # nothing to run: say so now, not the last run's reason
            last = state.next_iteration - 1
            state.stop_reason = (f"iterations: {self.wd.root}/ already holds iterations 0..{last}, and --iterations "
                                 f"{self.cfg.iterations} asks for none beyond them; to continue, rerun with "
                                 f"--iterations N, N > {last} (e.g. --iterations {last + 10})")
            self.wd.write_state(state)
            self._finish(state, manifest)
            return 0
        stalled = state.stop_reason is not None and state.stop_reason.startswith("max-fails")
        if stalled and state.consecutive_fails >= self.cfg.max_fails > 0:
            self.view.note(f"the last run stopped after {state.consecutive_fails} consecutive failures; "
                           f"continuing with the count reset")
            state.consecutive_fails = 0
            for snap in self.snapshots.items.values():  # the states iterations in flight propose from
                snap.state["consecutive_fails"] = 0
        if self.test_readings:
            self._warn_test_read()
        self._t_start = time.monotonic()
        self._first_iteration = state.next_iteration
        self._tokens_at_start = sum(state.tokens.values())
        old_int = signal.signal(signal.SIGINT, self._on_sigint)
        old_term = signal.signal(signal.SIGTERM, self._on_sigint)
        self._started = time.perf_counter()
        code = 0
        last_words: str | None = None
        settings = EvalSettings(metric=self.cfg.metric, folds=self.cfg.folds, cost_bps=self.cfg.cost_bps,
                                max_gross=self.cfg.max_gross,
                                eval_timeout_s=self.cfg.eval_timeout_s, stress_select=self.cfg.stress_select,
                                stress_paths=self.cfg.stress_paths, seed=self.cfg.seed, task=self.cfg.task)
        try:
            with make_executor(self.cfg.executor, self.histories, settings, self.cfg.workers,
                               self.cfg.ray_address) as executor:
                self.executor = executor
                self.flights = InFlight(self.cfg.workers)
                self.view.start(self, state, executor.describe())
                self.view.note(universe_line(self.universe))
                for note in self.task.run_notes(self.histories, manifest):
                    self.view.note(note)
                if (line := bars_line(manifest)) is not None:
                    self.view.note(line)
                code, last_words = self._drive(state, learnings)
        except KeyboardInterrupt:
            state.stop_reason = (f"interrupted: Ctrl-C twice; rerun the same command to resume at iteration "
                                 f"{state.next_iteration} (the unfinished iterations are redone)")
            code = 130
        finally:
            signal.signal(signal.SIGINT, old_int)
            signal.signal(signal.SIGTERM, old_term)
        state.elapsed_s += time.perf_counter() - self._started
        self.wd.write_state(state)
        if last_words is not None and state.trials < 2:
            self.view.close()  # one trial has no statistics worth a summary: the stop line and the error are the news
            self.view.note(f"stopped: {state.stop_reason}")
        elif self._finish(state, manifest) is False:  # a Ctrl-C cut the end-of-run steps short
            code = 130
        if last_words is not None:
            self.view.note(last_words)  # last, so the summary never buries why the run stopped
        return code

    def _drive(self, state: LoopState, learnings: Learnings) -> tuple[int, str | None]:
        """Keep up to N iterations in flight and commit them in iteration order (alphaloop.run.flight's rule).

        A stop reason (a budget, Ctrl-C, --iterations, --max-fails) stops new launches; the iterations
        already in flight are finished and committed. Returns the exit code and any last words."""
        workers, next_launch, reason = self.cfg.workers, state.next_iteration, None
        while True:
            while reason is None and len(self.flights.flights) < workers and (next_launch == 0 or state.next_iteration):
                base = self.snapshots.base(next_launch, workers)  # iteration 0 is committed before any other starts
                proposes_from = LoopState.from_json(base.state, "snapshot")  # parsed once: read by all three
                reason = self._stop_reason(next_launch, proposes_from, state)
                if reason is None:
                    parent, siblings = self._plan(next_launch, base, proposes_from)
                    self.flights.launch(next_launch, base.after,
                                        lambda f, b=base, s=proposes_from: self._work(f, b, s), parent, siblings)
                    self.view.stage(next_launch, "propose", f"from the state after iter {base.after}")
                    next_launch += 1
            if not self.flights.flights:
                state.stop_reason = reason
                return (130 if reason and reason.startswith("interrupted") else 0), None
            n = state.next_iteration
            try:
                done = self.flights.take(n)
            except EndpointDown as exc:
                state.stop_reason = (f"endpoint-down: the LLM endpoint stopped answering at iteration {n}; "
                                     f"rerun the same command to resume at iteration {n}")
                return 3, (f"error: the LLM endpoint is down: {exc}\nstate saved after iteration {n - 1}; "
                           f"rerun the same command to resume at iteration {n}")
            record = self._iteration(n, done, state)
            state.elapsed_s += time.perf_counter() - self._started
            self._started = time.perf_counter()
            later = reason is None and rule.proposes_after(n, workers, self.cfg.iterations)
            record = self._commit(record, state, learnings, later)
            self.snapshots.add(n, state.to_json(), learnings.to_json())
            self.snapshots.save()
            self._estimate(state)
            self.view.iteration_done(record, state, learnings)
            if self.budget_note and not isinstance(self.view, LiveView):
                self.view.note(f"  {self.budget_note}")

    def _warn_test_read(self) -> None:
        """Searching on after `final` makes the test split one more validation split; say so before it happens."""
        warn_loudly("THE TEST SPLIT HAS ALREADY BEEN READ",
                    f"`python harness.py final` read the test split of this run {self.test_readings} time(s) "
                    f"({self.wd.readings}).\nSearching further after a reading turns the test split into one "
                    f"more validation split:\nits figures will no longer be an unbiased estimate. This is recorded in "
                    f"the run (state.json: searched_after_test_reading;\neach new iteration record: "
                    f"test_readings_before). For an untouched test split, prepare new data and use a new --workdir.")

    def _stop_reason(self, n: int, base: LoopState, state: LoopState) -> str | None:
        """Why iteration ``n`` is not started, and how to continue; None to go on.

        The failure count is the one of ``base``, the state ``n`` proposes from, so a resumed run stops
        where an uninterrupted one would; budgets are this command's, counted over committed records."""
        if self.cfg.iterations is not None and n > self.cfg.iterations:
            return (f"iterations: reached --iterations {self.cfg.iterations}; to continue, rerun with "
                    f"--iterations N, N > {self.cfg.iterations}")
        if self.cfg.max_fails and base.consecutive_fails >= self.cfg.max_fails:
            why = (f"max-fails: {base.consecutive_fails} consecutive iterations without entering the "
                   f"top-{self.cfg.population}")
            if getattr(self.proposer, "name", "") == "offline":
                return (f"{why}: the offline search stalled (its variations of the population stopped improving on "
                        f"validation); to search through the night, rerun with --hours 8 (it then restarts from "
                        f"other families instead of stopping; --max-fails 0 alone still stops at --iterations), or "
                        f"set OPENAI_BASE_URL (and OPENAI_MODEL) to let an LLM propose")
            return (f"{why}; rerun the same command to continue with the count reset, or add --max-fails 0 to "
                    f"never stop on failures")
        if self.stop_requested:
            return f"interrupted: Ctrl-C or SIGTERM; rerun the same command to resume at iteration {n}"
        if n == self._first_iteration:  # a budget always allows one iteration, so every rerun makes progress
            return None
        spent = time.monotonic() - self._t_start
        if self.cfg.hours is not None and spent >= self.cfg.hours * 3600:
            return (f"hours: --hours {self.cfg.hours:g} used up ({duration(spent)} in this command); state saved: "
                    f"rerun the same command to resume at iteration {n} with a fresh budget")
        used = sum(state.tokens.values()) - self._tokens_at_start
        if self.cfg.max_tokens is not None and used >= self.cfg.max_tokens:
            return (f"max-tokens: {used:,} LLM tokens used in this command (--max-tokens {self.cfg.max_tokens:,}); "
                    f"state saved: rerun the same command to resume at iteration {n} with a fresh budget")
        return None

    def _estimate(self, state: LoopState) -> None:
        """Time left under the tightest limit, from this command's pace; whenever an end is known
        (--iterations alone is enough for an estimate)."""
        if self.cfg.hours is None and self.cfg.max_tokens is None and self.cfg.iterations is None:
            return
        done = state.next_iteration - self._first_iteration
        spent = time.monotonic() - self._t_start
        if done < 1 or spent <= 0:
            return
        left: dict[str, float] = {}
        cap = self.cfg.iterations
        if cap is not None:
            left[f"--iterations {cap}"] = (cap + 1 - state.next_iteration) * spent / done
        if self.cfg.hours is not None:
            left[f"--hours {self.cfg.hours:g}"] = self.cfg.hours * 3600 - spent
        used = sum(state.tokens.values()) - self._tokens_at_start
        if self.cfg.max_tokens is not None and used > 0:
            left[f"--max-tokens {self.cfg.max_tokens:,}"] = (self.cfg.max_tokens - used) * spent / used
        if not left:  # only a token budget, and no token used yet: no pace to estimate from
            return
        bound, seconds = min(left.items(), key=lambda kv: kv[1])
        self.time_left_s = max(0.0, seconds)
        self.budget_note = (f"time left: about {duration(self.time_left_s)} (bound by {bound}; "
                            f"estimate from this command's pace)")

    def _finish(self, state: LoopState, manifest: dict) -> bool:
        """End-of-run figures: statistics over all trials, second market, the report; False if cut by Ctrl-C."""
        cfg = self.cfg
        return finish_run(FinishInputs(wd=self.wd, state=state, manifest=manifest, histories=self.histories,
                                data_dir=cfg.data_dir, metric=cfg.metric, cost_bps=cfg.cost_bps, seed=cfg.seed,
                                stress_paths=cfg.stress_paths, cross_ticker=cfg.cross_ticker,
                                test_readings=self.test_readings, task=self.task,
                                instrument_names=tuple(self.universe.instruments)), close_view=self.view.close)
