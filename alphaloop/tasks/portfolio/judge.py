"""The portfolio task's judgement inside the pipeline: the full run's weights checked against the
contract, the look-ahead probes on the whole panel, scoring, the guards, and an accepted candidate's
record fields (returns, the weights key and the admission verdict on validation weights and returns)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from alphaloop.evaluate.guards import NO_FINDINGS, unseeded_randomness, unseeded_reason
from alphaloop.evaluate.pipeline import PROBE_TIMEOUT_FACTOR, PROBES_FAILED, Verdict, _outcome_json, _run, region_seed
from alphaloop.tasks.portfolio.contract import Calendar, WeightsError, validate_weights
from alphaloop.tasks.portfolio.evidence import weights_key
from alphaloop.tasks.portfolio.guards import portfolio_guards
from alphaloop.tasks.portfolio.invariance import judge_panel
from alphaloop.tasks.portfolio.lookahead import panel_leak, panel_probes
from alphaloop.tasks.portfolio.outputs import PanelResult
from alphaloop.tasks.portfolio.scoring import Panel, PortfolioScores, score_portfolio
from alphaloop.tasks.trade.evidence import admission

if TYPE_CHECKING:
    from alphaloop.evaluate.pipeline import Trial
    from alphaloop.evaluate.scoring import History
    from alphaloop.run.state import LoopState


def max_gross(t: Trial) -> float:
    return float(t.ctx.max_gross)


def full_result(t: Trial) -> PanelResult:
    result = t.fulls[0]
    assert isinstance(result, PanelResult), "the sandbox stage leaves the panel's result"
    return result


def check_weights(t: Trial) -> Verdict:
    """The contract on the full run's weights (the sandbox stage asks): the first breach names date,
    instrument and value; valid weights replace the raw ones on the result (0 for missing, NaN for no bar)."""
    frames = tuple(h.frame for h in t.ctx.histories)
    full = full_result(t)
    try:
        full.weights = validate_weights(full.weights, Calendar.of(frames), max_gross(t))
    except WeightsError as exc:
        value = exc.value if np.isfinite(exc.value) else str(exc.value)
        return Verdict(False, f"invalid weights: {exc}", {"date": exc.date, "instrument": exc.instrument,
                                                          "value": value, "max_gross": max_gross(t)})
    return Verdict(True, "", {"max_gross": max_gross(t)})


def _failed_run(run: Any, fault: str, spent: bool, budget: Any, info: dict[str, Any], key: str) -> Verdict | None:
    """After a probe run: the budget spent so far into ``info``, and the rejection when the run did not complete
    (its outcome under ``info[key]``; a spent budget is its own reason, else the probes could not run), or None."""
    info["spent_s"] = {k: round(v, 3) for k, v in budget.spent.items()}
    if run is not None and run.ok:
        return None
    info[key] = {"status": "runner_error", "reason": fault} if run is None else _outcome_json(run)
    return Verdict(False, fault if spent else PROBES_FAILED + (fault or f"{run.status}: {run.reason}"), info)


def lookahead(t: Trial) -> Verdict:
    """Every panel probe in one sandbox run (each probe its own clean child): a weight or feature at or
    before the cut that moves is a leak."""
    budget = t.budget
    assert budget is not None, "the sandbox stage starts the budget"
    seed = region_seed(t.region, t.ctx.probe_nonce) if t.ctx.probe_seed is None else t.ctx.probe_seed
    frames = tuple(h.frame for h in t.ctx.histories)
    windows = Panel.of(t.ctx.histories).windows
    probes = panel_probes(frames, seed, windows.get(t.ctx.probe_window) if t.ctx.probe_window else None,
                          windows.get("val"))
    info: dict[str, Any] = {"seed": seed, "nonce": t.ctx.probe_nonce if t.ctx.probe_seed is None else None,
                            "max_gross": max_gross(t),
                            "probes": [f"{p.kind} after {p.date.date()}" for p in probes],
                            "rows_probed": sum(len(f) for p in probes for f in p.frames),
                            "full_rows": sum(len(f) for f in frames), "budget_s": t.ctx.eval_timeout_s}
    t.warmups = [0] * len(frames)
    limit = max(t.run_limit, PROBE_TIMEOUT_FACTOR * t.full_seconds)
    run, fault, spent = _run(t.ctx.sandbox, t.region, [p.frames for p in probes], budget, "probes", limit, t.ctx.task)
    failed = _failed_run(run, fault, spent, budget, info, "run")
    if failed is not None:
        return failed
    info["run"] = _outcome_json(run)
    full = full_result(t).arrays
    for probe, result in zip(probes, run.results, strict=True):
        leak = panel_leak(frames, full, probe, result[0].arrays)
        if leak:
            info["leak"] = {"probe": f"{probe.kind} after {probe.date.date()}", "reason": leak}
            return Verdict(False, leak, info)
    info["leak"] = None
    return invariance(t, frames, seed, info, limit)


def invariance(t: Trial, frames: tuple, seed: int, info: dict[str, Any], limit: float) -> Verdict:
    """The invariance probes of the whole panel (the task's ``invariance_probes``: other years, another price
    level, history prepended, first dates removed) in one more sandbox run, judged on allocate's weights;
    the findings wait on the trial for the guards stage, as the trade task's do."""
    budget = t.budget
    assert budget is not None, "the sandbox stage starts the budget"
    probes = t.ctx.task.invariance_probes(frames, seed)
    info["invariance"] = [p.describe() for p in probes]
    info["invariance_rows"] = sum(len(f) for p in probes for f in p.frames)
    if not probes:
        return Verdict(True, "", info)
    run, fault, spent = _run(t.ctx.sandbox, t.region, [p.frames for p in probes], budget, "invariance", limit,
                             t.ctx.task)
    failed = _failed_run(run, fault, spent, budget, info, "invariance_run")
    if failed is not None:
        return failed
    full = full_result(t)
    found = judge_panel(frames, full.arrays, full.features, probes, [r[0].arrays for r in run.results])
    t.invariances = [found]
    unseeded = unseeded_randomness(t.region)
    if unseeded and found.failures:
        info["unseeded"] = unseeded
        return Verdict(False, unseeded_reason(unseeded), info)
    return Verdict(True, "", info)


def score(t: Trial) -> None:
    histories = t.ctx.histories
    splits = tuple(s for s in ("train", "val", "test") if s in histories[0].windows)
    t.scores = score_portfolio(histories, full_result(t).weights, metric=t.ctx.metric, folds=t.ctx.folds,
                               cost_bps=t.ctx.cost_bps, splits=splits, max_gross=max_gross(t))


def guards(t: Trial) -> Verdict:
    scores: PortfolioScores = t.scores
    panel = Panel.of(t.ctx.histories)
    a, b = panel.windows["val"]
    report = portfolio_guards(t.region, scores.splits["val"], full_result(t).weights[a:b],
                              panel.calendar.present[a:b], t.ctx.histories, full_result(t).features,
                              invariance=t.invariances[0] if t.invariances else NO_FINDINGS)
    return Verdict(report.ok, report.reason, {**report.values, "failed": [name for name, _ in report.failures]})


def accepted_fields(ev: Any, histories: tuple[History, ...], state: LoopState) -> dict[str, Any]:
    """Returns per split (the statistics' input), the weights key, and the admission verdict: a duplicate
    holds the same validation weights as a member, a near copy's validation returns correlate above the
    threshold, buy and hold in disguise correlates with the equal-weight buy and hold at high gross."""
    scores: PortfolioScores = ev.scores
    return {"returns": {k: np.round(v, 12).tolist() for k, v in scores.returns.items()}, "selection": scores.selection,
            **admission(weights_key(scores.weights["val"]), scores.returns["val"], scores.selection, scores.bh["val"],
                        float(scores.splits["val"]["gross_exposure"]), state)}
