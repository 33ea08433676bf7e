"""Look-ahead on the panel: cut every instrument at one date, and a weight before the cut that changes
is a leak, whoever's future it read.

A portfolio candidate sees every instrument at once, so a per-instrument probe cannot catch a weight
that reads another instrument's future (a feature stashed while ``generate_features`` ran on it, read
back by ``allocate``). Each probe here is a whole panel: ``truncate`` ends every instrument at the cut
date; ``perturb`` keeps every date but replaces every instrument's bars after the cut by a seeded
random-walk continuation (``evaluate.probes.perturbed_frame``). The cut dates follow the one-instrument
plan (``evaluate.cuts.cut_plan`` on the union calendar, drawn from the run's secret nonce): a leak keyed to
the last rows, a weekday, a week of the month, month starts or ends, or row parity is caught whatever the
nonce, and no other date is safe to aim at. Every weight and every instrument's feature at or before the cut
must equal the full run's; the first that does not is named by date, instrument and values.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from alphaloop.evaluate.cuts import cut_plan
from alphaloop.evaluate.probes import ATOL_SCALE, PERTURB_TAIL, RTOL, perturbed_frame
from alphaloop.tasks.portfolio.driver import WEIGHTS, union_calendar


@dataclass(frozen=True)
class PanelProbe:
    """Every instrument cut (or its future replaced) after the same date."""

    kind: str  # "truncate" or "perturb"
    cut: int  # position on the full run's union calendar of the last date left unchanged
    date: pd.Timestamp
    frames: tuple[pd.DataFrame, ...]


def panel_probes(frames: Sequence[pd.DataFrame], seed: int, focus: tuple[int, int] | None = None,
                 window: tuple[int, int] | None = None) -> list[PanelProbe]:
    """The panels of ``frames`` cut at ``cuts.cut_plan``'s rows of the union calendar; ``window`` ([start, stop),
    validation) gets a cut of its own, ``focus`` (final's test split) its extra cuts."""
    dates = union_calendar(frames)
    rng = np.random.default_rng(seed)
    plan = cut_plan(pd.DatetimeIndex(dates), 0, rng, window=slice(*window) if window else None,
                    focus=slice(*focus) if focus else None)
    probes = []
    for cut in plan:
        day = dates[cut.row]
        if cut.kind == "truncate":
            probes.append(PanelProbe("truncate", cut.row, day, tuple(f.loc[:day] for f in frames)))
            continue
        out = []
        for f in frames:
            row = int(f.index.searchsorted(day, "right")) - 1
            p = perturbed_frame(f, row, int(rng.integers(2**31))) if 0 <= row < len(f) - 1 else f
            out.append(p if cut.full_length else p.loc[: dates[min(cut.row + PERTURB_TAIL, len(dates) - 1)]])
        probes.append(PanelProbe("perturb", cut.row, day, tuple(out)))
    return probes


def _day(value: pd.Timestamp) -> str:
    return str(value.date()) if hasattr(value, "date") else str(value)


def _differs(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    finite = np.where(np.isfinite(a), np.abs(a), 0.0)
    atol = ATOL_SCALE * (finite.max(axis=0, initial=0.0) if a.ndim > 1 else finite.max(initial=0.0))
    return ~(np.isclose(a, b, rtol=RTOL, atol=atol, equal_nan=True) | (a == b))


def _what(probe: PanelProbe) -> str:
    if probe.kind == "truncate":
        return f"with every instrument cut after {_day(probe.date)}"
    return f"with every instrument's bars after {_day(probe.date)} replaced"


def panel_leak(frames: Sequence[pd.DataFrame], full: Mapping[str, np.ndarray], probe: PanelProbe,
               result: Mapping[str, np.ndarray]) -> str | None:
    """The first feature, else weight, at or before the probe's cut that differs from the full run, in words;
    None when nothing before the cut moved."""
    for i, f in enumerate(frames):
        k = int(f.index.searchsorted(probe.date, "right"))
        prefix = f"feature/{i}/"
        for name in full:
            if not name.startswith(prefix):
                continue
            if name not in result:
                return (f"look-ahead: instrument {i + 1}'s feature '{name[len(prefix):]}' is missing {_what(probe)}: "
                        "it depends on the future")
            a = np.asarray(full[name], dtype=np.float64)[:k]
            b = np.asarray(result[name], dtype=np.float64)[:k]
            if a.shape != b.shape:
                continue
            bad = _differs(a, b)
            if bad.any():
                r = int(np.argmax(bad))
                return (f"look-ahead: instrument {i + 1}'s feature '{name[len(prefix):]}' on {_day(f.index[r])} is "
                        f"{a[r]:.6g} with the full history and {b[r]:.6g} {_what(probe)}: it uses data from after "
                        "the bar it is computed for")
    k = probe.cut + 1
    a = np.asarray(full[WEIGHTS], dtype=np.float64)[:k]
    b = np.asarray(result.get(WEIGHTS, np.empty((0, a.shape[1] if a.ndim == 2 else 0))), dtype=np.float64)[:k]
    if a.shape != b.shape:
        return f"look-ahead: allocate returned weights for {len(b)} dates up to the cut, not {len(a)}, {_what(probe)}"
    bad = _differs(a, b)
    if not bad.any():
        return None
    t = int(np.argmax(bad.any(axis=1)))
    j = int(np.argmax(bad[t]))
    dates = union_calendar(frames)
    return (f"look-ahead: allocate's weight of instrument {j + 1} on {_day(dates[t])} is {a[t, j]:.6g} with the full "
            f"history and {b[t, j]:.6g} {_what(probe)} ({int(bad.sum())} weight(s) differ at or before the cut): "
            "the weights read the future of some instrument")
