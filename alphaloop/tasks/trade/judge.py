"""The trade task's judgement of a scored candidate: its guards, and its record fields once accepted."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from alphaloop.evaluate.guards import check_guards
from alphaloop.evaluate.pipeline import Verdict
from alphaloop.evaluate.scoring import Scores
from alphaloop.evaluate.universe import positions_sha256, signals_sha256
from alphaloop.present.names import instrument_label, instrument_prefix, per_instrument

if TYPE_CHECKING:
    from alphaloop.evaluate.pipeline import Trial
    from alphaloop.evaluate.scoring import History
    from alphaloop.run.state import LoopState


def judge_guards(t: Trial) -> Verdict:
    """Reward hacking first (hard-coded dates, the invariance findings), then degenerate trading,
    on every instrument; the first failing one is named by number."""
    assert isinstance(t.scores, Scores), "the score stage runs before the guards"
    histories = t.ctx.histories
    reports = [check_guards(t.region, h.frame.index, [h.windows[s] for s in ("train", "val")], scores.splits["val"],
                            full, invariance, t.ctx.limits)
               for h, scores, full, invariance in zip(histories, t.instrument_scores, t.fulls, t.invariances,
                                                      strict=True)]
    failing = [k for k, r in enumerate(reports) if not r.ok]
    details = per_instrument([{**r.values, "failed": [name for name, _ in r.failures]} for r in reports],
                             {"failed": [f"{instrument_label(k)}: {name}" for k in failing
                                         for name, _ in reports[k].failures]})
    if not failing:
        return Verdict(True, "", details)
    first = failing[0]
    also = (f" (guards also failed on instrument{'s' * (len(failing) > 2)} "
            f"{', '.join(str(k + 1) for k in failing[1:])})" if len(failing) > 1 else "")
    return Verdict(False, instrument_prefix(first, len(reports)) + reports[first].reason + also, details)


def accepted_fields(ev: Any, stress: dict | None, histories: tuple[History, ...], state: LoopState,
                    stress_select: bool) -> dict[str, Any]:
    """An accepted trade candidate's record fields: its daily returns (the statistics' input), round
    trips, selection value (stress-adjusted with --stress-select), the positions key and the admission
    verdict of ``evidence.judge_diversity`` (duplicate, near copy, buy and hold in disguise, new)."""
    from alphaloop.evaluate.stress import stress_adjusted
    from alphaloop.run.records import StressResult
    from alphaloop.tasks.trade.evidence import judge_diversity

    fields: dict[str, Any] = {"returns": {k: np.round(v, 12).tolist() for k, v in ev.scores.returns.items()},
                              "trades": ev.scores.trips()}
    if ev.universe is not None:  # several instruments: each one's returns (one instrument's are ``returns``)
        fields["instrument_returns"] = [np.round(s.returns["val"], 12).tolist() for s in ev.universe.instruments]
    value = ev.scores.selection
    if stress_select:
        fields["stress"] = StressResult.from_json(stress, "stress of the candidate")
        value = stress_adjusted(value, stress)
    fields["selection"] = value
    fields["signals_sha256"] = signals_sha256(ev.outputs)
    key = positions_sha256(histories, ev.outputs)
    return {**fields, **judge_diversity(key, ev, histories, value, state)}


def scored_fields(ev: Any, histories: tuple[History, ...]) -> dict[str, Any]:
    """Any scored candidate's positions key, and on several instruments each one's figures."""
    fields: dict[str, Any] = {"positions_sha256": positions_sha256(histories, ev.outputs)}
    if ev.universe is not None:  # several instruments: each one's figures beside the portfolio's
        fields["universe"] = ev.universe.to_json()
    return fields
