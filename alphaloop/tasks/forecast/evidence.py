"""What the loop derives for one forecaster: the prompt's evidence and the record's forecast fields.

The forecast prompts (``prompts/forecast_*.md``) take the run's cut points and the grade thresholds
(``program_values``) and the parent's and latest candidate's per-horizon figures on validation
beside climatology (``forecast_figures``); they reach the prompt through ``ProposalContext.extra``.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

import numpy as np

from alphaloop.run.records import IterationRecord
from alphaloop.run.state import LoopState
from alphaloop.tasks.forecast.buckets import BucketScheme
from alphaloop.tasks.forecast.prompting import forecast_figures, lengths_line, program_values
from alphaloop.tasks.forecast.scores import ForecastScores

LOSS_KEY, CLIM_LOSS_KEY = "val_rps", "val_rps_climatology"  # per-day mean RPS over horizons, validation split
ROLL_LOSS_KEY = "val_rps_rolling_climatology"  # the same for the rolling climatology (the second benchmark)


@dataclass(frozen=True)
class Prepared:
    """What the forecast prompts derive once per run from the data (``ForecastTask.prepare``): each instrument's
    buckets (train terciles) and the splits' lengths in bars, with the bars a year that turn them into years."""

    schemes: tuple[BucketScheme, ...]
    bars: dict[str, int]
    periods_per_year: float


def forecast_evidence(n: int, parent: int, latest: IterationRecord | None, parent_rec: IterationRecord | None,
                      scheme: BucketScheme, last: int | None = None,
                      schemes: tuple[BucketScheme, ...] = (), prepared: Prepared | None = None) -> dict[str, Any]:
    """ProposalContext fields for the forecast task: why this parent, and the figures as prompt values.

    ``latest`` is the record of iteration ``last`` (n-1 in a serial run, n-N with --workers N)."""
    last = n - 1 if last is None else last
    if latest is None or parent == last:
        reason = (f"building on iter {parent}: it entered the population" if latest is not None else None)
    else:
        what = ("was rejected at " + latest.stage) if not latest.accepted else "did not enter the population"
        reason = f"reverting to iter {parent}, a population member drawn at random (seeded): iter {last} {what}"
    latest_val = latest.split("val") if latest is not None and last != parent else None
    # the latest candidate is the parent itself: its figures are the parent's row, not a "not scored" one
    label = "" if latest is not None and last == parent else "latest" if latest is None else \
        f"latest (iter {last}, {latest.status})"
    parent_val = parent_rec.split("val") if parent_rec is not None else None
    parent_scores = parent_rec.scores if parent_rec is not None and isinstance(parent_rec.scores, dict) else None
    folds = len(parent_scores.get("folds") or ()) if parent_scores else 0
    lengths = lengths_line(prepared.bars, prepared.periods_per_year, folds) if prepared is not None else ""
    figures = forecast_figures(parent_val, latest_val, label, parent_scores, lengths)
    extra = {**program_values(scheme, schemes), "forecast_figures": f"Why this parent: {reason}\n\n{figures}" if reason
             else figures}
    return {"parent_reason": reason, "extra": extra}


def forecasts_key(probs: np.ndarray) -> str:
    """Equal keys forecast identically (to 1e-9): a copy of a member adds nothing to the population."""
    return hashlib.sha256(np.round(np.asarray(probs, dtype=np.float64), 9).tobytes()).hexdigest()


def forecast_fields(scores: ForecastScores, probs: np.ndarray, state: LoopState) -> dict[str, Any]:
    """The record's fields for an accepted forecaster: selection, key, losses, and whether it enters."""
    key = forecasts_key(probs)
    value = scores.selection
    duplicate = state.duplicate_of(key)
    return {"selection": value, "signals_sha256": key, "duplicate_of": duplicate,
            "in_population": bool(state.would_enter(value, key)),
            "returns": {LOSS_KEY: np.round(scores.losses["val"], 12).tolist(),
                        CLIM_LOSS_KEY: np.round(scores.clim_losses["val"], 12).tolist(),
                        **({ROLL_LOSS_KEY: np.round(scores.roll_losses["val"], 12).tolist()}
                           if "val" in scores.roll_losses else {})}}
