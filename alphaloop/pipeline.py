"""The one path every candidate takes: gate -> sandbox -> look-ahead -> score -> guards.

``harness.py check`` and the loop both call ``evaluate``, so a candidate is judged the same way
wherever it comes from. It never raises on a bad candidate: every failure becomes an
``Evaluation`` naming the stage and the reason, with what each stage saw in ``details``.
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
from alphaloop.guards import GuardLimits, check_guards, date_shifted_frame
from alphaloop.lookahead import Leak, Probe, first_difference, probe_frames, warmup_rows
from alphaloop.scoring import DEFAULT_FOLDS, DEFAULT_METRIC, History, Scores, score
from alphaloop.store import finite

if TYPE_CHECKING:
    from sandbox.runner import Sandbox

STAGES = ("gate", "sandbox", "lookahead", "guards", "ok")
LOG_CHARS = 2000  # the candidate's output kept in the record: enough to debug, bounded
PROBE_TIMEOUT_FACTOR = 6.0  # the probe run holds about four times the full run's rows
PROBES_FAILED = "look-ahead probes could not run (the candidate must also work on a truncated or altered history): "


@dataclass
class EvalContext:
    """What an evaluation needs besides the region; train+validation only, never the test split."""

    history: History
    sandbox: "Sandbox"
    metric: str = DEFAULT_METRIC
    folds: int = DEFAULT_FOLDS
    cost_bps: float = DEFAULT_COST_BPS
    limits: GuardLimits = field(default_factory=GuardLimits)
    probe_seed: int | None = None  # None: derived from the region, so its author cannot aim at the cuts
    gate: Callable[[str], Any] | None = None  # None: sandbox.gate.check


@dataclass
class Evaluation:
    """The verdict on one candidate and everything needed to explain it."""

    accepted: bool
    stage: str  # "gate" | "sandbox" | "lookahead" | "guards" | "ok"
    reason: str  # "" when accepted
    scores: Scores | None  # present whenever the candidate ran and was scored
    timings: dict[str, float]
    details: dict
    signals: np.ndarray | None = field(default=None, repr=False)  # validated, for whoever scores further

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


def _run(box: "Sandbox", region: str, frames: list, timeout_s: float | None = None) -> tuple[Any, str]:
    """Run in the sandbox; a failure of the runner itself becomes a reason, never an exception."""
    try:
        return box.run(region, frames, timeout_s=timeout_s), ""
    except Exception as exc:  # the loop must survive a runner fault and record it
        return None, f"the sandbox runner failed: {type(exc).__name__}: {exc}"


def _confirm_alone(box: "Sandbox", region: str, full: Any, probes: list[Probe], shifted: pd.DataFrame,
                   results: list[Any], timeout: float, info: dict) -> tuple[Leak | None, Any, str]:
    """Rerun alone any probe (and the date-shifted frame) whose result differs from the full run.

    One run shares a process between its frames, so state a candidate keeps in globals carries
    from one frame to the next; only a difference that survives a run of that frame on its own,
    like the full run, counts. Clean candidates never pay for this. Returns the confirmed leak,
    the date-shifted result to judge, and a fault message if a lone run could not complete.
    """
    diffs = [first_difference(full, p, r) for p, r in zip(probes, results)]
    suspects = sorted((d.row, d.probe.cut, i) for i, d in enumerate(diffs) if d is not None)
    rerun: list[int] = []
    leak = None
    for _, _, i in suspects:
        alone, fault = _run(box, region, [probes[i].frame], timeout_s=timeout)
        rerun.append(i)
        if alone is None or not alone.ok:
            return None, None, fault or f"{alone.status}: {alone.reason}"
        leak = first_difference(full, probes[i], alone.results[0])
        if leak is not None:
            break
    shifted_result = results[len(probes)]
    if not np.array_equal(np.asarray(full.signals), np.asarray(shifted_result.signals)) and leak is None:
        alone, fault = _run(box, region, [shifted], timeout_s=timeout)
        rerun.append(len(probes))
        if alone is None or not alone.ok:
            return None, None, fault or f"{alone.status}: {alone.reason}"
        shifted_result = alone.results[0]
    info["rerun_alone"] = rerun
    return leak, shifted_result, ""


def evaluate(region: str, ctx: EvalContext) -> Evaluation:
    """Judge one candidate region; see the module docstring for the order of stages."""
    timings: dict[str, float] = {}
    details: dict = {"region_sha256": hashlib.sha256(region.encode("utf-8")).hexdigest()}

    def reject(stage: str, reason: str, scores: Scores | None = None, signals: np.ndarray | None = None) -> Evaluation:
        return Evaluation(False, stage, reason, scores, timings, details, signals)

    with _timed(timings, "gate"):
        if ctx.gate is None:
            from sandbox.gate import check as gate
        else:
            gate = ctx.gate
        verdict = gate(region)
    details["gate"] = {"ok": bool(verdict.ok), "rule": verdict.rule, "line": verdict.line, "reason": verdict.reason}
    if not verdict.ok:
        return reject("gate", verdict.reason or f"refused by the gate (rule: {verdict.rule})")

    frame = ctx.history.frame
    with _timed(timings, "sandbox"):
        outcome, fault = _run(ctx.sandbox, region, [frame])
    if outcome is None:
        details["sandbox"] = {"status": "runner_error", "reason": fault}
        return reject("sandbox", fault)
    details["sandbox"] = _outcome_json(outcome)
    if not outcome.ok:
        return reject("sandbox", f"{outcome.status}: {outcome.reason}")
    full = outcome.results[0]

    with _timed(timings, "lookahead"):
        seed = region_seed(region) if ctx.probe_seed is None else ctx.probe_seed
        probes = probe_frames(frame, full, seed=seed)
        shifted = date_shifted_frame(frame)
        timeout = max(float(getattr(ctx.sandbox, "timeout_s", 30.0)), PROBE_TIMEOUT_FACTOR * float(outcome.seconds))
        probe_run, fault = _run(ctx.sandbox, region, [p.frame for p in probes] + [shifted], timeout_s=timeout)
        info: dict = {"seed": seed, "warmup_rows": warmup_rows(full.features),
                      "probes": [p.describe() for p in probes], "rows_probed": sum(len(p.frame) for p in probes),
                      "date_shift_rows": len(shifted), "full_rows": len(frame)}
        details["lookahead"] = info
        if probe_run is None or not probe_run.ok:
            info["run"] = {"status": "runner_error", "reason": fault} if probe_run is None else _outcome_json(probe_run)
            return reject("lookahead", PROBES_FAILED + (fault or f"{probe_run.status}: {probe_run.reason}"))
        info["run"] = _outcome_json(probe_run)
        results = list(probe_run.results)
        leak, confirmed_shift, fault = _confirm_alone(ctx.sandbox, region, full, probes, shifted, results,
                                                      timeout, info)
        if fault:
            return reject("lookahead", PROBES_FAILED + fault)
    if leak is not None:
        info["leak"] = {"column": leak.column, "date": leak.date, "probe": leak.probe.describe(),
                        "differing_rows": leak.differing_rows}
        return reject("lookahead", leak.message(frame.index))
    info["leak"] = None

    with _timed(timings, "score"):
        scores = score(ctx.history, full.signals, metric=ctx.metric, folds=ctx.folds, cost_bps=ctx.cost_bps)
    with _timed(timings, "guards"):
        report = check_guards(region, frame.index, [ctx.history.windows[s] for s in ("train", "val")],
                              scores.splits["val"], full, confirmed_shift, ctx.limits)
    details["guards"] = {**report.values, "failed": [name for name, _ in report.failures]}
    if not report.ok:
        return reject("guards", report.reason, scores, full.signals)
    return Evaluation(True, "ok", "", scores, timings, details, full.signals)
