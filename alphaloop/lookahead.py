"""Look-ahead detector: a feature or signal that changes when the future changes used the future.

The candidate is rerun (by the caller, in the sandbox) on probe frames built here, and every
value at or before a probe's cut row is compared with the run on the full history:

* ``truncate`` probes end the history at the cut. Cuts: a few rows in (catches backward fills of
  the first rows), one inside the longest warm-up, and two drawn at random between 10% and 30%
  and between 30% and 50% of the history (truncations are short, so they cost little).
* ``perturb`` probes keep the full length and dates (so a candidate cannot tell them from the
  real run by its size or last date) but replace every bar after the cut by a seeded random-walk
  continuation; one cut in the middle, one in the last 15% of the history (inside validation
  with the default split).

Spread-out cuts are moved to a mid-week, mid-month bar so that a resample filled backwards from
the end of a week, month, quarter or year always straddles the cut. The seed should be one the
candidate's author cannot predict (the pipeline derives it from the region's hash), so the cut
points cannot be dodged. Detectors take results and never run code, so they work with any runner.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np
import pandas as pd

EARLY_CUT = 4  # a few rows in: a backward fill of the first rows' NaN shows here
MIN_WARMUP_FOR_CUT = 10  # a shorter warm-up is already covered by the early cut
TRUNCATE_STRATA = ((0.10, 0.30), (0.30, 0.50))
PERTURB_STRATA = ((0.30, 0.65), (0.85, 0.995))
PERTURB_TAIL = 300  # rows of replaced future kept after an early perturbed cut; the last probe keeps all
SNAP_RADIUS = 12  # rows searched either side of a drawn cut for a mid-week, mid-month bar
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

    def describe(self) -> dict:
        """JSON-serialisable summary for the iteration record."""
        return {"kind": self.kind, "cut": int(self.cut), "cut_date": _date(self.frame.index, self.cut),
                "rows": int(len(self.frame))}


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
        what = "signals" if self.column == "signals" else f"column '{self.column}'"
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


def _snap(index: pd.Index, target: int, lo: int, hi: int) -> int:
    """Nearest row to ``target`` in [lo, hi] dated a Tuesday-Thursday between the 8th and 22nd."""
    if not isinstance(index, pd.DatetimeIndex):
        return target
    a, b = max(lo, target - SNAP_RADIUS), min(hi, target + SNAP_RADIUS)
    if b < a:
        return target
    window = index[a : b + 1]
    good = np.flatnonzero(window.day_of_week.isin((1, 2, 3)) & (window.day >= 8) & (window.day <= 22))
    if good.size == 0:
        return target
    rows = good + a
    return int(rows[np.argmin(np.abs(rows - target))])


def _draw(index: pd.Index, strata: tuple[tuple[float, float], ...], rng: np.random.Generator) -> list[int]:
    n = len(index)
    cuts = []
    for lo, hi in strata:
        a, b = int(lo * n), max(int(lo * n), int(hi * n) - 1)
        cuts.append(_snap(index, int(rng.integers(a, b + 1)), a, min(b, n - 2)))
    return cuts


def perturbed_frame(frame: pd.DataFrame, cut: int, seed: int) -> pd.DataFrame:
    """The same frame with every bar after ``cut`` replaced by a seeded random-walk continuation.

    Closes follow a random walk with the history's own daily volatility; the other prices keep
    their real ratio to the close (so High >= Low still holds) and volumes are shuffled.
    """
    out = frame.copy()
    n = len(frame)
    if cut >= n - 1 or "Close" not in frame.columns:
        return out
    rng = np.random.default_rng(seed)
    close = frame["Close"].to_numpy(dtype=np.float64)
    logret = np.diff(np.log(close[: cut + 1]))
    vol = float(np.std(logret)) if logret.size > 1 and np.isfinite(logret).all() else 0.01
    steps = rng.normal(0.0, max(vol, 1e-4), n - cut - 1)
    new_close = close[cut] * np.exp(np.cumsum(steps))
    ratio = new_close / close[cut + 1 :]
    for col in PRICE_COLUMNS:
        if col in frame.columns:
            values = frame[col].to_numpy(dtype=np.float64).copy()
            values[cut + 1 :] = values[cut + 1 :] * ratio
            out[col] = values
    if "Volume" in frame.columns:
        vol_values = frame["Volume"].to_numpy(dtype=np.float64).copy()
        vol_values[cut + 1 :] = rng.permutation(vol_values[cut + 1 :])
        out["Volume"] = vol_values
    return out


def probe_frames(frame: pd.DataFrame, full: FrameLike, seed: int = 0) -> list[Probe]:
    """Build the truncated and perturbed frames for ``frame`` given the candidate's full run."""
    n = len(frame)
    rng = np.random.default_rng(seed)
    probes: list[Probe] = []
    cuts_p = _draw(frame.index, PERTURB_STRATA, rng)
    for i, cut in enumerate(cuts_p):
        perturbed = perturbed_frame(frame, cut, int(rng.integers(2**31)))
        if i < len(cuts_p) - 1:  # a full-length future is only needed once: the last probe has it
            perturbed = perturbed.iloc[: cut + 1 + PERTURB_TAIL]
        probes.append(Probe(perturbed, cut, "perturb"))
    cuts = [EARLY_CUT]
    warm = warmup_rows(full.features)
    if warm >= MIN_WARMUP_FOR_CUT:
        cuts.append(warm // 2)
    cuts += _draw(frame.index, TRUNCATE_STRATA, rng)
    for cut in sorted({c for c in cuts if 0 <= c < n - 1}):
        probes.append(Probe(frame.iloc[: cut + 1], cut, "truncate"))
    return probes


def first_difference(full: FrameLike, probe: Probe, result: FrameLike) -> Leak | None:
    """Earliest row at or before the cut where a feature (else the signals) differs."""
    k = probe.cut + 1
    index = probe.frame.index
    missing = [c for c in full.features if c not in result.features]
    extra = [c for c in result.features if c not in full.features]
    if missing or extra:
        column, presence = (missing[0], "missing") if missing else (extra[0], "extra")
        return Leak(column, 0, _date(index, 0), np.nan, np.nan, k, probe, presence)
    names = list(full.features)
    best: Leak | None = None
    if names:
        a = np.column_stack([np.asarray(full.features[c], dtype=np.float64)[:k] for c in names])
        b = np.column_stack([np.asarray(result.features[c], dtype=np.float64)[:k] for c in names])
        finite = np.where(np.isfinite(a), np.abs(a), 0.0)
        atol = ATOL_SCALE * finite.max(axis=0, initial=0.0)
        same = np.isclose(a, b, rtol=RTOL, atol=atol, equal_nan=True) | (a == b)
        bad_cols = np.flatnonzero(~same.all(axis=0))
        if bad_cols.size:
            first_rows = np.argmax(~same[:, bad_cols], axis=0)
            j = int(bad_cols[np.argmin(first_rows)])
            row = int(first_rows.min())
            best = Leak(names[j], row, _date(index, row), float(a[row, j]), float(b[row, j]),
                        int((~same[:, j]).sum()), probe)
    if best is None:
        s_full = np.asarray(full.signals)[:k]
        s_probe = np.asarray(result.signals)[:k]
        diff = s_full != s_probe
        if diff.any():
            row = int(np.argmax(diff))
            best = Leak("signals", row, _date(index, row), float(s_full[row]), float(s_probe[row]),
                        int(diff.sum()), probe)
    return best


def find_leak_details(full: FrameLike, probes: Sequence[Probe], results: Sequence[FrameLike]) -> Leak | None:
    """The earliest-dated difference over all probes, or None when the candidate is causal."""
    if len(probes) != len(results):
        raise ValueError(f"{len(probes)} probes but {len(results)} results")
    leaks = [leak for p, r in zip(probes, results) if (leak := first_difference(full, p, r)) is not None]
    return min(leaks, key=lambda leak: (leak.row, leak.probe.cut)) if leaks else None


def find_leak(frame: pd.DataFrame, full: FrameLike, probes: Sequence[Probe],
              results: Sequence[FrameLike]) -> str | None:
    """A rejection reason naming the column (or "signals") and the first date that differs."""
    leak = find_leak_details(full, probes, results)
    return None if leak is None else leak.message(frame.index)
