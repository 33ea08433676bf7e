"""Forecast figures in words and tables for the terminal (``check``, ``final``, the loop's lines).

Every figure names its split, and climatology (skill 0 by construction) stands beside it, the way buy
and hold stands beside every trade figure.
"""

from __future__ import annotations

from rich.table import Table

from alphaloop.present.names import by_instrument
from alphaloop.present.text import fmt
from alphaloop.tasks.forecast.buckets import cuts_text
from alphaloop.tasks.forecast.scores import CALL_MARGIN, GRADES, ROLLING_BARS, SELECTION_METRIC, ForecastScores

NOT_AVAILABLE = "n/a"  # how a missing forecast figure reads in the forecast tables, lines and prompts


def fnum(value: float | None, digits: int = 4, sign: bool = True) -> str:
    """A forecast figure through the one number formatter (``text.fmt``); a missing one reads ``n/a``."""
    return fmt(value, digits, sign=sign, missing=NOT_AVAILABLE)


def grades_slash(counts: dict[str, int]) -> str:
    return "/".join(str(counts.get(g, 0)) for g in GRADES)


def forecast_table(scores: ForecastScores, split: str, title: str) -> Table:
    """One row per horizon of one split: skill, RPS beside climatology's, log score, ECE, grades, reward.

    Each column is at least as wide as its widest figure, so no figure is ever cut ("+0.04…"): on a
    narrow terminal or a pipe (80 columns) the headers fold and the table grows wider instead."""
    s, det = scores.splits[split], scores.details.get(split, {})
    rolling = s.get("rps_skill_rolling") or {}
    rows = []
    for h, skill in s["rps_skill"].items():
        d = det.get(h, {})
        rows.append((str(h), fnum(skill), fnum(rolling.get(h)), fnum(d.get("rps"), 4, False),
                     fnum(d.get("rps_climatology"), 4, False), fnum(s["ece"][h], 3, False), direction_text(d),
                     grades_slash(s["grades"][h]), fnum(s["reward"][h], 2)))
    rows.append(("all", fnum(s[SELECTION_METRIC]), fnum(s.get("rps_skill_rolling_mean")), "", "", "", "", "", ""))
    table = Table(title=title)
    for i, col in enumerate(("h", "skill", "vs roll.", "RPS", "clim.", "ECE", "dir.", "cc/rm/ow/o", "reward")):
        table.add_column(col, justify="right", min_width=max(len(row[i]) for row in rows))
    table.caption = (f"skill = 1 - RPS / RPS of climatology (clim.: train frequencies); vs roll. = skill against "
                     f"the rolling climatology (the last {ROLLING_BARS} known outcomes); dir. = direction accuracy "
                     f"of the days called (p(up) and p(down) {CALL_MARGIN:g} apart or more); grades "
                     "calibrated_correct / reasonable_miss / overconfident_wrong / other; log scores in the JSON")
    for row in rows:
        table.add_row(*row)
    return table


def direction_text(details: dict) -> str:
    """Direction accuracy over the days called, with how many; "no calls" when the forecaster made none."""
    acc, days = details.get("direction_accuracy"), details.get("direction_days")
    if acc is None:
        return "no calls" if days == 0 else NOT_AVAILABLE
    return f"{fmt(acc, 0, pct=True)} of {days}"


def below_climatology(skill: float | None) -> bool:
    """Below climatology by what the 4 printed decimals show: the climatology itself reads -0.0000, not below."""
    return skill is not None and round(skill, 4) < 0


def selection_line(scores: ForecastScores) -> str:
    """Validation's mean RPS skill beside climatology's 0 and the rolling climatology, with train (flagged when
    negative) and the walk-forward spread."""
    val = scores.splits["val"]
    line = (f"selection: validation {SELECTION_METRIC} {fnum(val[SELECTION_METRIC])} (climatology +0.0000; "
            f"against the rolling {ROLLING_BARS}-bar climatology {fnum(val.get('rps_skill_rolling_mean'))})")
    if "train" in scores.splits:
        train = scores.splits["train"][SELECTION_METRIC]
        line += f"; train {fnum(train)}"
        if below_climatology(train):
            line += " (WARNING: below climatology on train: the validation skill is probably luck)"
    spread = scores.fold_spread()
    if spread:
        line += (f"  |  walk-forward {len(scores.folds)} folds of train (sub-periods, not re-fitted): "
                 f"min {spread['min']:+.4f}, median {spread['median']:+.4f}, max {spread['max']:+.4f}")
    return line


def cut_points_line(scores: ForecastScores) -> str:
    """The buckets' cut points (train split's terciles), stated so every figure can be read."""
    return by_instrument([cuts_text(s) for s in scores.schemes or (scores.scheme,)],
                         "buckets (terciles of the train split's h-bar returns): ",
                         "buckets (terciles of each instrument's own train h-bar returns; scores pool over all "
                         "instruments' days): ")
