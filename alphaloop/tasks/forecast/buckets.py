"""Outcome buckets of the forecast task, computed by the trusted parent only.

The bucket of horizon h at bar t is the close-to-close return from t to t+h: "down" (0) below the
train split's lower tercile of h-bar returns, "up" (2) above its upper tercile, "flat" (1) between.
Returns are measured inside each window (a split or a fold), like the backtester: a bar whose t+h
lies past the window's last bar has no outcome (NaN), so no split is resolved with another's prices.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

HORIZONS: tuple[int, ...] = (1, 3, 5, 10)
BUCKETS: tuple[str, ...] = ("down", "flat", "up")
TERCILES = (1.0 / 3.0, 2.0 / 3.0)


def forward_returns(close: np.ndarray, horizons: Sequence[int] = HORIZONS) -> np.ndarray:
    """(n, len(horizons)) returns close[t+h] / close[t] - 1 inside ``close``; NaN past its end."""
    c = np.asarray(close, dtype=np.float64)
    out = np.full((c.size, len(horizons)), np.nan)
    for j, h in enumerate(horizons):
        if h < 1:
            raise ValueError(f"horizons must be >= 1, got {h}")
        if c.size > h:
            out[: c.size - h, j] = c[h:] / c[:-h] - 1.0
    return out


def bucketize(returns: np.ndarray, cuts: np.ndarray) -> np.ndarray:
    """Buckets 0/1/2 (float, NaN where the return is NaN) of (n, H) returns under (H, 2) cut points."""
    r = np.asarray(returns, dtype=np.float64)
    lo, hi = cuts[:, 0], cuts[:, 1]
    b = np.where(r < lo, 0.0, np.where(r > hi, 2.0, 1.0))
    b[~np.isfinite(r)] = np.nan
    return b


@dataclass(frozen=True)
class Outcomes:
    """What the market said for one window: forward returns and their buckets, (n, H) each."""

    returns: np.ndarray
    buckets: np.ndarray


@dataclass(frozen=True)
class BucketScheme:
    """Cut points and the climatology of one run, both measured on the train split."""

    horizons: tuple[int, ...]
    cuts: np.ndarray  # (H, 2): lower and upper tercile of h-bar returns on train
    climatology: np.ndarray  # (H, 3): train bucket frequencies (about one third each)
    train_counts: np.ndarray  # (H,): h-bar returns on train behind each row of cuts

    @classmethod
    def from_train(cls, train_close: np.ndarray, horizons: Sequence[int] = HORIZONS) -> BucketScheme:
        """Terciles of the train split's own h-bar returns; its bucket frequencies are the climatology."""
        horizons = tuple(int(h) for h in horizons)
        r = forward_returns(train_close, horizons)
        counts = np.isfinite(r).sum(axis=0)
        if np.any(counts < 3):
            short = [h for h, n in zip(horizons, counts, strict=True) if n < 3]
            raise ValueError(f"train split too short for tercile cut points at horizon(s) {short}")
        cuts = np.column_stack([np.nanquantile(r, q, axis=0) for q in TERCILES])
        b = bucketize(r, cuts)
        clim = np.stack([(b == k).sum(axis=0) for k in range(len(BUCKETS))], axis=1) / counts[:, None]
        return cls(horizons=horizons, cuts=cuts, climatology=clim, train_counts=counts)

    def outcomes(self, close: np.ndarray) -> Outcomes:
        """Forward returns and buckets of one window's closes, measured inside that window."""
        r = forward_returns(close, self.horizons)
        return Outcomes(returns=r, buckets=bucketize(r, self.cuts))

    def to_json(self) -> dict:
        """Cut points and climatology per horizon, for the run's records (keys are horizons as text)."""
        return {
            "split": "train",
            "cut_points": {str(h): {"lower": float(lo), "upper": float(hi)}
                           for h, (lo, hi) in zip(self.horizons, self.cuts, strict=True)},
            "climatology": {str(h): dict(zip(BUCKETS, map(float, c), strict=True))
                            for h, c in zip(self.horizons, self.climatology, strict=True)},
            "train_returns": {str(h): int(n) for h, n in zip(self.horizons, self.train_counts, strict=True)},
        }


def cuts_text(scheme: BucketScheme) -> str:
    """The cut points of one scheme in words, for prompts and printed lines."""
    return "; ".join(f"h={h}: down < {lo:+.2%}, up > {hi:+.2%}" for h, (lo, hi) in zip(scheme.horizons, scheme.cuts,
                                                                                     strict=True))
