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

A universe (``EvalContext.universe``) runs the same stages: the full run is one frame holding every
instrument (a panel), the probe run every instrument's probes (each at cuts drawn from a seed of its
own, see ``instrument_seed``). Each instrument is judged alone: a leak or
a guard failure on any of them rejects, the reason naming it by number ("instrument 3 of 5: ...").
``universe.score_universe`` scores each and their equal-weight portfolio, whose figures are the
candidate's ``scores``. A forecaster on a universe is probed per instrument the same way, and
``forecast.pool.score_forecast_universe`` pools every instrument's days (each bucketed by its own
train terciles) into one set of scores. With one instrument nothing differs from a single-instrument run.
"""

from __future__ import annotations

import hashlib
import re
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
    check_guards,
    forecast_guards,
    invariance_probes,
    judge_invariance,
    unseeded_randomness,
    unseeded_reason,
)
from alphaloop.evaluate.probes import Leak, Probe, first_difference, probe_frames, warmup_rows
from alphaloop.evaluate.scoring import DEFAULT_FOLDS, DEFAULT_METRIC, History, Scores
from alphaloop.evaluate.universe import UniverseScores, instrument_label, score_universe
from alphaloop.run.store import finite
from alphaloop.tasks.forecast.pool import score_forecast_universe
from alphaloop.tasks.forecast.scores import ForecastScores
from sandbox.gate import task_check

if TYPE_CHECKING:
    from sandbox.runner import Sandbox

ACCEPTED = "ok"  # the stage an accepted candidate's record names: it passed them all
LOG_CHARS = 2000  # the candidate's output kept in the record: enough to debug, bounded
PROBE_TIMEOUT_FACTOR = 8.0  # the probe run holds about six times the full run's rows; the budget bounds it too
DEFAULT_EVAL_TIMEOUT_S = 60.0  # one wall-clock budget for all of a candidate's sandbox runs (--eval-timeout)
MIN_RUN_S = 0.5  # less budget than this cannot even fork a run: stop instead
PROBES_FAILED = "look-ahead probes could not run (the candidate must also work on a truncated or altered history): "
UNSEEDED = ("the candidate's output changes from one run to the next on the same data: seed your random numbers "
            "(np.random.default_rng(0)) or remove the randomness")


@dataclass
class EvalContext:
    """What an evaluation needs besides the region; train+validation only, never the test split."""

    history: History
    sandbox: Sandbox
    metric: str = DEFAULT_METRIC
    folds: int = DEFAULT_FOLDS
    cost_bps: float = DEFAULT_COST_BPS
    limits: GuardLimits = field(default_factory=GuardLimits)
    probe_seed: int | None = None  # None: from the region and the run's nonce; given: reproduces a record
    probe_nonce: int = field(default_factory=lambda: new_nonce())  # secret per run (per context), kept in every record
    eval_timeout_s: float = DEFAULT_EVAL_TIMEOUT_S  # all sandbox runs of one candidate together, wall clock
    gate: Callable[[str], Any] | None = None  # None: sandbox.gate.check for the task's functions
    task: str = "trade"  # "forecast": generate_features + forecast(row), scored by proper scoring rules
    universe: tuple[History, ...] = ()  # every instrument of a universe, ``history`` first; () for one
    probe_window: str | None = None  # a split probed with extra cuts inside it ("test": final, before it reports)

    @property
    def histories(self) -> tuple[History, ...]:
        """The instruments the candidate runs on, in the universe's order (one: ``history`` alone)."""
        return tuple(self.universe) or (self.history,)


@dataclass
class Evaluation:
    """The verdict on one candidate and everything needed to explain it."""

    accepted: bool
    stage: str  # the stage that rejected it (a name in STAGES), or ACCEPTED
    reason: str  # "" when accepted
    scores: Scores | ForecastScores | None  # present whenever the candidate ran and was scored
    timings: dict[str, float]
    details: dict
    signals: np.ndarray | None = field(default=None, repr=False)  # validated, for whoever scores further
    forecasts: np.ndarray | None = field(default=None, repr=False)  # forecast task: validated (n, H, 3)
    universe: UniverseScores | None = field(default=None, repr=False)  # per-instrument scores; None for one
    instrument_signals: tuple[np.ndarray, ...] = field(default=(), repr=False)  # every instrument's, in order
    instrument_forecasts: tuple[np.ndarray, ...] = field(default=(), repr=False)  # forecast task: every instrument's

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


def instrument_seed(seed: int, k: int) -> int:
    """Instrument k's probe seed: the region's own for the first (so one instrument probes as it always
    did), and a different, equally unpredictable one for each further instrument."""
    return seed if k == 0 else int(np.random.SeedSequence([seed, k]).generate_state(1)[0])


def _where(k: int, n: int) -> str:
    """The prefix naming an instrument in a reason, by number (reasons reach prompts: never a ticker)."""
    return f"{instrument_label(k)} of {n}: " if n > 1 else ""


def _same(a: Any, b: Any) -> bool:
    """Whether two results of the same frame agree bit for bit (NaN equal to NaN)."""
    if not np.array_equal(a.signals, b.signals) or set(a.features) != set(b.features):
        return False
    if not all(np.array_equal(a.features[k], b.features[k], equal_nan=True) for k in a.features):
        return False
    fa, fb = getattr(a, "forecasts", None), getattr(b, "forecasts", None)
    return (fa is None) == (fb is None) and (fa is None or np.array_equal(fa, fb, equal_nan=True))


def _judge_probes(box: Sandbox, region: str, instruments: list[_Instrument], results: list[Any], budget: Budget,
                  info: dict, task: str = "trade") -> tuple[Leak | None, int, str, bool]:
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
            diff = first_difference(inst.full, probe, result)
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
    return first_difference(inst.full, inst.probes[i], _probe_result(results, instruments, k, i)), k, "", False


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
    full: Any = None  # the full run's result (features and signals); instrument 1's for a universe
    full_seconds: float = 0.0
    warmup: int = 0  # the full run's warm-up rows
    invariance: InvarianceFindings = field(default_factory=InvarianceFindings)  # judged by the look-ahead stage
    scores: Scores | ForecastScores | None = None
    fulls: list[Any] = field(default_factory=list)  # every instrument's full run, in the universe's order
    warmups: list[int] = field(default_factory=list)
    invariances: list[InvarianceFindings] = field(default_factory=list)
    universe: UniverseScores | None = None  # several instruments: each one's scores beside the portfolio's

    def signals(self) -> np.ndarray | None:
        """The validated signals of a scored trade candidate, for whoever scores further; else None."""
        return self.full.signals if self.scores is not None and self.ctx.task == "trade" else None

    def instrument_signals(self) -> tuple[np.ndarray, ...]:
        """Every instrument's validated signals once scored (a trade candidate); else ()."""
        return tuple(f.signals for f in self.fulls) if self.signals() is not None else ()

    @property
    def run_limit(self) -> float:
        """The sandbox's own limit for one run."""
        return float(self.ctx.sandbox.timeout_s)


def _instrument_reason(reason: str, n: int) -> str:
    """The runner names the full run's frames "frame i" (0-based); they are the universe's instruments."""
    match = re.match(r"frame (\d+): ", reason or "")
    if n < 2 or match is None or int(match.group(1)) >= n:
        return reason
    return _where(int(match.group(1)), n) + reason[match.end():]


def gate(t: Trial) -> Verdict:
    """The AST allow-list, before anything of the candidate runs."""
    verdict = (task_check(t.ctx.task) if t.ctx.gate is None else t.ctx.gate)(t.region)
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
    if not outcome.ok:
        return Verdict(False, f"{outcome.status}: {_instrument_reason(outcome.reason, len(t.ctx.histories))}",
                       _outcome_json(outcome))
    t.fulls = list(outcome.results[0])
    t.full, t.full_seconds = t.fulls[0], float(outcome.seconds)
    return Verdict(True, "", _outcome_json(outcome))


def lookahead(t: Trial) -> Verdict:
    """Every probe, in one sandbox run: look-ahead (truncated, perturbed futures) and invariance, on
    every instrument.

    A look-ahead leak rejects here; the invariance probes' findings are judged here too, once, and
    left on the trial for the guards stage, which ranks them among the other guards.
    """
    budget = t.budget
    assert budget is not None, "the sandbox stage starts the budget"
    seed = region_seed(t.region, t.ctx.probe_nonce) if t.ctx.probe_seed is None else t.ctx.probe_seed
    frames = [h.frame for h in t.ctx.histories]
    many = len(frames)
    instruments = []
    for k, (frame, full) in enumerate(zip(frames, t.fulls, strict=True)):
        seed_k = instrument_seed(seed, k)
        focus = t.ctx.histories[k].windows.get(t.ctx.probe_window) if t.ctx.probe_window else None
        probes = probe_frames(frame, full, seed=seed_k, focus=focus)
        # the invariance probes judge the outputs: a strategy's signals, a forecaster's probabilities
        # (calendar and level only: its expanding frequencies count rows by design)
        inv = invariance_probes(frame, seed_k, positions=t.ctx.task == "trade")
        warm = warmup_rows(full.features)
        instruments.append(_Instrument(frame, full, probes, inv, {
            "seed": seed_k, "nonce": t.ctx.probe_nonce if t.ctx.probe_seed is None else None, "warmup_rows": warm,
            "probes": [p.describe() for p in probes],
            "rows_probed": sum(len(p.frame) for p in probes), "invariance": [p.describe() for p in inv],
            "invariance_rows": sum(len(p.frame) for p in inv), "full_rows": len(frame),
            "budget_s": t.ctx.eval_timeout_s}))
    t.warmups = [int(inst.info["warmup_rows"]) for inst in instruments]
    t.warmup = t.warmups[0]
    if many == 1:
        info = instruments[0].info
    else:
        info = {"seed": seed, "nonce": t.ctx.probe_nonce if t.ctx.probe_seed is None else None,
                "instruments": [inst.info for inst in instruments],
                "rows_probed": sum(inst.info["rows_probed"] for inst in instruments),
                "invariance_rows": sum(inst.info["invariance_rows"] for inst in instruments),
                "full_rows": sum(len(f) for f in frames), "budget_s": t.ctx.eval_timeout_s}
    probe_limit = max(t.run_limit, PROBE_TIMEOUT_FACTOR * t.full_seconds)
    probe_run, fault, spent = _run(t.ctx.sandbox, t.region,
                                   [p.frame for inst in instruments for p in (*inst.probes, *inst.inv)],
                                   budget, "probes", probe_limit, t.ctx.task)
    if probe_run is None or not probe_run.ok:
        info["run"] = {"status": "runner_error", "reason": fault} if probe_run is None else _outcome_json(probe_run)
        info["spent_s"] = {k: round(v, 3) for k, v in budget.spent.items()}
        return Verdict(False, fault if spent else PROBES_FAILED + (fault or f"{probe_run.status}: {probe_run.reason}"),
                       info)
    info["run"] = _outcome_json(probe_run)
    leak, leak_at, fault, spent = _judge_probes(t.ctx.sandbox, t.region, instruments, list(probe_run.results),
                                                budget, info, t.ctx.task)
    info["spent_s"] = {k: round(v, 3) for k, v in budget.spent.items()}
    if fault:
        info["leak"] = None
        if fault == UNSEEDED and unseeded_randomness(t.region):  # name the line that draws without a seed
            info["unseeded"] = unseeded_randomness(t.region)
            return Verdict(False, f"{UNSEEDED}; unseeded: {'; '.join(info['unseeded'][:3])}", info)
        return Verdict(False, fault if spent or fault == UNSEEDED else PROBES_FAILED + fault, info)
    unseeded = unseeded_randomness(t.region)
    if leak is not None:
        info["leak"] = {"column": leak.column, "date": leak.date, "probe": leak.probe.describe(),
                        "differing_rows": leak.differing_rows}
        if many > 1:
            info["leak"]["instrument"] = leak_at + 1
        if unseeded:  # outputs that differ from run to run differ from probe to probe too: say why
            info["unseeded"] = unseeded
            return Verdict(False, unseeded_reason(unseeded), info)
        return Verdict(False, _where(leak_at, many) + leak.message(frames[leak_at].index), info)
    info["leak"] = None
    t.invariances = [judge_invariance(inst.full, list(zip(inst.inv, inst.inv_results, strict=True)), inst.frame.index,
                                      warm) for inst, warm in zip(instruments, t.warmups, strict=True)]
    t.invariance = t.invariances[0]
    if unseeded and any(f.failures for f in t.invariances):
        info["unseeded"] = unseeded
        return Verdict(False, unseeded_reason(unseeded), info)
    return Verdict(True, "", info)


def score_stage(t: Trial) -> Verdict:
    """The selection metric and every split's figures, walk-forward folds included; it never rejects.

    A forecaster is scored by proper scoring rules on its probabilities instead of a backtest.
    """
    if t.ctx.task == "forecast":
        t.scores = score_forecast_universe(t.ctx.histories, [f.forecasts for f in t.fulls], folds=t.ctx.folds)
    else:
        histories = t.ctx.histories
        universe = score_universe(histories, [f.signals for f in t.fulls], metric=t.ctx.metric, folds=t.ctx.folds,
                                  cost_bps=t.ctx.cost_bps)
        t.scores = universe.portfolio
        t.universe = universe if len(histories) > 1 else None
    return Verdict(True)


def guards(t: Trial) -> Verdict:
    """Reward hacking first (hard-coded dates, the invariance findings), then degenerate trading."""
    if t.ctx.task == "forecast":
        ok, reason, details = forecast_guards(t.region, t.invariances)
        return Verdict(ok, reason, details)
    assert isinstance(t.scores, Scores), "the score stage runs before the guards"
    histories = t.ctx.histories
    per = t.universe.instruments if t.universe is not None else (t.scores,)
    reports = [check_guards(t.region, h.frame.index, [h.windows[s] for s in ("train", "val")], scores.splits["val"],
                            full, invariance, t.ctx.limits)
               for h, scores, full, invariance in zip(histories, per, t.fulls, t.invariances, strict=True)]
    if len(reports) == 1:
        report = reports[0]
        return Verdict(report.ok, report.reason, {**report.values, "failed": [name for name, _ in report.failures]})
    failing = [k for k, r in enumerate(reports) if not r.ok]
    details = {"instruments": [{**r.values, "failed": [name for name, _ in r.failures]} for r in reports],
               "failed": [f"{instrument_label(k)}: {name}" for k in failing for name, _ in reports[k].failures]}
    if not failing:
        return Verdict(True, "", details)
    first = failing[0]
    also = (f" (guards also failed on instrument{'s' * (len(failing) > 2)} "
            f"{', '.join(str(k + 1) for k in failing[1:])})" if len(failing) > 1 else "")
    return Verdict(False, _where(first, len(reports)) + reports[first].reason + also, details)


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
            return Evaluation(False, stage.name, verdict.reason, trial.scores, timings, details, trial.signals(),
                              universe=trial.universe, instrument_signals=trial.instrument_signals())
    if ctx.task == "forecast":
        return Evaluation(True, ACCEPTED, "", trial.scores, timings, details, None, trial.full.forecasts,
                          instrument_forecasts=tuple(f.forecasts for f in trial.fulls))
    return Evaluation(True, ACCEPTED, "", trial.scores, timings, details, trial.signals(), universe=trial.universe,
                      instrument_signals=trial.instrument_signals())
