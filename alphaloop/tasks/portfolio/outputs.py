"""The portfolio task's reading of the sandbox child's arrays, in the trusted parent.

The child (``driver.py``) sends ``weights`` ((dates, instruments) on the union calendar of the frame's
instruments) and ``feature/<i>/<column>`` per instrument i. ``decode`` checks every name and shape
against the frame it came from; the weights' values are judged by ``contract.validate_weights``,
which knows the run's gross cap. Nothing the child says about lengths or values is trusted.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from alphaloop.tasks.portfolio.contract import Calendar
from alphaloop.tasks.portfolio.driver import WEIGHTS


@dataclass
class PanelResult:
    """What one panel produced: raw weights (shape checked) and each instrument's numeric features."""

    weights: np.ndarray
    features: tuple[dict[str, np.ndarray], ...]
    arrays: dict[str, np.ndarray] = field(default_factory=dict, repr=False)  # as sent, for the look-ahead

    @property
    def signals(self) -> np.ndarray:
        """The weights, under the name the shared code reads a full run's output by."""
        return self.weights


def decode(arrays: Mapping[str, np.ndarray], panel: tuple[pd.DataFrame, ...]) -> tuple[PanelResult]:
    """The validated ``PanelResult`` of ``panel`` (a 1-tuple: one result per frame), or ValueError."""
    features: list[dict[str, np.ndarray]] = [{} for _ in panel]
    for name, values in arrays.items():
        if name == WEIGHTS:
            continue
        kind, _, rest = name.partition("/")
        index, _, column = rest.partition("/")
        if kind != "feature" or not index.isdigit() or int(index) >= len(panel) or not column:
            raise ValueError(f"unexpected output array {ascii(name)[:60]}")
        i = int(index)
        if np.shape(values) != (len(panel[i]),):
            raise ValueError(f"instrument {i + 1}: feature {column!r} has shape {np.shape(values)}, "
                             f"expected ({len(panel[i])},)")
        features[i][column] = np.asarray(values, dtype=np.float64)
    if WEIGHTS not in arrays:
        raise ValueError("no weights")
    shape = Calendar.of(panel).present.shape
    weights = np.asarray(arrays[WEIGHTS])
    if weights.shape != shape or weights.dtype.kind not in "biuf":
        raise ValueError(f"weights of shape {weights.shape} {weights.dtype}, expected {shape} (dates x instruments)")
    return (PanelResult(weights.astype(np.float64), tuple(features), dict(arrays)),)
