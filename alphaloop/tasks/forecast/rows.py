"""The forecast task's figures in the run's text files: results.tsv, the outcome line, learnings, the live view.

A forecast record's ``scores`` is ``ForecastScores.to_json()``: its splits hold ``rps_skill_mean`` (a
number) and per-horizon mappings (``rps_skill``, ``ece``, ``grades``, ``reward``, ``log_score``). These
helpers turn them into the scalar figures a row or a line can show, always beside climatology (skill 0).
"""

from __future__ import annotations

import numpy as np

from alphaloop.run.records import IterationRecord
from alphaloop.run.rows import describe
from alphaloop.tasks.forecast.scores import GRADES, SELECTION_METRIC
from alphaloop.tasks.trade.rows import row_start

FORECAST_METRIC = SELECTION_METRIC


def mean_of(per_horizon: dict | None) -> float | None:
    vals = [v for v in (per_horizon or {}).values() if v is not None]
    return float(np.mean(vals)) if vals else None


def scalar_view(summary: dict | None) -> dict[str, float] | None:
    """One number per figure (means over horizons), so a hypothesis about ``ece`` or ``reward`` can be graded."""
    if summary is None:
        return None
    out = {"rps_skill_mean": summary.get("rps_skill_mean"), "ece": mean_of(summary.get("ece")),
           "reward": mean_of(summary.get("reward")), "log_score": mean_of(summary.get("log_score"))}
    return {k: float(v) for k, v in out.items() if v is not None}


def grade_counts(summary: dict) -> dict[str, int]:
    """Grades summed over horizons."""
    return {g: int(sum(c.get(g, 0) for c in summary.get("grades", {}).values())) for g in GRADES}


def tsv_header() -> str:
    """results.tsv for the forecast task: every figure names its split; climatology's skill is 0."""
    return ("n\tparent\tstatus\tstage\tval_rps_skill_mean\tval_climatology_rps_skill_mean\ttrain_rps_skill_mean\t"
            "val_ece_mean\tval_reward_mean\tval_overconfident_wrong\tdescription\n")


def tsv_cells(val: dict | None, train: dict | None) -> str:
    """The figure cells of one row (empty when the candidate was never scored)."""
    if not val:
        return "\t\t\t\t\t"
    v, t = scalar_view(val) or {}, scalar_view(train) or {}

    def cell(x: float | None) -> str:
        return "" if x is None else f"{x:.6f}"

    return (f"{cell(v.get('rps_skill_mean'))}\t{0.0:.6f}\t{cell(t.get('rps_skill_mean'))}\t{cell(v.get('ece'))}\t"
            f"{cell(v.get('reward'))}\t{grade_counts(val)['overconfident_wrong']}")


def tsv_row(record: IterationRecord, baseline: str) -> str:
    """One results.tsv line of a forecast record (derived from the record alone, so replays match)."""
    cells = tsv_cells(record.split("val"), record.split("train"))
    what = describe(record, baseline=baseline).replace(chr(9), " ")
    return f"{row_start(record)}\t{cells}\t{what}\n"


def figures_note(val: dict) -> str:
    """Calibration and grades on validation, for the outcome and the iteration line."""
    v = scalar_view(val) or {}
    g = grade_counts(val)
    ece, reward = v.get("ece"), v.get("reward")
    return (f"val ECE {'n/a' if ece is None else f'{ece:.3f}'}, reward {'n/a' if reward is None else f'{reward:+.3f}'}"
            f", overconfident-wrong {g['overconfident_wrong']} of {sum(g.values())}")
