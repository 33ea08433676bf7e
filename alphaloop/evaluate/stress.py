"""Stress a candidate on synthetic daily paths that are not copies of history, and on higher costs.

Why: a candidate selected on one validation window may only work on that window's exact path. The
scenarios here keep the window's statistical character but change the path, then shock it:

* ``bootstrap``: stationary block bootstrap (``arch.bootstrap.StationaryBootstrap``) of the split's
  bars. Each bar is resampled whole as a relative move: close, open, high and low as log ratios to
  the previous close, plus volume; paths are rebuilt from the last real close before the window, so
  every synthetic bar is internally consistent (Low <= Open, Close <= High).
* ``vol_<k>x`` for each ``k`` of ``VOL_FACTORS``: the bootstrap draws with every log move stretched
  around the source's mean daily log return ``mu``: ``x' = mu + k (x - mu)``; volatility times
  ``k``, same log drift.
* ``crash_<g>`` for each gap of ``CRASH_GAPS`` (``crash_10`` is -10%): the bootstrap draws with one
  bar replaced by that gap from the previous close (open = close = gap, the bar's own wicks kept,
  volume times ``CRASH_VOLUME``) on a random day inside ``CRASH_ZONE`` of the window.
* ``regimes``: the bootstrap draws scaled by a two-state Markov chain, calm and turbulent: volatility
  times ``REGIME_VOL``, drift ``mu`` when calm and ``mu + TURBULENT_DRIFT_SIGMAS * sigma`` when
  turbulent, each state kept one more day with probability ``REGIME_STAY`` (a mean spell of
  ``1 / (1 - stay)`` days).

Path ``i`` of every scenario shares bootstrap draw ``i``, so scenarios are paired: a difference
between two scenarios' figures comes from the shock, not from another draw. Each path is preceded by
the real history before the window (at most ``warmup_bars`` rows) so features warm up on real bars;
returns are measured only on the synthetic window, which carries the split's real dates, and on the history's
return prices: with dividend-adjusted data each resampled bar keeps its own dividend (Adj Close moves as the
synthetic Close plus that bar's dividend), so buy and hold earns them on every path. All paths
of all scenarios go through the runner in one call (one sandbox fork).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np
import pandas as pd

from alphaloop.candidate import validate_signals
from alphaloop.evaluate.backtest import DEFAULT_COST_BPS, backtest
from alphaloop.evaluate.scoring import DEFAULT_STRESS_PATHS, History, score_window

BLOCK_SIZE = 20  # mean block length in bars (about a month): keeps volatility clustering
WARMUP_BARS = 300  # real bars before each path: enough for yearly (252-day) features; rows cost time
DEFAULT_PATHS = DEFAULT_STRESS_PATHS  # per scenario; why this many: scoring.DEFAULT_STRESS_PATHS
VOL_FACTORS = (1.5, 2.0)
CRASH_GAPS = (-0.10, -0.20)
CRASH_VOLUME = 3.0
CRASH_ZONE = (0.10, 0.90)  # crash days fall inside this fraction of the window, never at its edges
REGIME_VOL = (0.7, 2.0)  # calm, turbulent
REGIME_STAY = (0.985, 0.95)  # probability of staying in the state one more day
TURBULENT_DRIFT_SIGMAS = -0.1  # turbulent log drift = mu + this * sigma (daily)
COST_MULTIPLES = (1, 2, 5)
STRESS_WEIGHT = 1.0
FAILED_PENALTY = -1.0  # a candidate whose stress run failed is treated as losing everything
PERCENTILES = (("p5", 5.0), ("p50", 50.0), ("p95", 95.0))


class StressError(RuntimeError):
    """The runner could not produce signals for the stress frames."""


@dataclass(frozen=True)
class StressPath:
    """One synthetic path: real warm-up rows then the synthetic window the score is measured on."""

    scenario: str
    path: int
    frame: pd.DataFrame
    window: slice  # rows of ``frame`` that are synthetic; returns are measured only here
    info: dict[str, Any] = field(default_factory=dict)  # crash_row / regime states, for checks


class SandboxLike(Protocol):
    """``sandbox.runner.Sandbox`` or a test double: one call runs a region on many frames."""

    def run(self, region: str, frames: list[pd.DataFrame]) -> Any: ...


# A Sandbox-like object, or a plain ``callable(region, frames)`` returning signal arrays (or
# objects with a ``signals`` attribute), one per frame.
Runner = SandboxLike | Callable[[str, list[pd.DataFrame]], Sequence[Any]]


def _percentiles(values: Sequence[float]) -> dict[str, float]:
    arr = np.asarray(values, dtype=np.float64)
    return {key: float(np.percentile(arr, q)) for key, q in PERCENTILES}


def _source_moves(frame: pd.DataFrame, window: slice) -> tuple[np.ndarray, np.ndarray, float]:
    """Per-bar moves of ``frame[window]`` relative to the previous close, made consistent.

    Returns (log moves (n, 4) as close, open, high, low; volume (n,); the anchor close before the
    window). High/low are widened to contain open and close so that rebuilt bars always are valid.
    """
    close = frame["Close"].to_numpy(dtype=np.float64)
    prev = close[window.start - 1 : window.stop - 1]
    bars = frame.iloc[window]
    now = bars["Close"].to_numpy(dtype=np.float64)

    def column(name: str, fallback: np.ndarray) -> np.ndarray:  # close-only data: absent columns stay absent
        return bars[name].to_numpy(dtype=np.float64) if name in bars.columns else fallback

    c = np.log(now / prev)
    o = np.log(column("Open", now) / prev)
    h = np.maximum.reduce([np.log(column("High", now) / prev), o, c])
    lo = np.minimum.reduce([np.log(column("Low", now) / prev), o, c])
    return np.stack([c, o, h, lo], axis=1), column("Volume", np.zeros_like(now)), float(prev[0])


def _dividend_moves(history: History, window: slice) -> np.ndarray:
    """Per bar of ``window``: the log move of the return prices beyond Close's (the dividend of that day)."""
    close = history.frame["Close"].to_numpy(dtype=np.float64)
    adj = history.return_close()
    rows = np.arange(window.start, window.stop)
    return np.log(adj[rows] / adj[rows - 1]) - np.log(close[rows] / close[rows - 1])


def _rebuild(anchor: float, moves: np.ndarray) -> dict[str, np.ndarray]:
    """Price arrays (paths, n) from log moves (paths, n, 4) chained from the anchor close."""
    log_close = np.log(anchor) + np.cumsum(moves[..., 0], axis=1)
    log_prev = np.concatenate([np.full((moves.shape[0], 1), np.log(anchor)), log_close[:, :-1]], axis=1)
    close = np.exp(log_close)
    open_ = np.exp(log_prev + moves[..., 1])
    high = np.maximum.reduce([np.exp(log_prev + moves[..., 2]), open_, close])
    low = np.minimum.reduce([np.exp(log_prev + moves[..., 3]), open_, close])
    return {"Open": open_, "High": high, "Low": low, "Close": close}


def _regime_states(n_paths: int, n: int, rng: np.random.Generator) -> np.ndarray:
    """Two-state Markov chain (0 calm, 1 turbulent) per path, built from geometric spell lengths."""
    stay = np.asarray(REGIME_STAY)
    p_turbulent = (1 - stay[0]) / ((1 - stay[0]) + (1 - stay[1]))
    states = np.empty((n_paths, n), dtype=np.int8)
    for i in range(n_paths):
        first = int(rng.random() < p_turbulent)
        order = (np.arange(n) + first) % 2  # alternating spells, starting in ``first``
        spells = rng.geometric(1 - stay[order])
        states[i] = np.repeat(order, spells)[:n]
    return states


def stress_frames(history: History, split: str = "val", n_paths: int = DEFAULT_PATHS, seed: int = 0,
                  warmup_bars: int | None = WARMUP_BARS) -> list[StressPath]:
    """Every scenario's paths for one split, deterministic for a seed; see the module docstring."""
    if split not in ("train", "val"):
        raise ValueError("stress paths are built from the train or val split only")
    if n_paths < 1:
        raise ValueError("n_paths must be >= 1")
    frame, split_rows = history.frame, history.windows[split]
    start = max(split_rows.start, 1)  # the first bar needs a previous close to be a relative move
    window = slice(start, split_rows.stop)
    n = window.stop - window.start
    if n < 2:
        raise ValueError(f"the {split} split is too short to stress")
    moves, volume, anchor = _source_moves(frame, window)
    mu, sigma = float(moves[:, 0].mean()), float(moves[:, 0].std(ddof=1))
    from arch.bootstrap import StationaryBootstrap  # arch pulls scipy, statsmodels: only stress pays for it

    seeds = np.random.SeedSequence(seed).spawn(3)
    boot = StationaryBootstrap(BLOCK_SIZE, np.arange(n), seed=np.random.default_rng(seeds[0]))
    idx = np.stack([data[0] for data, _ in boot.bootstrap(n_paths)]).astype(np.int64)
    base, base_volume = moves[idx], volume[idx]

    scenarios: dict[str, tuple[np.ndarray, np.ndarray, dict[str, Any]]] = {"bootstrap": (base, base_volume, {})}
    for k in VOL_FACTORS:
        scenarios[f"vol_{k:g}x"] = (mu + k * (base - mu), base_volume, {})
    lo, hi = int(CRASH_ZONE[0] * n), max(int(CRASH_ZONE[1] * n), int(CRASH_ZONE[0] * n) + 1)
    crash_rows = np.random.default_rng(seeds[1]).integers(lo, hi, n_paths)
    paths = np.arange(n_paths)
    for gap in CRASH_GAPS:
        shocked, vol = base.copy(), base_volume.copy()
        day = base[paths, crash_rows]
        g = np.log1p(gap)
        shocked[paths, crash_rows] = np.stack([
            np.full(n_paths, g), np.full(n_paths, g),
            g + day[:, 2] - np.maximum(day[:, 0], day[:, 1]),
            g + day[:, 3] - np.minimum(day[:, 0], day[:, 1]),
        ], axis=1)
        vol[paths, crash_rows] *= CRASH_VOLUME
        scenarios[f"crash_{round(-gap * 100)}"] = (shocked, vol, {"crash_row": crash_rows, "gap": gap})
    states = _regime_states(n_paths, n, np.random.default_rng(seeds[2]))
    scale = np.asarray(REGIME_VOL)[states][..., None]
    drift = np.where(states == 1, mu + TURBULENT_DRIFT_SIGMAS * sigma, mu)[..., None]
    scenarios["regimes"] = (drift + scale * (base - mu), base_volume, {"states": states})

    w0 = 0 if warmup_bars is None else max(window.start - warmup_bars, 0)
    warm = frame.iloc[w0 : window.start]
    dates = frame.index[window]
    columns = list(frame.columns)
    adj_ratio = float(frame["Adj Close"].iloc[window.start - 1] / anchor) if "Adj Close" in columns else 1.0
    dividends = _dividend_moves(history, window)[idx] if history.prices == "Adj Close" else None
    out: list[StressPath] = []
    for name, (mv, vol, meta) in scenarios.items():
        prices = _rebuild(anchor, mv)
        if dividends is not None:  # each bar keeps its own dividend: Adj Close moves as Close plus it
            adjusted = anchor * adj_ratio * np.exp(np.cumsum(mv[..., 0] + dividends, axis=1))
        for i in range(n_paths):
            cols = {key: prices[key][i] for key in ("Open", "High", "Low", "Close")}
            cols["Volume"] = vol[i]
            if "Adj Close" in columns:
                cols["Adj Close"] = adjusted[i] if dividends is not None else prices["Close"][i] * adj_ratio
            synthetic = pd.DataFrame({c: cols[c] for c in columns if c in cols}, index=dates)
            info = {key: (value[i] if isinstance(value, np.ndarray) else value) for key, value in meta.items()}
            out.append(StressPath(name, i, pd.concat([warm[synthetic.columns], synthetic]),
                                  slice(len(warm), len(warm) + n), info))
    return out


def run_signals(runner: Runner, region: str, frames: list[pd.DataFrame],
                timeout_s: float | None = None) -> list[np.ndarray]:
    """Signals for each frame from a Sandbox-like runner or a ``callable(region, frames)``, validated.

    The parent re-validates whatever comes back: a runner is trusted to isolate, not to be right.
    ``timeout_s`` overrides a Sandbox's own limit for this call (stress frames hold ~15x the rows of a
    plain evaluation).
    """
    if hasattr(runner, "run"):
        outcome = runner.run(region, frames) if timeout_s is None else runner.run(region, frames, timeout_s=timeout_s)
        if not outcome.ok:
            raise StressError(f"{outcome.status}: {outcome.reason}")
        results = outcome.results
    else:
        results = runner(region, frames)
    if results is None or len(results) != len(frames):
        got = 0 if results is None else len(results)
        raise StressError(f"the runner returned {got} results for {len(frames)} frames")
    return [validate_signals(getattr(r, "signals", r), len(f)) for r, f in zip(results, frames, strict=True)]


def scenario_summary(figures: Iterable[tuple[str, Mapping[str, float]]]) -> dict[str, dict]:
    """Per scenario: 5/50/95 percentiles of the candidate's and buy and hold's return and drawdown over its
    paths, and the share of paths on which the candidate's return beat buy and hold's (``figures``: each path's
    scenario and metrics, with ``total_return``, ``max_drawdown`` and their ``bh_`` twins).

    Why one summary: every task's stress result has this shape (``run.records.StressResult``), and the
    stress penalty, the report and the prompts read it alike."""
    collected: dict[str, dict[str, list[float]]] = {}
    for scenario, m in figures:
        row = collected.setdefault(scenario, {k: [] for k in ("ret", "dd", "bh_ret", "bh_dd")})
        row["ret"].append(m["total_return"])
        row["dd"].append(m["max_drawdown"])
        row["bh_ret"].append(m["bh_total_return"])
        row["bh_dd"].append(m["bh_max_drawdown"])
    summary = {}
    for name, row in collected.items():
        ret, bh_ret = np.asarray(row["ret"]), np.asarray(row["bh_ret"])
        summary[name] = {
            "strategy": {"total_return": _percentiles(ret), "max_drawdown": _percentiles(row["dd"])},
            "buy_hold": {"total_return": _percentiles(bh_ret), "max_drawdown": _percentiles(row["bh_dd"])},
            "beat_buy_hold": float(np.mean(ret > bh_ret)),
            "paths": int(ret.size),
        }
    return summary


def _summarise(paths: list[StressPath], signals: list[np.ndarray], cost_bps: float,
               prices: str = "Close") -> dict[str, dict]:
    """``scenario_summary`` of each path's backtest, measured on ``prices`` (the history's return prices)."""
    return scenario_summary((p.scenario, backtest(p.frame[prices].to_numpy(dtype=np.float64)[p.window],
                                                  sig[p.window], cost_bps=cost_bps).metrics)
                            for p, sig in zip(paths, signals, strict=True))  # one signal array per path


def run_stress(region: str, history: History, runner: Runner, cost_bps: float = DEFAULT_COST_BPS,
               n_paths: int = DEFAULT_PATHS, seed: int = 0, split: str = "val",
               real_signals: np.ndarray | None = None, warmup_bars: int | None = WARMUP_BARS,
               timeout_s: float | None = None) -> dict:
    """Stress one candidate; JSON-serialisable summary (``status`` "ok" or "failed" with ``reason``).

    ``real_signals`` (the candidate's signals on ``history.frame``) saves recomputing them for the
    cost multiples; without them the real history rides along in the same single runner call.
    """
    t0 = time.perf_counter()
    paths = stress_frames(history, split, n_paths, seed, warmup_bars)
    frames = [p.frame for p in paths]
    if real_signals is None:
        frames = [history.frame, *frames]
    head = {"split": split, "n_paths": n_paths, "seed": seed, "cost_bps": float(cost_bps),
            "window_bars": paths[0].window.stop - paths[0].window.start, "warmup_bars": paths[0].window.start,
            "block_size": BLOCK_SIZE}
    try:
        signals = run_signals(runner, region, frames, timeout_s)
    except (StressError, ValueError) as exc:
        return {**head, "status": "failed", "reason": str(exc), "seconds": time.perf_counter() - t0}
    if real_signals is None:
        real_signals, signals = signals[0], signals[1:]
    else:
        real_signals = validate_signals(real_signals, len(history.frame))
    scenarios = _summarise(paths, signals, cost_bps, history.prices)
    costs = {f"{k}x": score_window(history, real_signals, history.windows[split], cost_bps * k).metrics
             for k in COST_MULTIPLES}
    result = {**head, "status": "ok", "reason": "", "scenarios": scenarios, "costs": costs}
    result["penalty"] = stress_penalty(result)
    result["seconds"] = time.perf_counter() - t0
    return result


def stress_penalty(stress: dict | None) -> float:
    """The worst scenario's 5th-percentile max drawdown of the candidate (<= 0).

    ``--stress-select`` ranks by ``selection_val + STRESS_WEIGHT * stress_penalty(stress)`` (see
    ``stress_adjusted``): with weight 1 and Sharpe as the metric, a 5%-worst drawdown of -30% in the
    harshest scenario costs 0.3 of Sharpe. A failed or missing stress run costs ``FAILED_PENALTY``.
    """
    if not stress or stress.get("status") != "ok" or not stress.get("scenarios"):
        return FAILED_PENALTY
    return float(min(s["strategy"]["max_drawdown"]["p5"] for s in stress["scenarios"].values()))


def stress_adjusted(selection_val: float, stress: dict | None, weight: float = STRESS_WEIGHT) -> float:
    """Selection value penalised by stress: ``selection_val + weight * stress_penalty(stress)``."""
    return float(selection_val + weight * stress_penalty(stress))


def stress_or_failure(region: str, history: History, runner: Runner, cost_bps: float, n_paths: int,
                      seed: int) -> dict:
    """The stress suite for one region; a failure is a result, not a crash (it must never lose an iteration)."""
    try:
        return run_stress(region, history, runner, cost_bps, n_paths=n_paths, seed=seed, timeout_s=120.0)
    except Exception as exc:  # the suite runs candidate code: any failure is that candidate's result
        return {"status": "failed", "reason": f"{type(exc).__name__}: {exc}"}
