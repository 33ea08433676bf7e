"""The forecast task's reading of the sandbox child's arrays, in the trusted parent.

The child (``alphaloop/tasks/forecast/driver.py``) sends ``forecasts/<i>``, ``codes/<i>`` and
``feature/<i>/<column>`` per instrument i of a frame; ``decode`` checks them against the frame they
came from (nothing the child says about lengths or values is trusted) and returns one
``FrameResult`` per instrument, whose signals are all zero.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from alphaloop.tasks.forecast.validate import read_forecasts
from alphaloop.tasks.trade.outputs import FrameResult, features_of, known_names


def decode(arrays: dict[str, np.ndarray], panel: tuple[pd.DataFrame, ...]) -> tuple[FrameResult, ...]:
    """One ``FrameResult`` per instrument: validated probabilities, features, all-zero signals."""
    known_names(arrays, panel, ("forecasts", "codes"))
    prefix = len(panel) > 1
    return tuple(FrameResult(np.zeros(len(df), dtype=np.int8), features_of(arrays, i, len(df), f"frame {i}: "),
                             read_forecasts(arrays, i, df.index, f"frame {i}: " * prefix))
                 for i, df in enumerate(panel))
