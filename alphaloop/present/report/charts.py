"""Matplotlib helpers of the report: colours, axes style, equity/drawdown and stress charts as PNG."""

from __future__ import annotations

import base64
import io
from typing import Any

import numpy as np
from matplotlib.dates import AutoDateLocator, ConciseDateFormatter
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.ticker import PercentFormatter

from alphaloop.present.report.html import SCENARIO_LABELS, esc

STAGE_COLOURS = {"proposal": "#8c564b", "gate": "#d62728", "sandbox": "#9467bd", "lookahead": "#ff7f0e",
                 "guards": "#e377c2", "other": "#7f7f7f"}


STRATEGY, BUY_HOLD, BEST = "#1f5fa8", "#8a8a8a", "#2a9d4b"


def figure_html(fig: Figure, alt: str, caption: str) -> str:
    """Embed a matplotlib figure as a base64 PNG with a caption naming its split."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, metadata={"Software": None})
    data = base64.b64encode(buf.getvalue()).decode("ascii")
    return (f'<figure><img alt="{esc(alt)}" src="data:image/png;base64,{data}">'
            f"<figcaption>{esc(caption)}</figcaption></figure>")


def style_axes(ax: Any) -> None:
    ax.grid(True, color="#e6e6e6", linewidth=0.8)
    ax.set_axisbelow(True)
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)
    ax.tick_params(labelsize=9)


def pct_axis(ax: Any, axis: str = "y") -> None:
    (ax.yaxis if axis == "y" else ax.xaxis).set_major_formatter(PercentFormatter(1.0, decimals=0))


def curves(returns: list[float], closes: np.ndarray | None) -> tuple[np.ndarray, np.ndarray | None]:
    eq = np.concatenate(([1.0], np.cumprod(1.0 + np.asarray(returns, dtype=np.float64))))
    bh = closes / closes[0] if closes is not None and closes.size == eq.size else None
    return eq, bh


def date_axis(ax: Any) -> None:
    """Dates on the x axis, as concise as matplotlib can make them."""
    locator = AutoDateLocator()
    ax.xaxis.set_major_locator(locator)
    ax.xaxis.set_major_formatter(ConciseDateFormatter(locator))


def drawdown(eq: np.ndarray) -> np.ndarray:
    return eq / np.maximum.accumulate(eq) - 1.0


def equity_axes(ax: Any, dd: Any, x: Any, eq: np.ndarray, bh: np.ndarray | None, title: str) -> None:
    ax.plot(x, eq, color=STRATEGY, linewidth=1.4, label="candidate")
    if bh is not None:
        ax.plot(x, bh, color=BUY_HOLD, linewidth=1.1, label="buy & hold")
    ax.axhline(1.0, color="#999", linewidth=0.7)
    ax.set_title(title, fontsize=10, loc="left")
    ax.set_ylabel("growth of 1")
    ax.legend(fontsize=8, frameon=False, loc="upper left")
    ax.tick_params(labelbottom=False)
    dd.fill_between(x, drawdown(eq), 0, color=STRATEGY, alpha=0.35, linewidth=0, label="candidate")
    if bh is not None:
        dd.plot(x, drawdown(bh), color=BUY_HOLD, linewidth=0.9, label="buy & hold")
    dd.set_ylabel("drawdown")
    pct_axis(dd)
    for a in (ax, dd):
        style_axes(a)


def stress_chart(stress: dict, iteration: int) -> str:
    scen = list((stress.get("scenarios") or {}).items())
    fig = Figure(figsize=(10.4, 0.5 * len(scen) + 1.5))
    axes = [fig.add_subplot(1, 2, i + 1) for i in range(2)]
    ys = np.arange(len(scen))[::-1]
    for ax, key, title in zip(axes, ("total_return", "max_drawdown"), ("total return", "max drawdown"), strict=True):
        for y, (_, s) in zip(ys, scen, strict=True):
            for off, side, colour in ((0.14, "strategy", STRATEGY), (-0.14, "buy_hold", BUY_HOLD)):
                q = s[side][key]
                ax.plot([q["p5"], q["p95"]], [y + off] * 2, color=colour, linewidth=4, alpha=0.55,
                        solid_capstyle="butt")
                ax.plot([q["p50"]], [y + off], marker="o", color=colour, markersize=5)
        ax.set_yticks(ys, [SCENARIO_LABELS.get(n, n) for n, _ in scen] if ax is axes[0] else [""] * len(scen))
        ax.axvline(0, color="#666", linewidth=0.8)
        ax.set_title(f"{title}: 5th–95th percentile, dot = median", fontsize=10, loc="left")
        pct_axis(ax, "x")
        style_axes(ax)
    fig.legend([Line2D([], [], color=STRATEGY, linewidth=4), Line2D([], [], color=BUY_HOLD, linewidth=4)],
               [f"iter {iteration} (upper bar)", "buy & hold (lower bar)"], fontsize=9, frameon=False,
               loc="upper center", ncol=2)
    fig.subplots_adjust(left=0.17, right=0.99, top=0.84, bottom=0.12, wspace=0.06)
    split = stress.get("split", "val")
    return figure_html(fig, "stress percentiles",
                       f"synthetic paths built from the {split} split: {stress.get('n_paths')} "
                       f"per scenario, {stress.get('window_bars')} bars each after {stress.get('warmup_bars')} real "
                       f"warm-up bars; candidate and buy and hold on the same paths")
