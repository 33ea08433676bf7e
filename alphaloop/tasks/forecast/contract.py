"""The forecast region's contract: ``generate_features(df)`` and ``forecast(row)``.

``gate_check`` applies the project's gate to a forecast region, asking for the forecast task's two
functions instead of ``strategy_logic``.
``compute_forecasts`` runs a forecaster in-process, as the sandbox child does for the forecast task
(``driver.compute_forecast_rows`` then ``driver.decode_forecasts``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pandas as pd

from alphaloop.tasks.forecast.buckets import HORIZONS
from alphaloop.tasks.forecast.driver import compute_forecast_rows
from alphaloop.tasks.forecast.validate import DecodedForecasts, decode_forecasts
from sandbox.gate import GateResult, check
from sandbox.gate_tables import TASK_FUNCTIONS

FORECAST_FUNCTIONS = TASK_FUNCTIONS["forecast"]


def gate_check(source: str) -> GateResult:
    """The gate's verdict on a forecast region: its allow-list plus ``generate_features`` and ``forecast``."""
    return check(source, FORECAST_FUNCTIONS)


def compute_forecasts(generate_features: Callable[[pd.DataFrame], pd.DataFrame], forecast: Callable[[Any], Any],
                      df: pd.DataFrame) -> tuple[pd.DataFrame, DecodedForecasts]:
    """Run a forecaster's two functions on ``df``: its feature frame and the decoded (unvalidated) forecasts."""
    features, raw = compute_forecast_rows(generate_features, forecast, df)
    return features, decode_forecasts(raw, HORIZONS)
