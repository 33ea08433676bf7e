"""The one path every candidate takes: gate -> sandbox -> look-ahead -> score -> guards.

``harness.py check`` and the loop both call ``evaluate``, so a candidate is judged the same way
wherever it comes from. It never raises on a bad candidate: every failure becomes an
``Evaluation`` naming the stage and the reason, with what each stage saw in ``details``.

Time: every sandbox run of one candidate (the full run, the one run of all probes, and at most
``MAX_LONE_RERUNS`` lone reruns) draws on one wall-clock ``Budget`` of ``eval_timeout_s``; each run
gets ``min(its own limit, what is left)``, so a candidate costs at most the budget plus the
runner's grace. The probe run carries the look-ahead probes and the invariance probes of
``guards.invariance_probes`` (date shift, history prepended, rows removed); the look-ahead stage
judges the first, the guards stage the others.

A universe (``EvalContext.universe``) runs the same way: the full run holds every instrument's
frame, the probe run every instrument's probes (each at cuts drawn from a seed of its own, see
``instrument_seed``), and lone reruns share the one cap. Each instrument is judged alone: a leak or
a guard failure on any of them rejects, the reason naming it by number ("instrument 3 of 5: ...").
``universe.score_universe`` scores each and their equal-weight portfolio, whose figures are the
candidate's ``scores``. With one instrument nothing differs from a single-instrument run.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from alphaloop.backtest import DEFAULT_COST_BPS
from alphaloop.forecast.scores import ForecastScores, score_forecasts
from alphaloop.guards import GuardLimits, InvarianceProbe, check_guards, invariance_probes, probe_failure
from alphaloop.lookahead import Leak, Probe, first_difference, probe_frames, warmup_rows
from alphaloop.scoring import DEFAULT_FOLDS, DEFAULT_METRIC, History, Scores
from alphaloop.store import finite
from alphaloop.universe import UniverseScores, instrument_label, score_universe
from sandbox.gate import task_check

if TYPE_CHECKING:
    from sandbox.runner import Sandbox

STAGES = ("gate", "sandbox", "lookahead", "guards", "ok")
LOG_CHARS = 2000  # the candidate's output kept in the record: enough to debug, bounded
PROBE_TIMEOUT_FACTOR = 6.0  # the probe run holds about five times the full run's rows; the budget bounds it too
DEFAULT_EVAL_TIMEOUT_S = 60.0  # one wall-clock budget for all of a candidate's sandbox runs (--eval-timeout)
MAX_LONE_RERUNS = 3  # differing probes rerun alone per candidate; more differences mean state between frames
MIN_RUN_S = 0.5  # less budget than this cannot even fork a run: stop instead
PROBES_FAILED = "look-ahead probes could not run (the candidate must also work on a truncated or altered history): "


@dataclass
class EvalContext:
    """What an evaluation needs besides the region; train+validation only, never the test split."""

    history: History
    sandbox: Sandbox
    metric: str = DEFAULT_METRIC
    folds: int = DEFAULT_FOLDS
    cost_bps: float = DEFAULT_COST_BPS
    limits: GuardLimits = field(default_factory=GuardLimits)
    probe_seed: int | None = None  # None: derived from the region, so its author cannot aim at the cuts
    eval_timeout_s: float = DEFAULT_EVAL_TIMEOUT_S  # all sandbox runs of one candidate together, wall clock
    gate: Callable[[str], Any] | None = None  # None: sandbox.gate.check for the task's functions
    task: str = "trade"  # "forecast": generate_features + forecast(row), scored by proper scoring rules
    universe: tuple[History, ...] = ()  # every instrument of a universe, ``history`` first; () for one

    @property
    def histories(self) -> tuple[History, ...]:
        """The instruments the candidate runs on, in the universe's order (one: ``history`` alone; the
        forecast task scores one instrument)."""
        return (tuple(self.universe) if self.task == "trade" else ()) or (self.history,)


@dataclass
class Evaluation:
    """The verdict on one candidate and everything needed to explain it."""

    accepted: bool
    stage: str  # "gate" | "sandbox" | "lookahead" | "guards" | "ok"
    reason: str  # "" when accepted
    scores: Scores | ForecastScores | None  # present whenever the candidate ran and was scored
    timings: dict[str, float]
    details: dict
    signals: np.ndarray | None = field(default=None, repr=False)  # validated, for whoever scores further
    universe: UniverseScores | None = field(default=None, repr=False)  # per-instrument scores; None for one
    instrument_signals: tuple[np.ndarray, ...] = field(default=(), repr=False)  # every instrument's, in order
    forecasts: np.ndarray | None = field(default=None, repr=False)  # forecast task: validated (n, H, 3)

    def check_json(self) -> dict:
        """The one-line machine-readable verdict of ``harness.py check`` (strict JSON: no NaN)."""
        return {"accepted": self.accepted, "stage": self.stage, "reason": self.reason,
                "metrics": finite(self.scores.to_json()) if self.scores is not None else None}


def region_seed(region: str) -> int:
    """A probe seed fixed for a region (reproducible) yet unpredictable to whoever wrote it."""
    return int.from_bytes(hashlib.sha256(region.encode("utf-8")).digest()[:4], "big")


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
        return (f"the candidate used its whole evaluation budget of {self.total_s:g} s ({parts}); make it faster: "
                f"vectorise generate_features and keep strategy_logic to a few comparisons")


def _run(box: Sandbox, region: str, frames: list, budget: Budget, label: str,
         limit_s: float, task: str = "trade") -> tuple[Any, str, bool]:
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
        # the trade task keeps the runner's original call, which every test double implements
        outcome = (box.run(region, frames, timeout_s=timeout) if task == "trade"
                   else box.run(region, frames, timeout_s=timeout, task=task))
    except Exception as exc:  # the loop must survive a runner fault and record it
        budget.note(label, time.monotonic() - started)
        return None, f"the sandbox runner failed: {type(exc).__name__}: {exc}", False
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


@dataclass
class _Suspect:
    """A probe whose shared-run result differs from the full run, in the order it is confirmed."""

    kind: str  # "lookahead" | "invariance"
    i: int  # index into the look-ahead probes or the invariance probes
    k: int = 0  # the instrument (0-based) the probe belongs to


def instrument_seed(seed: int, k: int) -> int:
    """Instrument k's probe seed: the region's own for the first (so one instrument probes as it always
    did), and a different, equally unpredictable one for each further instrument."""
    return seed if k == 0 else int(np.random.SeedSequence([seed, k]).generate_state(1)[0])


def _confirm_alone(box: Sandbox, region: str, instruments: list[_Instrument], results: list[Any], budget: Budget,
                   info: dict, task: str = "trade") -> tuple[Leak | None, int, str, bool]:
    """Rerun alone, up to ``MAX_LONE_RERUNS`` times, the probes whose result differs from the full run.

    One run shares a process between its frames, so state a candidate keeps in globals carries
    from one frame to the next; only a difference that survives a run of that frame on its own,
    like the full run, counts. Clean candidates never pay for this. A candidate that makes more
    probes differ than the cap allows to check is rejected: it keeps state between frames.
    ``results`` hold each instrument's look-ahead then invariance probe results, instrument after
    instrument; each instrument's ``inv_results`` is set to the invariance results to judge.
    Returns the confirmed leak and its instrument, a fault message (a lone run that failed, the
    budget spent or the cap reached) and whether the fault is the budget.
    """
    suspects: list[_Suspect] = []
    invariance: list[_Suspect] = []
    at = 0
    for k, inst in enumerate(instruments):
        n_probes, n_inv = len(inst.probes), len(inst.inv)
        mine = results[at: at + n_probes + n_inv]
        at += n_probes + n_inv
        warm = int(inst.info["warmup_rows"])
        diffs = [first_difference(inst.full, p, r) for p, r in zip(inst.probes, mine[:n_probes], strict=True)]
        inst.inv_results = list(mine[n_probes:])
        suspects += [_Suspect("lookahead", i, k) for _, _, i in
                     sorted((d.row, d.probe.cut, i) for i, d in enumerate(diffs) if d is not None)]
        invariance += [_Suspect("invariance", j, k) for j, (p, r) in enumerate(zip(inst.inv, inst.inv_results,
                                                                                   strict=True))
                       if probe_failure(inst.full, p, r, inst.frame.index, warm) is not None]
    suspects += invariance
    rerun: list[str] = []
    info["rerun_alone"] = rerun
    limit = float(getattr(box, "timeout_s", 30.0))
    many = len(instruments) > 1
    for n, suspect in enumerate(suspects):
        if n == MAX_LONE_RERUNS:
            return None, 0, (
                f"the candidate behaves differently when one process runs it on several frames: "
                f"{len(suspects)} probes differ from the full run and the first {MAX_LONE_RERUNS} of them, "
                f"rerun alone, did not: it keeps state between frames or between calls; make generate_features "
                f"and strategy_logic depend only on their input (no global counters or caches)"), False
        inst = instruments[suspect.k]
        frame = inst.probes[suspect.i].frame if suspect.kind == "lookahead" else inst.inv[suspect.i].frame
        rerun.append((f"{instrument_label(suspect.k)} " if many else "") + f"{suspect.kind}:{suspect.i}")
        alone, fault, spent = _run(box, region, [frame], budget, "lone reruns", limit, task)
        if alone is None or not alone.ok:
            return None, 0, fault or f"{alone.status}: {alone.reason}", spent
        if suspect.kind == "lookahead":
            leak = first_difference(inst.full, inst.probes[suspect.i], alone.results[0])
            if leak is not None:
                return leak, suspect.k, "", False
        else:
            inst.inv_results[suspect.i] = alone.results[0]
    return None, 0, "", False


def _where(k: int, n: int) -> str:
    """The prefix naming an instrument in a reason, by number (reasons reach prompts: never a ticker)."""
    return f"{instrument_label(k)} of {n}: " if n > 1 else ""


def evaluate(region: str, ctx: EvalContext) -> Evaluation:
    """Judge one candidate region; see the module docstring for the order of stages."""
    timings: dict[str, float] = {}
    details: dict = {"region_sha256": hashlib.sha256(region.encode("utf-8")).hexdigest()}

    def reject(stage: str, reason: str, scores: Scores | None = None, signals: np.ndarray | None = None,
               universe: UniverseScores | None = None, per: tuple = ()) -> Evaluation:
        return Evaluation(False, stage, reason, scores, timings, details, signals, universe, per)

    with _timed(timings, "gate"):
        verdict = (task_check(ctx.task) if ctx.gate is None else ctx.gate)(region)
    details["gate"] = {"ok": bool(verdict.ok), "rule": verdict.rule, "line": verdict.line, "reason": verdict.reason}
    if not verdict.ok:
        return reject("gate", verdict.reason or f"refused by the gate (rule: {verdict.rule})")

    histories = ctx.histories
    frames = [h.frame for h in histories]
    many = len(histories)
    budget = Budget(ctx.eval_timeout_s)
    limit = float(getattr(ctx.sandbox, "timeout_s", 30.0))
    with _timed(timings, "sandbox"):
        outcome, fault, _ = _run(ctx.sandbox, region, frames, budget, "full run", limit, ctx.task)
    if outcome is None:
        details["sandbox"] = {"status": "runner_error", "reason": fault}
        return reject("sandbox", fault)
    details["sandbox"] = _outcome_json(outcome)
    if not outcome.ok:
        return reject("sandbox", f"{outcome.status}: {outcome.reason}")
    fulls = list(outcome.results)

    with _timed(timings, "lookahead"):
        seed = region_seed(region) if ctx.probe_seed is None else ctx.probe_seed
        instruments = []
        for k, (frame, full) in enumerate(zip(frames, fulls, strict=True)):
            seed_k = instrument_seed(seed, k)
            probes = probe_frames(frame, full, seed=seed_k)
            # the invariance probes judge signals; a forecaster has none (its probabilities get the look-ahead probes)
            inv = invariance_probes(frame, seed_k) if ctx.task == "trade" else []
            instruments.append(_Instrument(frame, full, probes, inv, {
                "seed": seed_k, "warmup_rows": warmup_rows(full.features), "probes": [p.describe() for p in probes],
                "rows_probed": sum(len(p.frame) for p in probes), "invariance": [p.describe() for p in inv],
                "invariance_rows": sum(len(p.frame) for p in inv), "full_rows": len(frame),
                "budget_s": ctx.eval_timeout_s}))
        if many == 1:
            info = instruments[0].info
        else:
            info = {"seed": seed, "instruments": [inst.info for inst in instruments],
                    "rows_probed": sum(inst.info["rows_probed"] for inst in instruments),
                    "invariance_rows": sum(inst.info["invariance_rows"] for inst in instruments),
                    "full_rows": sum(len(f) for f in frames), "budget_s": ctx.eval_timeout_s}
        details["lookahead"] = info
        probe_limit = max(limit, PROBE_TIMEOUT_FACTOR * float(outcome.seconds))
        probe_run, fault, spent = _run(ctx.sandbox, region,
                                       [p.frame for inst in instruments for p in (*inst.probes, *inst.inv)],
                                       budget, "probes", probe_limit, ctx.task)
        if probe_run is None or not probe_run.ok:
            info["run"] = {"status": "runner_error", "reason": fault} if probe_run is None else _outcome_json(probe_run)
            info["spent_s"] = {k: round(v, 3) for k, v in budget.spent.items()}
            return reject("lookahead", fault if spent else PROBES_FAILED + (fault or f"{probe_run.status}: "
                                                                                   f"{probe_run.reason}"))
        info["run"] = _outcome_json(probe_run)
        leak, leak_at, fault, spent = _confirm_alone(ctx.sandbox, region, instruments, list(probe_run.results),
                                                     budget, info, ctx.task)
        info["spent_s"] = {k: round(v, 3) for k, v in budget.spent.items()}
        if fault:
            info["leak"] = None
            stateful = fault.startswith("the candidate behaves differently")
            return reject("lookahead", fault if spent or stateful else PROBES_FAILED + fault)
    if leak is not None:
        info["leak"] = {"column": leak.column, "date": leak.date, "probe": leak.probe.describe(),
                        "differing_rows": leak.differing_rows}
        if many > 1:
            info["leak"]["instrument"] = leak_at + 1
        return reject("lookahead", _where(leak_at, many) + leak.message(frames[leak_at].index))
    info["leak"] = None
    if ctx.task == "forecast":
        full = fulls[0]
        with _timed(timings, "score"):
            fscores = score_forecasts(ctx.history, full.forecasts, folds=ctx.folds)
        details["guards"] = {"applied": False, "why": "the trade guards judge positions; a forecaster takes none",
                             "failed": []}
        return Evaluation(True, "ok", "", fscores, timings, details, None, forecasts=full.forecasts)

    signals = tuple(full.signals for full in fulls)
    with _timed(timings, "score"):
        universe = score_universe(histories, signals, metric=ctx.metric, folds=ctx.folds, cost_bps=ctx.cost_bps)
    scores = universe.portfolio
    kept = universe if many > 1 else None
    with _timed(timings, "guards"):
        reports = [check_guards(region, h.frame.index, [h.windows[s] for s in ("train", "val")],
                                per.splits["val"], inst.full, list(zip(inst.inv, inst.inv_results, strict=True)),
                                ctx.limits, warmup=int(inst.info["warmup_rows"]))
                   for h, per, inst in zip(histories, universe.instruments, instruments, strict=True)]
    failing = [k for k, r in enumerate(reports) if not r.ok]
    if many == 1:
        details["guards"] = {**reports[0].values, "failed": [name for name, _ in reports[0].failures]}
    else:
        details["guards"] = {"instruments": [{**r.values, "failed": [name for name, _ in r.failures]}
                                             for r in reports],
                             "failed": [f"{instrument_label(k)}: {name}" for k in failing
                                        for name, _ in reports[k].failures]}
    if failing:
        first = failing[0]
        also = (f" (guards also failed on instrument{'s' * (len(failing) > 2)} "
                f"{', '.join(str(k + 1) for k in failing[1:])})" if len(failing) > 1 else "")
        return reject("guards", _where(first, many) + reports[first].reason + also, scores, signals[0], kept,
                      signals)
    return Evaluation(True, "ok", "", scores, timings, details, signals[0], kept, signals)
