"""Stress a portfolio on synthetic panels that are not copies of history, and on higher costs.

The trade task's suite (``evaluate.stress``) resamples one instrument's bars; a portfolio's edge lives
in how instruments move against each other, so here the validation split is resampled **jointly**: one
stationary block bootstrap of its dates (``arch``), applied to every instrument, so each synthetic date
keeps every instrument's bar of one real date (the cross-section, the market factor and which
instruments had a bar). Each bar is kept whole as moves relative to its instrument's previous close and
chained from the last real close before the window; the real bars before the window (at most
``WARMUP_BARS``) lead each path so features warm up. Scenarios, paired path by path:

* ``bootstrap``: the resampled panel;
* ``vol_2x``: every instrument's log moves stretched around its own mean (volatility twice, drift kept);
* ``crash_20``: one date inside ``CRASH_ZONE`` of the window on which every instrument gaps -20%.

The candidate's weights on every path are checked against the cap it ran with and scored with the
task's own scoring, beside the equal-weight buy and hold of the same synthetic panel; the cost
multiples rescore the real validation weights. The summary has the trade suite's shape
(``run.records.StressResult``), ``buy_hold`` being the equal-weight buy and hold.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from alphaloop.evaluate.scoring import History
from alphaloop.evaluate.stress import (
    BLOCK_SIZE,
    COST_MULTIPLES,
    CRASH_ZONE,
    WARMUP_BARS,
    scenario_summary,
    stress_penalty,
)
from alphaloop.tasks.portfolio.contract import Calendar, validate_weights
from alphaloop.tasks.portfolio.scoring import Panel, score_portfolio

VOL_FACTOR = 2.0
CRASH_GAP = -0.20
STRESS_TIMEOUT_S = 300.0  # one sandbox call holds every path of every scenario


def _moves(histories: Sequence[History], panel: Panel, start: int, stop: int) -> tuple[np.ndarray, np.ndarray]:
    """Per union date of [start, stop) and instrument: (close, open, high, low) log moves from the instrument's
    previous close, NaN where it has no bar; and the volume."""
    n, k = stop - start, len(histories)
    moves, volume = np.full((n, k, 4), np.nan), np.zeros((n, k))
    for j, (h, rows) in enumerate(zip(histories, panel.calendar.rows, strict=True)):
        f = h.frame
        close = f["Close"].to_numpy(dtype=np.float64)
        prev = np.r_[np.nan, close[:-1]]

        def col(name: str, frame: pd.DataFrame = f, fallback: np.ndarray = close) -> np.ndarray:
            return frame[name].to_numpy(dtype=np.float64) if name in frame.columns else fallback

        c, o = np.log(close / prev), np.log(col("Open") / prev)
        hi = np.fmax(np.fmax(np.log(col("High") / prev), o), c)
        lo = np.fmin(np.fmin(np.log(col("Low") / prev), o), c)
        inside = (rows >= start) & (rows < stop)
        moves[rows[inside] - start, j] = np.stack([c, o, hi, lo], axis=1)[inside]
        volume[rows[inside] - start, j] = col("Volume", fallback=np.zeros_like(close))[inside]
    return moves, volume


def stress_panels(histories: Sequence[History], n_paths: int, seed: int, split: str = "val",
                  warmup_bars: int = WARMUP_BARS) -> list[tuple[str, tuple[History, ...]]]:
    """Every scenario's synthetic panels, each instrument a History with its real warm-up as ``train`` and
    the synthetic window as ``val``; deterministic for a seed."""
    panel = Panel.of(histories)
    a, b = panel.windows[split]
    start = max(a, 1)
    n = b - start
    if n < 2:
        raise ValueError(f"the {split} split is too short to stress")
    anchors = []
    for rows in panel.calendar.rows:
        before = np.flatnonzero(rows < start)
        if not before.size:
            raise ValueError("an instrument has no bar before the window to chain synthetic bars from")
        anchors.append(int(before[-1]))
    moves, volume = _moves(histories, panel, start, b)
    from arch.bootstrap import StationaryBootstrap  # arch pulls scipy: only stress pays for it

    seeds = np.random.SeedSequence(seed).spawn(2)
    boot = StationaryBootstrap(BLOCK_SIZE, np.arange(n), seed=np.random.default_rng(seeds[0]))
    idx = np.stack([data[0] for data, _ in boot.bootstrap(n_paths)]).astype(np.int64)
    base, base_volume = moves[idx], volume[idx]  # (paths, n, instruments, 4)
    mu = np.nanmean(moves[..., 0], axis=0)[None, None, :, None]
    crash_day = np.random.default_rng(seeds[1]).integers(int(CRASH_ZONE[0] * n), int(CRASH_ZONE[1] * n), n_paths)
    crashed = base.copy()
    day = crashed[np.arange(n_paths), crash_day]  # (paths, instruments, 4)
    g = np.log1p(CRASH_GAP)
    gapped = np.stack([np.full(day.shape[:2], g), np.full(day.shape[:2], g),
                       g + day[..., 2] - np.fmax(day[..., 0], day[..., 1]),
                       g + day[..., 3] - np.fmin(day[..., 0], day[..., 1])], axis=-1)
    crashed[np.arange(n_paths), crash_day] = np.where(np.isfinite(day), gapped, np.nan)  # no bar stays no bar
    scenarios = {"bootstrap": base, f"vol_{VOL_FACTOR:g}x": mu + VOL_FACTOR * (base - mu),
                 f"crash_{round(-CRASH_GAP * 100)}": crashed}
    dates = panel.calendar.dates[start:b]
    out = []
    for name, mv in scenarios.items():
        for i in range(n_paths):
            out.append((name, tuple(_instrument(h, j, anchors[j], mv[i, :, j], base_volume[i, :, j], dates,
                                                warmup_bars) for j, h in enumerate(histories))))
    return out


def _instrument(h: History, j: int, anchor_row: int, mv: np.ndarray, vol: np.ndarray, dates: pd.Index,
                warmup_bars: int) -> History:
    """One instrument's History on one path: its real bars up to the anchor, then the synthetic ones."""
    f = h.frame
    warm = f.iloc[max(anchor_row - warmup_bars + 1, 0): anchor_row + 1]
    has = np.isfinite(mv[:, 0])
    anchor = float(f["Close"].iloc[anchor_row])
    log_close = np.log(anchor) + np.cumsum(np.where(has, mv[:, 0], 0.0))
    log_prev = np.r_[np.log(anchor), log_close[:-1]]
    close = np.exp(log_close)
    cols = {"Open": np.exp(log_prev + mv[:, 1]), "High": np.exp(log_prev + mv[:, 2]),
            "Low": np.exp(log_prev + mv[:, 3]), "Close": close, "Volume": vol}
    if "Adj Close" in f.columns:  # no dividends on a synthetic path: adjusted moves as the close
        cols["Adj Close"] = close * float(f["Adj Close"].iloc[anchor_row] / anchor)
    synthetic = pd.DataFrame({c: cols[c] for c in f.columns if c in cols}, index=dates)[has]
    synthetic.index.name = f.index.name
    return History.from_splits({"train": warm, "val": synthetic}, periods_per_year=h.periods_per_year)


def run_portfolio_stress(region: str, histories: Sequence[History], sandbox: Any, cost_bps: float, n_paths: int,
                         seed: int, max_gross: float, task: Any) -> dict:
    """The suite for one allocation (``StressResult``'s shape); a failure is a result, never a crash."""
    t0 = time.perf_counter()
    head = {"split": "val", "n_paths": n_paths, "seed": seed, "cost_bps": float(cost_bps), "block_size": BLOCK_SIZE}
    try:
        paths = stress_panels(histories, n_paths, seed)
        frames = [tuple(h.frame for h in histories)] + [tuple(h.frame for h in p) for _, p in paths]
        outcome = task.run_sandbox(sandbox, region, frames, STRESS_TIMEOUT_S)
        if not outcome.ok:
            raise RuntimeError(f"{outcome.status}: {outcome.reason}")
        weights = [validate_weights(r[0].weights, Calendar.of(f), max_gross) for r, f in zip(outcome.results, frames,
                                                                                              strict=True)]
    except Exception as exc:  # the suite runs candidate code: any failure is that candidate's result
        return {**head, "status": "failed", "reason": f"{type(exc).__name__}: {exc}",
                "seconds": time.perf_counter() - t0}
    scenarios = scenario_summary(
        (name, score_portfolio(p, w, cost_bps=cost_bps, splits=("val",), max_gross=max_gross).splits["val"])
        for (name, p), w in zip(paths, weights[1:], strict=True))
    real = Panel.of(histories)  # one panel for every cost multiple
    costs = {f"{k}x": score_portfolio(histories, weights[0], cost_bps=cost_bps * k, splits=("val",), panel=real,
                                      max_gross=max_gross).splits["val"] for k in COST_MULTIPLES}
    result = {**head, "status": "ok", "reason": "", "scenarios": scenarios, "costs": costs}
    result["penalty"] = stress_penalty(result)
    result["seconds"] = time.perf_counter() - t0
    return result


def population_stress(run: Any, sandbox: Any) -> Any:
    """Stress every population member once (cached in ``stress.json`` across runs and resumes, as the trade
    task's), each beside the equal-weight buy and hold of the same synthetic panels."""
    from alphaloop.tasks.portfolio.final import recorded_gross
    from alphaloop.tasks.trade.finish import stress_population

    def stress_one(n: int, record: Any) -> dict:
        return run_portfolio_stress(run.wd.region(n), run.histories, sandbox, run.cost_bps, run.stress_paths,
                                    run.seed, recorded_gross(record), run.task)

    def line(n: int, st: Any) -> str | None:
        if not st.scenarios:
            return None
        name, worst = min(st.scenarios.items(), key=lambda kv: kv[1]["strategy"]["max_drawdown"]["p5"])
        return (f"stress (synthetic panels from the validation split), iter {n}: worst scenario {name}: "
                f"5th-percentile max drawdown {worst['strategy']['max_drawdown']['p5']:.1%} (equal-weight buy and "
                f"hold {worst['buy_hold']['max_drawdown']['p5']:.1%}); beat it on {worst['beat_buy_hold']:.0%} of "
                "paths")

    return stress_population(run, stress_one, line)
