"""Look-ahead detector: a feature or signal that changes when the future changes used the future.

The candidate is rerun (by the caller, in the sandbox) on probe frames built here, and every
value at or before a probe's cut row is compared with the run on the full history:

* ``truncate`` probes end the history at the cut.
* ``perturb`` probes keep the dates (and, for the last one, the full length, so a candidate cannot
  tell it from the real run by its size or last date) but replace every bar after the cut by a
  seeded random-walk continuation.

Where the cuts fall is ``alphaloop.evaluate.cuts.cut_plan``: rows a leak keyed cheaply to a place or a
calendar class cannot avoid (the last row with a successor, the first rows, every weekday, every
week of the month, a month start, a quarter end, both row parities, the validation window), each
drawn per run from a seed mixing the region's hash with the run's secret nonce (see
``pipeline.region_seed``), so its author cannot aim at the cuts; cuts.py states what is always
caught and what stays a chance. The cost is the rows probed (a truncation costs its length, the
tail probe the whole history), measured by ``bench/bench_lookahead.py``.
Detectors take results and never run code, so they work with any runner.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
import pandas as pd

from alphaloop.evaluate.cuts import DRAWN_CUTS, EARLY_CUT, cut_plan

__all__ = ["DRAWN_CUTS", "EARLY_CUT", "probe_frames"]

PERTURB_TAIL = 300  # rows of replaced future kept after an earlier perturbed cut; the last probe keeps all
RTOL = 1e-9  # recomputing a causal feature is bit-identical in practice; leave float noise room
ATOL_SCALE = 1e-12  # absolute tolerance as a fraction of the column's largest finite magnitude
PRICE_COLUMNS = ("Open", "High", "Low", "Close", "Adj Close")


class FrameLike(Protocol):
    """What a runner returns per frame (``sandbox.runner.FrameResult`` or a test double)."""

    signals: np.ndarray
    features: dict[str, np.ndarray]


@dataclass(frozen=True)
class Probe:
    """A frame to rerun the candidate on; rows ``<= cut`` must reproduce the full run."""

    frame: pd.DataFrame
    cut: int
    kind: str  # "truncate" | "perturb"
    why: str = ""  # the rule of cuts.cut_plan that placed it

    def describe(self) -> dict:
        """JSON-serialisable summary for the iteration record."""
        return {"kind": self.kind, "cut": int(self.cut), "cut_date": _date(self.frame.index, self.cut),
                "rows": int(len(self.frame)), "why": self.why}


@dataclass(frozen=True)
class Leak:
    """The first difference a probe found: which column, where, and the two values."""

    column: str  # a feature name or "signals"
    row: int
    date: str
    full_value: float
    probe_value: float
    differing_rows: int
    probe: Probe
    presence: str = ""  # "missing" or "extra" when the probe run lacks or adds the column

    def message(self, index: pd.Index) -> str:
        what = ("signals" if self.column == "signals" else self.column if self.column.startswith("forecast h=")
                else f"column {self.column!r}")  # repr: a name holding quotes stays one quoted span
        cut = _date(index, self.probe.cut)
        how = (f"the history is truncated after {cut}" if self.probe.kind == "truncate"
               else f"the bars after {cut} are replaced by a different random walk")
        if self.presence:
            verb = "disappears" if self.presence == "missing" else "appears"
            return f"look-ahead: {what} {verb} when {how}: which columns exist depends on later data"
        return (f"look-ahead: {what} changes on {self.date} when {how} ({_fmt(self.full_value)} with the "
                f"full history, {_fmt(self.probe_value)} without its future; {self.differing_rows} row(s) "
                f"differ at or before the cut): it uses data from after the bar it is computed for")


def _date(index: pd.Index, row: int) -> str:
    value = index[row]
    return str(value.date()) if isinstance(value, pd.Timestamp) else str(value)


def _fmt(value: float) -> str:
    return "missing (NaN)" if np.isnan(value) else f"{value:.6g}"


def warmup_rows(features: Mapping[str, np.ndarray]) -> int:
    """Longest run of leading NaN rows over the feature columns that are not entirely NaN."""
    longest = 0
    for values in features.values():
        nan = np.isnan(np.asarray(values, dtype=np.float64))
        if nan.size and not nan.all():
            longest = max(longest, int(np.argmax(~nan)))
    return longest


def perturbed_frame(frame: pd.DataFrame, cut: int, seed: int) -> pd.DataFrame:
    """The same frame with every bar after ``cut`` replaced by a seeded random-walk continuation.

    Closes follow a random walk with the history's own daily volatility. Each new bar gets a shape
    of its own: its open gaps from the previous new close, its high and low reach beyond open and
    close by drawn amounts (so High >= max(Open, Close) >= min(Open, Close) >= Low), and Adj Close
    keeps the last kept bar's ratio to its close. Volumes are drawn from the kept bars' volumes with
    noise. Nothing of a future bar survives, neither its level nor its shape (Open, High, Low
    relative to Close), its volume or its dividend adjustment, even when only the last bar is
    replaced (the tail probe), so a leak through any of them shows.
    """
    out = frame.copy()
    n = len(frame)
    if cut >= n - 1 or "Close" not in frame.columns:
        return out
    rng = np.random.default_rng(seed)
    close = frame["Close"].to_numpy(dtype=np.float64)
    logret = np.diff(np.log(close[: cut + 1]))
    vol = float(np.std(logret)) if logret.size > 1 and np.isfinite(logret).all() else 0.01
    vol = max(vol, 1e-4)
    m = n - cut - 1
    new_close = close[cut] * np.exp(np.cumsum(rng.normal(0.0, vol, m)))
    new_open = np.r_[close[cut], new_close[:-1]] * np.exp(rng.normal(0.0, 0.5 * vol, m))
    new_high = np.maximum(new_open, new_close) * np.exp(np.abs(rng.normal(0.0, 0.6 * vol, m)))
    new_low = np.minimum(new_open, new_close) * np.exp(-np.abs(rng.normal(0.0, 0.6 * vol, m)))
    drawn = {"Open": new_open, "High": new_high, "Low": new_low, "Close": new_close}
    for col in PRICE_COLUMNS:
        if col not in frame.columns:
            continue
        values = frame[col].to_numpy(dtype=np.float64).copy()
        if col in drawn:
            values[cut + 1:] = drawn[col]
        else:  # Adj Close: the last kept bar's adjustment ratio (a future dividend would be a leak)
            values[cut + 1:] = values[cut] / close[cut] * new_close
        out[col] = values
    if "Volume" in frame.columns:
        vol_values = frame["Volume"].to_numpy(dtype=np.float64).copy()
        past = vol_values[: cut + 1]
        past = past[np.isfinite(past)] if np.isfinite(past).any() else np.zeros(1)
        vol_values[cut + 1:] = rng.choice(past, m) * np.exp(rng.normal(0.0, 0.3, m))
        out["Volume"] = vol_values
    return out


def probe_frames(frame: pd.DataFrame, full: FrameLike, seed: int = 0, focus: slice | None = None,
                 window: slice | None = None) -> list[Probe]:
    """The truncated and perturbed frames of ``frame`` at the cuts of ``cuts.cut_plan``.

    ``window`` (the validation split) holds at least one cut; ``focus`` (rows, e.g. the test split
    that ``final`` is about to report) gets ``FOCUS_CUTS`` more. A perturbed probe keeps
    ``PERTURB_TAIL`` rows of its replaced future, the tail probe every row."""
    rng = np.random.default_rng(seed)
    probes: list[Probe] = []
    for cut in cut_plan(frame.index, warmup_rows(full.features), rng, window=window, focus=focus):
        if cut.kind == "perturb":
            perturbed = perturbed_frame(frame, cut.row, int(rng.integers(2**31)))
            if not cut.full_length:
                perturbed = perturbed.iloc[: cut.row + 1 + PERTURB_TAIL]
            probes.append(Probe(perturbed, cut.row, "perturb", cut.why))
        else:
            probes.append(Probe(frame.iloc[: cut.row + 1], cut.row, "truncate", cut.why))
    return probes


def first_column_difference(full: Mapping[str, np.ndarray], result: Mapping[str, np.ndarray], k: int,
                            probe: Probe) -> Leak | None:
    """Earliest row ``< k`` where a column of ``result`` differs from the same column of ``full``."""
    names = list(full)
    if not names:
        return None
    index = probe.frame.index
    a = np.column_stack([np.asarray(full[c], dtype=np.float64)[:k] for c in names])
    b = np.column_stack([np.asarray(result[c], dtype=np.float64)[:k] for c in names])
    finite = np.where(np.isfinite(a), np.abs(a), 0.0)
    atol = ATOL_SCALE * finite.max(axis=0, initial=0.0)
    same = np.isclose(a, b, rtol=RTOL, atol=atol, equal_nan=True) | (a == b)
    same |= np.cumsum(~np.isnan(a), axis=0) == 0  # a column's warm-up: rows before its first valid full-run value
    bad_cols = np.flatnonzero(~same.all(axis=0))
    if not bad_cols.size:
        return None
    first_rows = np.argmax(~same[:, bad_cols], axis=0)
    j = int(bad_cols[np.argmin(first_rows)])
    row = int(first_rows.min())
    return Leak(names[j], row, _date(index, row), float(a[row, j]), float(b[row, j]), int((~same[:, j]).sum()), probe)


def first_difference(full: FrameLike, probe: Probe, result: FrameLike,
                     columns: Callable[[Any], dict[str, np.ndarray]] | None = None) -> Leak | None:
    """Earliest row at or before the cut where a feature, else one of the task's output columns
    (``columns``, e.g. ``Task.output_columns``: a forecaster's probabilities), else the signals differ."""
    k = probe.cut + 1
    index = probe.frame.index
    missing = [c for c in full.features if c not in result.features]
    extra = [c for c in result.features if c not in full.features]
    if missing or extra:
        column, presence = (missing[0], "missing") if missing else (extra[0], "extra")
        return Leak(column, 0, _date(index, 0), np.nan, np.nan, k, probe, presence)
    best = first_column_difference(full.features, result.features, k, probe)
    if best is None:
        a, b = (columns(full), columns(result)) if columns else ({}, {})
        best = first_column_difference(a, b, k, probe) if a and b else None
    if best is None:
        s_full = np.asarray(full.signals)[:k]
        s_probe = np.asarray(result.signals)[:k]
        diff = s_full != s_probe
        if diff.any():
            row = int(np.argmax(diff))
            best = Leak("signals", row, _date(index, row), float(s_full[row]), float(s_probe[row]),
                        int(diff.sum()), probe)
    return best
