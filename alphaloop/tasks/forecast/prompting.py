"""Values for the forecast task's prompts (``prompts/forecast_program.md`` and
``prompts/forecast_prompt_template.md``): the run's cut points, the grade thresholds, and the parent's
and latest candidate's per-horizon figures beside climatology. Only validation and train figures."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from alphaloop.present.names import by_instrument
from alphaloop.tasks.forecast.buckets import BucketScheme, cuts_text
from alphaloop.tasks.forecast.scores import (
    CALL_MARGIN,
    CORRECT_MAX_PROB,
    GRADE_REWARD,
    GRADES,
    MISS_MIN_PROB,
    WRONG_CONFIDENT_PROB,
    WRONG_MAX_PROB,
)
from alphaloop.tasks.forecast.text import fnum

PROMPTS = Path(__file__).resolve().parents[3] / "prompts"
FORECAST_PROGRAM_PATH = PROMPTS / "forecast_program.md"
FORECAST_TEMPLATE_PATH = PROMPTS / "forecast_prompt_template.md"
GRADE_SHORT = {"calibrated_correct": "cc", "reasonable_miss": "rm", "overconfident_wrong": "ow", "other": "o"}


def program_values(scheme: BucketScheme, schemes: Sequence[BucketScheme] = ()) -> dict[str, str]:
    """Placeholders of the forecast program: cut points (train split) and grade thresholds.

    ``schemes``: a universe's instruments' own buckets, named by number only (never a ticker)."""
    cuts = by_instrument([cuts_text(s) for s in (schemes or (scheme,))], "",
                         "each instrument's own train terciles, scores pooled over all instruments' days: ")
    return {"cut_points": cuts + " (train split)", "correct_max_prob": f"{CORRECT_MAX_PROB:g}",
            "call_margin": f"{CALL_MARGIN:g}",
            "miss_min_prob": f"{MISS_MIN_PROB:g}", "wrong_max_prob": f"{WRONG_MAX_PROB:g}",
            "wrong_confident_prob": f"{WRONG_CONFIDENT_PROB:g}", "other_reward": f"{GRADE_REWARD['other']:+g}"}


def forecast_table(label: str, summary: dict | None) -> list[str]:
    """Markdown rows, one per horizon, of one forecaster's validation summary (``ForecastScores.splits['val']``)."""
    if summary is None:
        return [f"| {label} | - | not scored | | | | |"]
    rows = []
    for h, skill in summary["rps_skill"].items():
        g = summary["grades"][h]
        grades = " ".join(f"{GRADE_SHORT[k]} {g[k]}" for k in GRADES)
        rows.append(f"| {label} | {h} | {fnum(skill)} | {fnum(summary['log_score'][h], 4, False)} | "
                    f"{fnum(summary['ece'][h], 4, False)} | {grades} | {fnum(summary['reward'][h], 3)} |")
    return rows


def forecast_figures(parent: dict | None, latest: dict | None, latest_label: str = "latest") -> str:
    """The parent's and latest candidate's per-horizon skill, log score, ECE, grades and reward on validation."""
    lines = ["| forecaster | horizon | rps_skill | log_score | ece | grades | reward |",
             "|---|---|---|---|---|---|---|",
             "| climatology | all | +0.0000 | about 1.0986 | - | rm (no bucket favoured) | +0.000 |"]
    lines += forecast_table("parent", parent) + forecast_table(latest_label, latest)
    lines.append("grades: cc calibrated_correct, rm reasonable_miss, ow overconfident_wrong, o other "
                 "(validation split)")
    return "\n".join(lines)
