"""The trade task's reading of the sandbox child's arrays, in the trusted parent.

The child (``alphaloop/tasks/trade/driver.py``) sends ``signals/<i>`` and ``feature/<i>/<column>`` per
instrument i of a frame; ``decode`` checks every array against the frame it came from and returns one
``FrameResult`` per instrument. Nothing the child says about lengths or values is trusted.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from alphaloop.candidate import validate_signals


@dataclass
class FrameResult:
    """What one instrument of one frame produced: validated signals and the numeric feature columns.

    For the forecast task also the validated (n, H, 3) probabilities; the signals are then all zero.
    """

    signals: np.ndarray
    features: dict[str, np.ndarray] = field(default_factory=dict)
    forecasts: np.ndarray | None = None


def features_of(arrays: dict[str, np.ndarray], i: int, n: int, where: str) -> dict[str, np.ndarray]:
    """Instrument ``i``'s feature columns, each of length ``n``."""
    prefix = f"feature/{i}/"
    features = {name[len(prefix):]: values for name, values in arrays.items() if name.startswith(prefix)}
    for name, values in features.items():
        if values.shape != (n,):
            raise ValueError(f"{where}feature {name!r} has shape {values.shape}, expected ({n},)")
    return features


def known_names(arrays: dict[str, np.ndarray], panel: tuple[pd.DataFrame, ...], kinds: tuple[str, ...]) -> None:
    """Every array belongs to an instrument of the frame and is of a kind the task sends."""
    for name in arrays:
        kind, _, rest = name.partition("/")
        index = rest.partition("/")[0]
        if kind not in (*kinds, "feature") or not index.isdigit() or int(index) >= len(panel):
            raise ValueError(f"unexpected output array {ascii(name)[:60]}")


def decode(arrays: dict[str, np.ndarray], panel: tuple[pd.DataFrame, ...]) -> tuple[FrameResult, ...]:
    """One validated ``FrameResult`` per instrument of ``panel``, or ValueError ("frame i: ...")."""
    known_names(arrays, panel, ("signals",))
    out = []
    for i, df in enumerate(panel):
        where = f"frame {i}: "
        raw = arrays.get(f"signals/{i}")
        if raw is None:
            raise ValueError(f"{where}no signals")
        try:
            signals = validate_signals(raw, len(df))
        except ValueError as exc:
            raise ValueError(f"{where}{exc}") from None
        out.append(FrameResult(signals, features_of(arrays, i, len(df), where)))
    return tuple(out)
