"""The held-out instruments' reading: a candidate scored on instruments the loop never opened.

Only ``harness.py final`` imports this module. A held-out instrument was cut at the same dates as
the universe, so its test split covers the same years as the universe's; its train and validation
splits are unseen as well, which is why all three are reported, each beside buy and hold.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from rich.table import Table

from alphaloop.data.frozen import SPLITS, Universe
from alphaloop.evaluate.scoring import History, Scores, score, score_window
from alphaloop.evaluate.stress import Runner, StressError, run_signals
from alphaloop.present.text import fmt


@dataclass(frozen=True)
class HeldOut:
    """One held-out instrument's figures per split (``metric`` after costs) and buy and hold's."""

    name: str
    metric: str
    values: dict[str, float]
    bh: dict[str, float]
    error: str = ""

    def to_json(self) -> dict:
        return {"instrument": self.name, "metric": self.metric, "values": self.values, "bh": self.bh,
                "error": self.error or None,
                "beat_bh_test": None if self.error else bool(self.values["test"] > self.bh["test"])}


def score_holdout(region: str, holdout: Universe, runner: Runner, metric: str, cost_bps: float) -> list[HeldOut]:
    """One sandbox run over every held-out instrument's whole history, then each scored by the parent."""
    if not holdout.instruments:
        return []
    histories = [History.from_splits(holdout.splits[name], holdout.periods_per_year) for name in holdout.instruments]
    try:
        signals = run_signals(runner, region, [h.frame for h in histories])
    except StressError as exc:
        return [HeldOut(name, metric, {}, {}, f"did not run: {exc}") for name in holdout.instruments]
    out = []
    for name, history, sig in zip(holdout.instruments, histories, signals, strict=True):
        scores = score(history, sig, metric=metric, cost_bps=cost_bps, splits=SPLITS)
        always_long = np.ones(len(history.frame), dtype=np.int8)
        bh = {s: float(score_window(history, always_long, history.windows[s], 0.0).metrics[metric]) for s in SPLITS}
        out.append(HeldOut(name, metric, {s: float(scores.splits[s][metric]) for s in SPLITS}, bh))
    return out


def holdout_table(figures: list[HeldOut], cost_bps: float) -> Table:
    """Per held-out instrument: the candidate's figure on each split with buy and hold's beside it."""
    metric = figures[0].metric
    pct = metric in ("total_return", "cagr")
    table = Table(title=f"held-out instruments (never opened by the loop): {metric}, costs {cost_bps:g} bp, "
                        "buy and hold in brackets", title_justify="left")
    table.add_column("instrument")
    for name in SPLITS:
        table.add_column(f"{name} split", justify="right")
    for f in figures:
        if f.error:
            table.add_row(f.name, *([f.error] + [""] * (len(SPLITS) - 1)))
            continue
        digits = 2 if pct else 3
        table.add_row(f.name, *(f"{fmt(f.values[s], digits, pct=pct)} ({fmt(f.bh[s], digits, pct=pct)})"
                                for s in SPLITS))
    return table


TEST_KEYS = ("sharpe", "total_return", "max_drawdown", "exposure", "round_trips", "bh_sharpe", "bh_total_return",
             "bh_max_drawdown")


def instrument_test_rows(names: tuple[str, ...], scores: tuple[Scores, ...]) -> list[dict]:
    """Each instrument of a universe on the test split, buy and hold beside it, for the reading and the report."""
    return [{"instrument": name, **{k: float(s.splits["test"][k]) for k in TEST_KEYS}}
            for name, s in zip(names, scores, strict=True)]


def instrument_test_table(rows: list[dict], cost_bps: float) -> Table:
    """Per instrument of the universe: the candidate's test figures with buy and hold's in brackets."""
    table = Table(title=f"per instrument, test split (the portfolio above holds them at equal weight): costs "
                        f"{cost_bps:g} bp, buy and hold in brackets", title_justify="left")
    for col in ("instrument", "Sharpe", "total return", "max drawdown", "exposure", "round trips"):
        table.add_column(col, justify="left" if col == "instrument" else "right")
    for r in rows:
        table.add_row(r["instrument"], f"{fmt(r['sharpe'], 3)} ({fmt(r['bh_sharpe'], 3)})",
                      f"{fmt(r['total_return'], 2, pct=True)} ({fmt(r['bh_total_return'], 2, pct=True)})",
                      f"{fmt(r['max_drawdown'], 2, pct=True)} ({fmt(r['bh_max_drawdown'], 2, pct=True)})",
                      fmt(r["exposure"], 1, pct=True), f"{r['round_trips']:.0f}")
    return table
