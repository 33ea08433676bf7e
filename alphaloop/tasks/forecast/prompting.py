"""Values for the forecast task's prompts (``prompts/forecast_program.md`` and
``prompts/forecast_prompt_template.md``): the run's cut points, the grade thresholds, and the parent's
and latest candidate's per-horizon figures beside climatology. Only validation and train figures."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from alphaloop.evaluate.scoring import fold_windows
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
from alphaloop.tasks.forecast.text import below_climatology, fnum

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


def forecast_figures(parent: dict | None, latest: dict | None, latest_label: str = "latest",
                     parent_scores: dict | None = None, lengths: str = "") -> str:
    """The parent's and latest candidate's per-horizon skill, log score, ECE, grades and reward on validation;
    with ``parent_scores`` (the parent's record scores) its train and fold figures and its evidence too.
    ``latest`` None with ``latest_label`` "" means the latest candidate is the parent: no row of its own.
    ``lengths``: the splits' lengths in bars and years (``lengths_line``), first."""
    lines = [*([lengths, ""] if lengths else []),
             "| forecaster | horizon | rps_skill | log_score | ece | grades | reward |",
             "|---|---|---|---|---|---|---|",
             "| climatology | all | +0.0000 | about 1.0986 | - | rm (no bucket favoured) | +0.000 |"]
    lines += forecast_table("parent", parent) + (forecast_table(latest_label, latest) if latest_label else [])
    if parent_scores:
        lines += ["", *evidence_lines(parent_scores)]
    lines.append("grades: cc calibrated_correct, rm reasonable_miss, ow overconfident_wrong, o other "
                 "(validation split)")
    return "\n".join(lines)


def _calibration_words(cal: dict) -> str:
    """Mean forecast against realised frequency per bucket, with the side of the gap in words."""
    parts = []
    for bucket, c in (cal or {}).items():
        f, r = c.get("forecast"), c.get("realised")
        if f is None or r is None:
            continue
        side = "over-forecast" if f > r + 0.01 else "under-forecast" if f < r - 0.01 else "about right"
        parts.append(f"{bucket} {f:.2f} vs {r:.2f} ({side})")
    return "; ".join(parts) or "-"


def _days_words(days: list[dict]) -> str:
    """Each day by its bar in the validation split, never its date (records before bars were kept: no place)."""
    return ", ".join(f"{'bar ' + format(d['bar'], ',') + ' ' if 'bar' in d else ''}{d['bucket']} "
                     f"(p {'/'.join(f'{p:.2f}' for p in d['probs'])}, RPS {d['rps']:.3f})" for d in days) or "-"


def lengths_line(bars: dict[str, int], periods_per_year: float, folds: int = 0) -> str:
    """Each split's length in bars and in years of bars, and the folds of train's, never a calendar year: a
    model's memory of what markets did in those years would be look-ahead (the trade prompt says the same)."""
    def years(n: float) -> str:
        return f"{n:,.0f} bars ({n / periods_per_year:.1f} years of {periods_per_year:g} bars)"

    parts = [f"{'validation' if name == 'val' else name} {years(n)}" for name, n in bars.items()]
    windows = fold_windows(bars.get("train", 0), folds)
    if windows:
        size = windows[0].stop - windows[0].start
        parts.append(f"{len(windows)} walk-forward folds of train of about {years(size)} each, after "
                     f"{windows[0].start:,} bars of warm-up")
    return "Split lengths (dates are withheld): " + "; ".join(parts) + "."


def evidence_lines(scores: dict) -> list[str]:
    """The parent's train and fold figures, its skill against the rolling climatology, and per horizon on
    validation: direction accuracy over the called days, the most probable bucket against the realised
    distribution, calibration per bucket (mean forecast vs realised, which way it is off), best and worst days."""
    splits = scores.get("splits") or {}
    val, train = splits.get("val") or {}, splits.get("train") or {}
    spread = scores.get("fold_spread") or {}
    folds = (f"min {fnum(spread.get('min'))}, median {fnum(spread.get('median'))}, max {fnum(spread.get('max'))}"
             if spread else "-")
    train_skill = train.get("rps_skill_mean")
    warn = " (below climatology on train: its validation skill may be luck)" if below_climatology(train_skill) else ""
    lines = [f"Parent, train split: rps_skill_mean {fnum(train_skill)}{warn}; walk-forward folds of train "
             f"(sub-periods, not re-fitted): {folds}; validation against the rolling climatology (last known "
             f"outcomes, a second benchmark): {fnum(val.get('rps_skill_rolling_mean'))}",
             "Parent, validation split, per horizon:"]
    for h, e in ((scores.get("evidence") or {}).get("val") or {}).items():
        n = e.get("direction_days")
        acc = e.get("direction_accuracy")
        direction = (f"no calls (p(up) and p(down) never {CALL_MARGIN:g} apart)" if not n
                     else f"{acc:.0%} of {n} called days" if acc is not None else "-")
        mp = ", ".join(f"{k} {v}" for k, v in (e.get("most_probable") or {}).items())
        real = ", ".join(f"{k} {v}" for k, v in (e.get("realised") or {}).items())
        lines.append(f"- h={h}: direction {direction}; most probable bucket {mp} (realised {real}); calibration "
                     f"(mean forecast vs realised) {_calibration_words(e.get('calibration'))}; "
                     "by bar from validation's start, best days "
                     f"{_days_words(e.get('best_days') or [])}; worst days {_days_words(e.get('worst_days') or [])}")
    return lines
