"""The forecast region's contract: ``generate_features(df)`` and ``forecast(row)``.

``gate_check`` applies the project's gate to a forecast region. Today's gate requires
``strategy_logic``; until it takes the task's function names, a forwarding ``strategy_logic`` is
appended (after the region, so reported line numbers stay right) and ``forecast`` is checked here.
``compute_forecasts`` is what the sandbox child has to run for the forecast task, mirroring
``alphaloop.candidate.compute_signals``.
"""

from __future__ import annotations

import ast
from collections.abc import Callable
from typing import Any

import pandas as pd

from alphaloop.candidate import Row
from alphaloop.forecast.buckets import HORIZONS
from alphaloop.forecast.validate import DecodedForecasts, decode_forecasts
from sandbox.gate import GateResult, check

FORECAST_FUNCTIONS = ("generate_features", "forecast")
GATE_SHIM = "\n\ndef strategy_logic(row):\n    return 0\n"


def gate_check(source: str) -> GateResult:
    """The gate's verdict on a forecast region, plus the check that ``forecast(row)`` is defined."""
    try:
        tree = ast.parse(source)
    except (SyntaxError, ValueError):
        return check(source)
    defs = {s.name: s for s in tree.body if isinstance(s, ast.FunctionDef)}
    result = check(source if "strategy_logic" in defs else source.rstrip("\n") + GATE_SHIM)
    if not result.ok:
        return result
    node = defs.get("forecast")
    if node is None:
        return refusal(None, "the region must define forecast(row) at top level")
    positional = node.args.posonlyargs + node.args.args
    required = len(positional) - len(node.args.defaults)
    if (not positional and node.args.vararg is None) or required > 1 or any(d is None for d in node.args.kw_defaults):
        return refusal(node.lineno, "forecast must accept exactly one positional argument")
    return result


def refusal(line: int | None, message: str) -> GateResult:
    """A contract refusal worded like the gate's own."""
    where = f"line {line}: " if line is not None else ""
    return GateResult(False, "contract", line, f"{where}{message} (rule: contract)")


def compute_forecasts(generate_features: Callable[[pd.DataFrame], pd.DataFrame], forecast: Callable[[Any], Any],
                      df: pd.DataFrame) -> tuple[pd.DataFrame, DecodedForecasts]:
    """Run a forecaster's two functions on ``df``: its feature frame and the decoded (unvalidated) forecasts."""
    features = generate_features(df.copy())
    if not isinstance(features, pd.DataFrame):
        raise TypeError(f"generate_features must return a DataFrame, got {type(features).__name__}")
    if len(features) != len(df):
        raise ValueError(f"generate_features returned {len(features)} rows for {len(df)} input rows")
    columns = [str(c) for c in features.columns]
    values = [features[c].tolist() for c in features.columns]
    if columns:
        raw = [forecast(Row(zip(columns, vals, strict=True))) for vals in zip(*values, strict=True)]
    else:
        raw = [forecast(Row()) for _ in range(len(features))]
    return features, decode_forecasts(raw, HORIZONS)
