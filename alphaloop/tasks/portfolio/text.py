"""The portfolio task's words and tables: one split's figures beside both benchmarks (the equal-weight
buy and hold and cash), the prompt's table over train, folds and validation, and each instrument's
contribution by number (never by name: these lines feed prompts)."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

from alphaloop.evaluate.backtest import TRADING_DAYS
from alphaloop.present.text import clip_middle
from alphaloop.propose.prompting import FIGURES_LIMIT, UNCHANGED_TEXT, evidence_section

SPLIT_NAMES = {"train": "train", "val": "validation", "test": "test"}
MAX_LISTED = 12  # instruments listed one by one in a contributions line; beyond, the largest and smallest


def _num(value: object, digits: int = 3, sign: bool = False) -> str:
    if not isinstance(value, int | float) or not math.isfinite(value):
        return "-"
    return f"{value:+.{digits}f}" if sign else f"{value:.{digits}f}"


def _pct(value: object) -> str:
    if not isinstance(value, int | float) or not math.isfinite(value):
        return "-"
    return f"{value:+.1%}"


def split_line(name: str, m: Mapping[str, float]) -> str:
    """One split's headline figures, each beside the equal-weight buy and hold's and cash's."""
    return (f"{SPLIT_NAMES.get(name, name)} split: Sharpe {_num(m.get('sharpe'))} (equal-weight buy and hold "
            f"{_num(m.get('bh_sharpe'))}, cash 0), return {_pct(m.get('total_return'))} (buy and hold "
            f"{_pct(m.get('bh_total_return'))}, cash +0.0%), max drawdown {_pct(m.get('max_drawdown'))} (buy and "
            f"hold {_pct(m.get('bh_max_drawdown'))}, cash 0); gross {_num(m.get('gross_exposure'), 2)}, net "
            f"{_num(m.get('net_exposure'), 2, True)}, turnover {_num(m.get('turnover'), 1)}x a year, "
            f"long {_num(m.get('long_count'), 1)} / short {_num(m.get('short_count'), 1)} instruments, beta "
            f"{_num(m.get('beta'), 2)}, correlation {_num(m.get('correlation'), 2)}, information ratio "
            f"{_num(m.get('information_ratio'), 2)}")


def contributions_line(contributions: Sequence[float] | None, split: str = "val") -> str:
    """Each instrument's summed daily contribution to the split's return, by number."""
    if not contributions:
        return ""
    items = [(k + 1, float(c)) for k, c in enumerate(contributions)]
    if len(items) > MAX_LISTED:
        ranked = sorted(items, key=lambda kv: kv[1])
        half = MAX_LISTED // 2
        shown = ranked[-half:][::-1] + ranked[:half][::-1]
        body = ", ".join(f"{k} {_pct(c)}" for k, c in shown[:half]) + " ... " + \
            ", ".join(f"{k} {_pct(c)}" for k, c in shown[half:])
    else:
        body = ", ".join(f"{k} {_pct(c)}" for k, c in items)
    return f"contributions to the {SPLIT_NAMES.get(split, split)} return by instrument: {body}"


TABLE_HEAD = ("| window | bars | years | sharpe | return | max_dd | gross | net | turnover | long | short | beta | "
              "corr | IR | EW B&H sharpe | EW B&H return | EW B&H max_dd |")
def _row(label: str, m: Mapping[str, float], periods_per_year: float) -> str:
    bars = m.get("bars")
    years = bars / periods_per_year if isinstance(bars, int | float) and periods_per_year > 0 else None
    return (f"| {label} | {_num(bars, 0)} | {_num(years, 1)} | {_num(m.get('sharpe'))} | "
            f"{_pct(m.get('total_return'))} | {_pct(m.get('max_drawdown'))} | "
            f"{_num(m.get('gross_exposure'), 2)} | {_num(m.get('net_exposure'), 2, True)} | "
            f"{_num(m.get('turnover'), 1)} | {_num(m.get('long_count'), 1)} | {_num(m.get('short_count'), 1)} | "
            f"{_num(m.get('beta'), 2)} | {_num(m.get('correlation'), 2)} | {_num(m.get('information_ratio'), 2)} | "
            f"{_num(m.get('bh_sharpe'))} | {_pct(m.get('bh_total_return'))} | {_pct(m.get('bh_max_drawdown'))} |")


def figures_table(title: str, scores: Mapping | None, periods_per_year: float = TRADING_DAYS) -> str:
    """A candidate's table over train, its folds and validation (``PortfolioScores.to_json()``), each window's
    length in bars and in years of bars (never its calendar dates: a model's memory of what markets did then
    would be look-ahead), and its validation contributions; cash is 0 on every figure and is said once."""
    if not scores or not scores.get("splits"):
        return ""
    splits = scores["splits"]
    lines = [f"**{title}**", TABLE_HEAD, "|---" * 17 + "|"]
    if "train" in splits:
        lines.append(_row("train", splits["train"], periods_per_year))
    for k, f in enumerate(scores.get("folds") or []):
        lines.append(_row(f"train fold {k + 1}", f, periods_per_year))
    if "val" in splits:
        lines.append(_row("validation", splits["val"], periods_per_year))
    lines.append("cash: 0 on every figure. turnover: summed absolute weight changes a year. years: bars / "
                 f"{periods_per_year:g} bars a year.")
    contrib = contributions_line((scores.get("contributions") or {}).get("val"))
    if contrib:
        lines.append(contrib)
    return clip_middle("\n".join(lines), FIGURES_LIMIT)


def figures_section(parent: Mapping | None, latest: Mapping | None, latest_label: str = "Latest candidate",
                    reason: str | None = None, unchanged: bool = False, guards: str = "",
                    periods_per_year: float = TRADING_DAYS) -> str:
    """The prompt's figures section: the parent's and the latest candidate's tables beside the equal-weight buy
    and hold and cash, why this parent, whether the latest change moved any weight, and the guards."""
    shown = figures_table(latest_label, latest, periods_per_year)
    if not shown and latest_label != "Latest candidate":  # rejected before scoring: its heading still says so
        shown = f"**{latest_label}**"
    return evidence_section("beside the equal-weight buy and hold and cash", reason,
                            (figures_table("Parent", parent, periods_per_year), shown),
                            UNCHANGED_TEXT.format(one="weight", many="weights") if unchanged else "", guards)
