"""The portfolio task's words and tables: one split's figures beside both benchmarks (the equal-weight
buy and hold and cash), the prompt's table over train, folds and validation, and each instrument's
contribution by number (never by name: these lines feed prompts)."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

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


TABLE_HEAD = ("| window | sharpe | return | max_dd | gross | net | turnover | long | short | beta | corr | IR | "
              "EW B&H sharpe | EW B&H return | EW B&H max_dd |")


def _row(label: str, m: Mapping[str, float]) -> str:
    return (f"| {label} | {_num(m.get('sharpe'))} | {_pct(m.get('total_return'))} | {_pct(m.get('max_drawdown'))} | "
            f"{_num(m.get('gross_exposure'), 2)} | {_num(m.get('net_exposure'), 2, True)} | "
            f"{_num(m.get('turnover'), 1)} | {_num(m.get('long_count'), 1)} | {_num(m.get('short_count'), 1)} | "
            f"{_num(m.get('beta'), 2)} | {_num(m.get('correlation'), 2)} | {_num(m.get('information_ratio'), 2)} | "
            f"{_num(m.get('bh_sharpe'))} | {_pct(m.get('bh_total_return'))} | {_pct(m.get('bh_max_drawdown'))} |")


def figures_table(title: str, scores: Mapping | None) -> str:
    """A candidate's table over train, its folds and validation (``PortfolioScores.to_json()``), and its
    validation contributions; cash is 0 on every figure and is said once."""
    if not scores or not scores.get("splits"):
        return ""
    splits = scores["splits"]
    lines = [f"**{title}**", TABLE_HEAD, "|---" * 15 + "|"]
    if "train" in splits:
        lines.append(_row("train", splits["train"]))
    for k, f in enumerate(scores.get("folds") or []):
        lines.append(_row(f"fold {k + 1} ({f.get('start', '')[:7]} to {f.get('end', '')[:7]})", f))
    if "val" in splits:
        lines.append(_row("validation", splits["val"]))
    lines.append("cash: 0 on every figure. turnover: summed absolute weight changes a year.")
    contrib = contributions_line((scores.get("contributions") or {}).get("val"))
    if contrib:
        lines.append(contrib)
    return "\n".join(lines)


def portfolio_figures(parent: Mapping | None, latest: Mapping | None, latest_label: str = "Latest candidate") -> str:
    """The prompt's portfolio section: the parent's and the latest candidate's tables."""
    parts = [t for t in (figures_table("Parent", parent), figures_table(latest_label, latest)) if t]
    if not parts:
        return ""
    return ("### Portfolio figures on train, folds and validation (equal-weight buy and hold and cash beside)\n\n"
            + "\n\n".join(parts))
