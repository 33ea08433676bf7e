"""A candidate's verdict as ``check`` and ``final`` print it: the sandbox's isolation, one line a stage,
the selection figure with the walk-forward spread, and the ``error:`` line of a usage error."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

from rich.table import Table

from alphaloop.evaluate.pipeline import STAGES, Evaluation
from alphaloop.evaluate.scoring import Scores
from alphaloop.present.text import flat, fmt

if TYPE_CHECKING:
    from sandbox.runner import Sandbox


def isolation_line(box: Sandbox) -> str:
    """The sandbox's own account of its layers (and of any missing one), said first."""
    text = box.describe()
    return text if text.startswith("isolation:") else f"isolation: {' + '.join(box.layers) or 'NONE'} ({text})"


def format_metric(metric: str, value: float) -> str:
    """Returns as signed percentages, ratios to 3 decimals (the figures ``check`` and ``final`` print), in
    ``text.fmt``, the one formatter."""
    return fmt(value, 2, pct=True, sign=True) if metric in ("total_return", "cagr") else fmt(value, 3)


def spread_line(scores: Scores) -> str:
    """Validation's selection value with the walk-forward spread beside it."""
    m = scores.metric
    line = f"selection: validation {m} {format_metric(m, scores.selection)}"
    bh = scores.splits["val"].get(f"bh_{m}")
    if bh is not None:
        line += f" (buy and hold {format_metric(m, bh)})"
    spread = scores.fold_spread()
    if spread:
        line += (f"  |  walk-forward {len(scores.folds)} folds of train (sub-periods, not re-fitted): min "
                 f"{format_metric(m, spread['min'])}, median {format_metric(m, spread['median'])}, "
                 f"max {format_metric(m, spread['max'])}")
    return line


def stage_lines(ev: Evaluation) -> list[str]:
    """One line a stage of ``pipeline.STAGES``, in their order: ok, rejected with the reason, or not reached.

    The reason may quote the candidate (an exception message, a name), so it is flattened to one
    safe line: it can never print a line of its own, such as a forged verdict.
    """
    lines, reached = [], True
    for stage in STAGES:
        seconds = ev.timings.get(stage, 0.0)
        if not reached:
            lines.append(f"  {stage:<10} not reached")
        elif stage == "guards" and ev.details.get("guards", {}).get("applied") is False:
            lines.append(f"  {stage:<10} not applied ({ev.details['guards']['why']})")
        elif stage == ev.stage:
            lines.append(f"  {stage:<10} REJECTED ({seconds:.2f} s): {flat(ev.reason)}")
            reached = False
        else:
            extra = ""
            if stage == "lookahead":
                info = ev.details.get("lookahead", {})
                per = info.get("instruments") or [info]  # a universe: every instrument's probes
                extra = (f", {sum(len(i.get('probes', [])) for i in per)} probes + "
                         f"{sum(len(i.get('invariance', [])) for i in per)} invariance probes"
                         + (f" over {len(per)} instruments" if len(per) > 1 else ""))
            lines.append(f"  {stage:<10} ok ({seconds:.2f} s{extra})")
    return lines


def usage_error(message: str) -> int:
    print(f"error: {flat(message)}", file=sys.stderr)
    return 2


TABLE_ROWS = (
    ("total_return", "Total return", "{:+.2%}"), ("cagr", "CAGR", "{:+.2%}"),
    ("sharpe", "Sharpe (ann.)", "{:.2f}"), ("sortino", "Sortino (ann.)", "{:.2f}"),
    ("max_drawdown", "Max drawdown", "{:.2%}"), ("calmar", "Calmar", "{:.2f}"),
    ("round_trips", "Round trips", "{:.0f}"), ("exposure", "Exposure", "{:.1%}"),
    ("turnover", "Turnover (x/yr)", "{:.1f}"), ("win_rate", "Win rate", "{:.1%}"),
    ("bh_total_return", "Buy & hold return", "{:+.2%}"), ("bh_sharpe", "Buy & hold Sharpe", "{:.2f}"),
    ("bh_max_drawdown", "Buy & hold max DD", "{:.2%}"),
)


def metrics_table(splits: dict[str, dict[str, float]], title: str) -> Table:
    """A table with one column per split, so every figure says where it was measured."""
    table = Table(title=title)
    table.add_column("metric")
    for name in splits:
        table.add_column(f"{name} split", justify="right")
    for key, label, spec in TABLE_ROWS:
        table.add_row(label, *(spec.format(splits[s][key]) for s in splits))
    return table
