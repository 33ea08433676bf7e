"""The one path every candidate takes: the stages of ``PIPELINE``, in the order they run.

``PIPELINE`` is the only list of the stages (``STAGES`` holds their names); ``harness.py check``,
the report, the live view and the README read it from here. Each stage is one function
``(Trial) -> Verdict``: it reads what earlier stages left on the ``Trial``, adds its own, and says
whether the candidate goes on, why not, and what it saw (kept in the record under the stage's name).
``harness.py check`` and the loop both call ``evaluate``, so a candidate is judged the same way
wherever it comes from. It never raises on a bad candidate: every failure becomes an
``Evaluation`` naming the stage and the reason, with what each stage saw in ``details``.

Time: every sandbox run of one candidate (the full run, the one run of all probes, and at most one
rerun of the full run when a probe differs) draws on one wall-clock ``Budget`` of ``eval_timeout_s``;
each run gets ``min(its own limit, what is left)``, so a candidate costs at most the budget plus the
runner's grace. The look-ahead stage owns every probe: it runs the look-ahead probes and the
invariance probes of ``guards.invariance_probes`` (date shift, history prepended, rows removed) in
one sandbox run and judges both kinds; a leak rejects there, an invariance finding is handed to the
guards stage, which ranks it among the other guards. The sandbox runs every frame in a fresh process
that never held another frame's data, so a probe's result is the candidate's answer to that frame
alone: state kept across rows within a frame is ordinary causal code, and nothing reaches a probe
from the full run or another probe. A difference is confirmed by rerunning the full run (again a
clean process): when the candidate's own full run does not reproduce itself, the reason is its
randomness, not the future.

The instruments (``EvalContext.histories``, always a tuple: one instrument is a universe of one) run
the same stages: the full run is one frame holding every instrument (a panel), the probe run every
instrument's probes (each at cuts drawn from a seed of its own, see ``instrument_seed``). Each
instrument is judged alone: a leak or a guard failure on any of them rejects, the reason naming it by
number ("instrument 3 of 5: ...").

What differs between tasks is asked of ``ctx.task`` (``alphaloop.tasks.protocol.Task``): the gate's
required functions, how the sandbox is called, the invariance probes, the output columns the probes
compare, scoring and guards. This module never asks which task runs.
"""

from __future__ import annotations

import hashlib
import secrets
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from alphaloop.evaluate.backtest import DEFAULT_COST_BPS
from alphaloop.evaluate.guards import (
    GuardLimits,
    InvarianceFindings,
    InvarianceProbe,
    judge_invariance,
    unseeded_randomness,
    unseeded_reason,
)
from alphaloop.evaluate.probes import Leak, Probe, first_difference, probe_frames, warmup_rows
from alphaloop.evaluate.scoring import DEFAULT_FOLDS, DEFAULT_METRIC, History
from alphaloop.evaluate.universe import UniverseScores
from alphaloop.present.names import frame_reason, instrument_field, instrument_prefix, per_instrument
from alphaloop.run.store import finite
from sandbox.gate_text import redact_paths

if TYPE_CHECKING:
    from alphaloop.tasks.protocol import Task
    from sandbox.runner import Sandbox

ACCEPTED = "ok"  # the stage an accepted candidate's record names: it passed them all
LOG_CHARS = 2000  # the candidate's output kept in the record: enough to debug, bounded
PROBE_TIMEOUT_FACTOR = 8.0  # the probe run holds about six times the full run's rows; the budget bounds it too
DEFAULT_EVAL_TIMEOUT_S = 60.0  # one wall-clock budget for all of a candidate's sandbox runs (--eval-timeout)
FASTER = ("make it faster: vectorise generate_features and keep the function called on each row or date to "
          "a few cheap operations")  # what a slow candidate is told, whichever limit stopped it
MIN_RUN_S = 0.5  # less budget than this cannot even fork a run: stop instead
PROBES_FAILED = "look-ahead probes could not run (the candidate must also work on a truncated or altered history): "
UNSEEDED = ("the candidate's output changes from one run to the next on the same data: seed your random numbers "
            "(np.random.default_rng(0)) or remove the randomness")


@dataclass
class EvalContext:
    """What an evaluation needs besides the region; train+validation only, never the test split."""

    histories: tuple[History, ...]  # every instrument the candidate runs on, in the universe's order
    sandbox: Sandbox
    task: Task  # what the candidate is asked for and how it is scored (alphaloop.tasks.get_task)
    metric: str = DEFAULT_METRIC
    folds: int = DEFAULT_FOLDS
    cost_bps: float = DEFAULT_COST_BPS
    limits: GuardLimits = field(default_factory=GuardLimits)
    probe_seed: int | None = None  # None: from the region and the run's nonce; given: reproduces a record
    probe_nonce: int = field(default_factory=lambda: new_nonce())  # secret per run (per context), kept in every record
    eval_timeout_s: float = DEFAULT_EVAL_TIMEOUT_S  # all sandbox runs of one candidate together, wall clock
    gate: Callable[[str], Any] | None = None  # None: the task's gate (sandbox.gate.check for its functions)
    max_gross: float = 1.0  # --max-gross: the portfolio task's cap on the sum of absolute weights
    probe_window: str | None = None  # a split probed with extra cuts inside it ("test": final, before it reports)

    def __post_init__(self) -> None:
        self.histories = tuple(self.histories)


@dataclass
class Evaluation:
    """The verdict on one candidate and everything needed to explain it."""

    accepted: bool
    stage: str  # the stage that rejected it (a name in STAGES), or ACCEPTED
    reason: str  # "" when accepted
    scores: Any  # the task's scores (Scores, ForecastScores...), present whenever the candidate was scored
    timings: dict[str, float]
    details: dict
    outputs: tuple[np.ndarray, ...] = field(default=(), repr=False)  # every instrument's validated outputs once scored
    universe: UniverseScores | None = field(default=None, repr=False)  # per-instrument scores of several instruments

    def check_json(self) -> dict:
        """The one-line machine-readable verdict of ``harness.py check`` (strict JSON: no NaN)."""
        return {"accepted": self.accepted, "stage": self.stage, "reason": self.reason,
                "metrics": finite(self.scores.to_json()) if self.scores is not None else None}


def new_nonce() -> int:
    """A run's secret probe nonce: drawn from the operating system, never from the region."""
    return secrets.randbits(63)


def region_seed(region: str, nonce: int = 0) -> int:
    """A candidate's probe seed: the region's hash mixed with the run's secret nonce, so its author
    can grind no cut, level or calendar offline; the record keeps both nonce and seed, so a
    record reproduces its probes (``EvalContext(probe_seed=...)``)."""
    digest = hashlib.sha256(nonce.to_bytes(8, "big") + region.encode("utf-8")).digest()
    return int.from_bytes(digest[:4], "big")


def _outcome_json(outcome: Any) -> dict:
    log = outcome.log or ""
    return {"status": outcome.status, "reason": outcome.reason, "seconds": round(float(outcome.seconds), 4),
            "log": log[-LOG_CHARS:], "log_truncated": len(log) > LOG_CHARS}


@contextmanager
def _timed(timings: dict[str, float], stage: str) -> Iterator[None]:
    start = time.perf_counter()
    try:
        yield
    finally:
        timings[stage] = timings.get(stage, 0.0) + time.perf_counter() - start


class Budget:
    """One wall-clock allowance for all of a candidate's sandbox runs, with what each run took."""

    def __init__(self, total_s: float) -> None:
        self.total_s = float(total_s)
        self.started = time.monotonic()
        self.spent: dict[str, float] = {}

    def remaining(self) -> float:
        return self.total_s - (time.monotonic() - self.started)

    def note(self, label: str, seconds: float) -> None:
        self.spent[label] = self.spent.get(label, 0.0) + float(seconds)

    def reason(self) -> str:
        parts = ", ".join(f"{label} {seconds:.1f} s" for label, seconds in self.spent.items())
        return f"the candidate used its whole evaluation budget of {self.total_s:g} s ({parts}); {FASTER}"


def _run(box: Sandbox, region: str, frames: list, budget: Budget, label: str,
         limit_s: float, task: Task) -> tuple[Any, str, bool]:
    """Run in the sandbox within ``limit_s`` and what is left of the budget.

    Returns the outcome (None on a fault), a fault reason, and whether the budget ran out; a
    failure of the runner itself becomes a reason, never an exception.
    """
    left = budget.remaining()
    if left < MIN_RUN_S:
        return None, budget.reason(), True
    timeout = min(limit_s, left)
    started = time.monotonic()
    try:
        outcome = task.run_sandbox(box, region, frames, timeout)
    except Exception as exc:  # the loop must survive a runner fault and record it
        budget.note(label, time.monotonic() - started)
        return None, redact_paths(f"the sandbox runner failed: {type(exc).__name__}: {exc}"), False
    budget.note(label, time.monotonic() - started)
    if outcome.status == "timeout" and timeout < limit_s:
        return None, budget.reason(), True
    return outcome, "", False


@dataclass
class _Instrument:
    """One instrument's part of the look-ahead stage: its frame, full run, probes and what they gave."""

    frame: pd.DataFrame
    full: Any
    probes: list[Probe]
    inv: list[InvarianceProbe]
    info: dict
    inv_results: list[Any] = field(default_factory=list)


def instrument_seed(seed: int, k: int) -> int:
    """Instrument k's probe seed: the region's own for the first (so one instrument probes as it always
    did), and a different, equally unpredictable one for each further instrument."""
    return seed if k == 0 else int(np.random.SeedSequence([seed, k]).generate_state(1)[0])


def _same(a: Any, b: Any) -> bool:
    """Whether two results of the same frame agree bit for bit (NaN equal to NaN)."""
    if not np.array_equal(a.signals, b.signals) or set(a.features) != set(b.features):
        return False
    if not all(np.array_equal(a.features[k], b.features[k], equal_nan=True) for k in a.features):
        return False
    fa, fb = getattr(a, "forecasts", None), getattr(b, "forecasts", None)
    return (fa is None) == (fb is None) and (fa is None or np.array_equal(fa, fb, equal_nan=True))


def _judge_probes(box: Sandbox, region: str, instruments: list[_Instrument], results: list[Any], budget: Budget,
                  info: dict, task: Task) -> tuple[Leak | None, int, str, bool]:
    """The earliest look-ahead difference among every instrument's probes, confirmed by one rerun.

    Every probe ran in a clean process, so a difference is the candidate's answer to that frame, not
    state carried from another. Before it counts as a leak, the full run is run again (a clean
    process too): if the candidate does not reproduce its own full run, the cause is randomness and
    the reason says so. ``results`` hold each instrument's look-ahead then invariance probe results,
    instrument after instrument; each instrument's ``inv_results`` is set to the invariance results.
    Returns the leak and its instrument, a fault message and whether the fault is the budget.
    """
    suspects: list[tuple[int, int, int, int]] = []  # (row, cut, instrument, probe)
    at = 0
    for k, inst in enumerate(instruments):
        n_probes, n_inv = len(inst.probes), len(inst.inv)
        mine = results[at: at + n_probes + n_inv]
        at += n_probes + n_inv
        inst.inv_results = list(mine[n_probes:])
        for i, (probe, result) in enumerate(zip(inst.probes, mine[:n_probes], strict=True)):
            diff = first_difference(inst.full, probe, result, task.output_columns)
            if diff is not None:
                suspects.append((diff.row, diff.probe.cut, k, i))
    info["rerun_alone"] = []
    if not suspects:
        return None, 0, "", False
    _, _, k, i = min(suspects)
    inst = instruments[k]
    info["rerun_alone"].append("full run")
    panel = tuple(x.frame for x in instruments)
    again, fault, spent = _run(box, region, [panel], budget, "rerun", float(box.timeout_s), task)
    if again is None or not again.ok:
        return None, 0, fault or f"{again.status}: {again.reason}", spent
    if not all(_same(x.full, y) for x, y in zip(instruments, again.results[0], strict=True)):
        return None, 0, UNSEEDED, False
    leak = first_difference(inst.full, inst.probes[i], _probe_result(results, instruments, k, i),
                            task.output_columns)
    return leak, k, "", False


def _probe_result(results: list[Any], instruments: list[_Instrument], k: int, i: int) -> Any:
    """Instrument k's look-ahead probe i in the flat list of every instrument's probe results."""
    return results[sum(len(x.probes) + len(x.inv) for x in instruments[:k]) + i]


@dataclass(frozen=True)
class Verdict:
    """One stage's outcome: whether the candidate goes on, why not, and what the stage saw."""

    ok: bool
    reason: str = ""  # "" when it goes on
    details: dict | None = None  # kept in the record under the stage's name; None: nothing of its own


@dataclass
class Trial:
    """One candidate on its way through the stages: each reads what earlier ones left and adds its own."""

    region: str
    ctx: EvalContext
    budget: Budget | None = None  # started by the sandbox stage: the gate's time is not the candidate's
    full_seconds: float = 0.0
    scores: Any = None  # set by the task's ``score``
    fulls: list[Any] = field(default_factory=list)  # every instrument's full run, in the universe's order
    warmups: list[int] = field(default_factory=list)  # each full run's warm-up rows
    invariances: list[InvarianceFindings] = field(default_factory=list)  # judged by the look-ahead stage
    instrument_scores: tuple[Any, ...] = ()  # each instrument's own scores, in order (set by the task's score)
    universe: UniverseScores | None = None  # several instruments: each one's scores beside the portfolio's

    def outputs(self) -> tuple[np.ndarray, ...]:
        """Every instrument's validated outputs once scored (signals, probabilities...), for whoever
        scores further; () before scoring."""
        return tuple(self.ctx.task.outputs_of(f) for f in self.fulls) if self.scores is not None else ()

    @property
    def run_limit(self) -> float:
        """The sandbox's own limit for one run."""
        return float(self.ctx.sandbox.timeout_s)


def gate(t: Trial) -> Verdict:
    """The AST allow-list, before anything of the candidate runs."""
    verdict = (t.ctx.task.gate() if t.ctx.gate is None else t.ctx.gate)(t.region)
    details = {"ok": bool(verdict.ok), "rule": verdict.rule, "line": verdict.line, "reason": verdict.reason}
    if not verdict.ok:
        return Verdict(False, verdict.reason or f"refused by the gate (rule: {verdict.rule})", details)
    return Verdict(True, "", details)


def run_sandbox(t: Trial) -> Verdict:
    """The full run on train+validation in the sandbox: the features and signals every later stage reads."""
    t.budget = Budget(t.ctx.eval_timeout_s)
    panel = tuple(h.frame for h in t.ctx.histories)
    outcome, fault, _ = _run(t.ctx.sandbox, t.region, [panel], t.budget, "full run", t.run_limit, t.ctx.task)
    if outcome is None:
        return Verdict(False, fault, {"status": "runner_error", "reason": fault})
    if outcome.status == "timeout":  # the run's own limit, the budget left aside: say which run, and what to do
        return Verdict(False, f"timeout: the full run (train and validation) {outcome.reason}; {FASTER}",
                       _outcome_json(outcome))
    if not outcome.ok:
        reason = frame_reason(outcome.reason, len(t.ctx.histories))  # the outcome's reason names no host path
        return Verdict(False, f"{outcome.status}: {reason}", _outcome_json(outcome))
    t.fulls, t.full_seconds = list(outcome.results[0]), float(outcome.seconds)
    checked = t.ctx.task.check_outputs(t)
    if checked is not None and not checked.ok:
        return Verdict(False, checked.reason, {**_outcome_json(outcome), **(checked.details or {})})
    return Verdict(True, "", _outcome_json(outcome))


def lookahead(t: Trial) -> Verdict:
    """Every probe, in one sandbox run: look-ahead (truncated, perturbed futures) and invariance, on
    every instrument. A region visibly drawing unseeded random numbers is rejected first, naming the
    line (a hidden draw differs between frames, whose children each reseed, and the rerun names it).

    A look-ahead leak rejects here; the invariance probes' findings are judged here too, once, and
    left on the trial for the guards stage, which ranks them among the other guards.
    """
    unseeded = unseeded_randomness(t.region)
    if unseeded:
        return Verdict(False, unseeded_reason(unseeded), {"unseeded": unseeded, "leak": None})
    own = t.ctx.task.lookahead(t)
    if own is not None:
        return own
    budget = t.budget
    assert budget is not None, "the sandbox stage starts the budget"
    seed = region_seed(t.region, t.ctx.probe_nonce) if t.ctx.probe_seed is None else t.ctx.probe_seed
    frames = [h.frame for h in t.ctx.histories]
    n = len(frames)  # reasons and findings name one of several instruments by number
    instruments = []
    for k, (frame, full) in enumerate(zip(frames, t.fulls, strict=True)):
        seed_k = instrument_seed(seed, k)
        focus = t.ctx.histories[k].windows.get(t.ctx.probe_window) if t.ctx.probe_window else None
        probes = probe_frames(frame, full, seed=seed_k, focus=focus, window=t.ctx.histories[k].windows.get("val"))
        inv = t.ctx.task.invariance_probes(frame, seed_k)
        warm = warmup_rows(full.features)
        instruments.append(_Instrument(frame, full, probes, inv, {
            "seed": seed_k, "nonce": t.ctx.probe_nonce if t.ctx.probe_seed is None else None, "warmup_rows": warm,
            "probes": [p.describe() for p in probes],
            "rows_probed": sum(len(p.frame) for p in probes), "invariance": [p.describe() for p in inv],
            "invariance_rows": sum(len(p.frame) for p in inv), "full_rows": len(frame),
            "budget_s": t.ctx.eval_timeout_s}))
    t.warmups = [int(inst.info["warmup_rows"]) for inst in instruments]
    info = per_instrument([inst.info for inst in instruments], {
        "seed": seed, "nonce": t.ctx.probe_nonce if t.ctx.probe_seed is None else None,
        "rows_probed": sum(inst.info["rows_probed"] for inst in instruments),
        "invariance_rows": sum(inst.info["invariance_rows"] for inst in instruments),
        "full_rows": sum(len(f) for f in frames), "budget_s": t.ctx.eval_timeout_s})
    probe_limit = max(t.run_limit, PROBE_TIMEOUT_FACTOR * t.full_seconds)
    probe_run, fault, spent = _run(t.ctx.sandbox, t.region,
                                   [p.frame for inst in instruments for p in (*inst.probes, *inst.inv)],
                                   budget, "probes", probe_limit, t.ctx.task)
    if probe_run is None or not probe_run.ok:
        info["run"] = {"status": "runner_error", "reason": fault} if probe_run is None else _outcome_json(probe_run)
        info["spent_s"] = {k: round(v, 3) for k, v in budget.spent.items()}
        faster = f"; {FASTER}" if probe_run is not None and probe_run.status == "timeout" else ""
        why = fault or f"{probe_run.status}: {probe_run.reason}{faster}"
        return Verdict(False, why if spent else PROBES_FAILED + why, info)
    info["run"] = _outcome_json(probe_run)
    leak, leak_at, fault, spent = _judge_probes(t.ctx.sandbox, t.region, instruments, list(probe_run.results),
                                                budget, info, t.ctx.task)
    info["spent_s"] = {k: round(v, 3) for k, v in budget.spent.items()}
    if fault:
        info["leak"] = None
        return Verdict(False, fault if spent or fault == UNSEEDED else PROBES_FAILED + fault, info)
    if leak is not None:
        info["leak"] = {"column": leak.column, "date": leak.date, "probe": leak.probe.describe(),
                        "differing_rows": leak.differing_rows}
        info["leak"].update(instrument_field(leak_at, n))
        return Verdict(False, instrument_prefix(leak_at, n) + leak.message(frames[leak_at].index), info)
    info["leak"] = None
    t.invariances = [judge_invariance(inst.full, list(zip(inst.inv, inst.inv_results, strict=True)), inst.frame.index,
                                      warm) for inst, warm in zip(instruments, t.warmups, strict=True)]
    return Verdict(True, "", info)


def score_stage(t: Trial) -> Verdict:
    """The task's scores: the selection metric and every split's figures, folds included; it never rejects."""
    t.ctx.task.score(t)
    return Verdict(True)


def guards(t: Trial) -> Verdict:
    """The task's guards: reward hacking first (hard-coded dates, the invariance findings), then degenerate output."""
    return t.ctx.task.guards(t)


@dataclass(frozen=True)
class Stage:
    """A named step of the pipeline; its name is what a record's ``stage`` says when it rejects."""

    name: str
    run: Callable[[Trial], Verdict]


PIPELINE: tuple[Stage, ...] = (Stage("gate", gate), Stage("sandbox", run_sandbox), Stage("lookahead", lookahead),
                               Stage("score", score_stage), Stage("guards", guards))
STAGES: tuple[str, ...] = tuple(stage.name for stage in PIPELINE)


def evaluate(region: str, ctx: EvalContext) -> Evaluation:
    """Judge one candidate region: run the stages of ``PIPELINE`` in order until one rejects it."""
    timings: dict[str, float] = {}
    details: dict = {"region_sha256": hashlib.sha256(region.encode("utf-8")).hexdigest()}
    trial = Trial(region, ctx)
    for stage in PIPELINE:
        with _timed(timings, stage.name):
            verdict = stage.run(trial)
        if verdict.details is not None:
            details[stage.name] = verdict.details
        if not verdict.ok:
            return Evaluation(False, stage.name, verdict.reason, trial.scores, timings, details, trial.outputs(),
                              trial.universe)
    return Evaluation(True, ACCEPTED, "", trial.scores, timings, details, trial.outputs(), trial.universe)
