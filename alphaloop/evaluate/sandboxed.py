"""The sandbox as alphaloop opens it: every task's child driver and its trusted decoder, handed in.

``sandbox/`` imports nothing from alphaloop; what differs per task reaches it here, as the text of
the task's driver module (``alphaloop/tasks/<task>/driver.py``) and the function that validates the
arrays the child sends back. ``open_sandbox`` and ``open_pool`` are the only places a sandbox is
built, so ``check``, the loop, ``final``, ``finish`` and ``python trade.py`` run candidates alike.
"""

from __future__ import annotations

from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import pandas as pd

from alphaloop.tasks.forecast import driver as forecast_driver
from alphaloop.tasks.forecast.validate import read_forecasts
from alphaloop.tasks.portfolio import driver as portfolio_driver
from alphaloop.tasks.portfolio.outputs import decode as decode_portfolio
from alphaloop.tasks.trade import driver as trade_driver
from alphaloop.tasks.trade.outputs import FrameResult, features_of, known_names
from alphaloop.tasks.trade.outputs import decode as decode_trade
from sandbox.pool import SandboxPool
from sandbox.runner import Driver, Sandbox

__all__ = ["FrameResult", "drivers", "open_pool", "open_sandbox"]


def decode_forecast(arrays: dict[str, np.ndarray], panel: tuple[pd.DataFrame, ...]) -> tuple[FrameResult, ...]:
    """One ``FrameResult`` per instrument: validated probabilities, features, all-zero signals."""
    known_names(arrays, panel, ("forecasts", "codes"))
    prefix = len(panel) > 1
    return tuple(FrameResult(np.zeros(len(df), dtype=np.int8), features_of(arrays, i, len(df), f"frame {i}: "),
                             read_forecasts(arrays, i, df.index, f"frame {i}: " * prefix))
                 for i, df in enumerate(panel))


def _source(module: ModuleType) -> str:
    return Path(str(module.__file__)).read_text(encoding="utf-8")


def drivers() -> dict[str, Driver]:
    """Every task's driver, the trade task's first (the default of ``Sandbox.run``); the portfolio task's
    decoder checks names and shapes, its contract the weights' values (``alphaloop.tasks.portfolio``)."""
    return {"trade": Driver(_source(trade_driver), decode_trade),
            "forecast": Driver(_source(forecast_driver), decode_forecast),
            "portfolio": Driver(_source(portfolio_driver), decode_portfolio)}


def open_sandbox(**kwargs: Any) -> Sandbox:
    """A ``Sandbox`` that can run every task (``run(..., task=name)``); keyword arguments as ``Sandbox``'s."""
    return Sandbox(drivers=drivers(), **kwargs)


def open_pool(size: int = 1, **kwargs: Any) -> SandboxPool:
    """A ``SandboxPool`` of ``size`` workers built by ``open_sandbox``."""
    return SandboxPool(size, factory=lambda: open_sandbox(**kwargs))
