"""Shared helpers for the sandbox and gate tests (no tests of its own).

Synthetic data only: a seeded random walk, so nothing depends on the network or shared files.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from alphaloop.candidate import compute_signals, validate_signals

CORPUS_DIR = Path(__file__).resolve().parent / "corpus" / "ordinary"


def make_ohlcv(n: int = 600, seed: int = 0, start: str = "2015-01-02") -> pd.DataFrame:
    """A seeded random-walk OHLCV frame with a business-day DatetimeIndex named ``Date``."""
    rng = np.random.default_rng(seed)
    close = 100.0 * np.exp(np.cumsum(rng.normal(0.0002, 0.012, n)))
    open_ = close * (1.0 + rng.normal(0.0, 0.003, n))
    high = np.maximum(open_, close) * (1.0 + np.abs(rng.normal(0.0, 0.004, n)))
    low = np.minimum(open_, close) * (1.0 - np.abs(rng.normal(0.0, 0.004, n)))
    volume = rng.integers(100_000, 2_000_000, n).astype(np.int64)
    index = pd.bdate_range(start, periods=n, name="Date")
    return pd.DataFrame({"Open": open_, "High": high, "Low": low, "Close": close, "Volume": volume},
                        index=index)


def region(features_body: str, logic_body: str = "return 0", prelude: str = "") -> str:
    """A candidate region whose generate_features runs ``features_body`` and returns ``df``."""
    def indent(text: str) -> str:
        return "".join(f"    {line}\n" for line in text.strip("\n").splitlines())

    return (f"{prelude}\ndef generate_features(df):\n{indent(features_body)}    return df\n\n\n"
            f"def strategy_logic(row):\n{indent(logic_body)}")


def in_process(source: str, df: pd.DataFrame) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """The same region run directly, for comparing the sandbox's arrays with the truth."""
    env: dict[str, Any] = {"pd": pd, "np": np}
    exec(compile(source, "<candidate>", "exec"), env)
    features, raw = compute_signals(env["generate_features"], env["strategy_logic"], df)
    signals = validate_signals(raw, len(df))
    numeric = {
        str(name): features.iloc[:, i].to_numpy(dtype=np.float64, na_value=np.nan)
        for i, name in enumerate(features.columns)
        if pd.api.types.is_numeric_dtype(features.iloc[:, i].dtype)
        or pd.api.types.is_bool_dtype(features.iloc[:, i].dtype)
    }
    return signals, numeric


def processes_with(token: str) -> list[int]:
    """Pids whose command line carries ``token`` (a sandbox's worker, its bwrap, its leftovers)."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as fh:
                if token.encode() in fh.read():
                    found.append(int(entry))
        except OSError:
            continue
    return found


def same_arrays(a: np.ndarray, b: np.ndarray) -> bool:
    """Equal values, NaN where the other has NaN."""
    return a.shape == b.shape and bool(np.array_equal(a, b, equal_nan=True))
