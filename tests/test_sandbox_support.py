"""Shared helpers for the tests and benchmarks (no tests of its own).

Import as ``from tests.test_sandbox_support import ...``. Synthetic data only: a seeded random
walk, so nothing depends on the network or shared files.
"""

from __future__ import annotations

import os
import textwrap
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from alphaloop.candidate import compute_signals, validate_signals

CORPUS_DIR = Path(__file__).resolve().parent / "corpus" / "ordinary"

# The real builtins, reached through pandas: what a candidate gets once the gate is switched off.
BUILTINS = "pd.DataFrame.__init__.__globals__['__builtins__']"
# A region prelude that binds ``B`` (the real builtins) and ``os`` without an import statement.
ESCAPE = f"B = {BUILTINS}\nos = B['__import__']('os')\n"
# A features body that patches pandas and numpy in the process running it, then records (in the
# ``seen_*`` columns, all 99.0 when the patches took) that they took effect.
MONKEYPATCH = (
    "pd.Series.mean = lambda self, *a, **k: 99.0\n"
    "np.mean = lambda *a, **k: 99.0\n"
    "pd.core.window.rolling.Rolling.mean = lambda self, *a, **k: self.obj * 0 + 99.0\n"
    "pd.DataFrame.to_dict = lambda self, *a, **k: [{'x': 1}] * len(self)\n"
    "df['seen_mean'] = df['Close'].mean()\n"
    "df['seen_np_mean'] = np.mean(df['Close'].to_numpy())\n"
    "df['seen_rolling'] = df['Close'].rolling(5).mean()\n"
)


def make_ohlcv(n: int = 600, seed: int = 0, start: str = "2001-01-02") -> pd.DataFrame:
    """A seeded random-walk OHLCV (+ Adj Close) frame on business days, index named ``Date``."""
    rng = np.random.default_rng(seed)
    close = 100.0 * np.exp(np.cumsum(rng.normal(0.0003, 0.012, n)))
    open_ = close * np.exp(rng.normal(0.0, 0.004, n))
    high = np.maximum(open_, close) * np.exp(np.abs(rng.normal(0.0, 0.004, n)))
    low = np.minimum(open_, close) * np.exp(-np.abs(rng.normal(0.0, 0.004, n)))
    volume = rng.integers(1_000_000, 5_000_000, n).astype(np.float64)
    index = pd.bdate_range(start, periods=n, name="Date")
    return pd.DataFrame({"Open": open_, "High": high, "Low": low, "Close": close, "Volume": volume,
                         "Adj Close": close}, index=index)


def region(features_body: str, logic_body: str = "return 0", prelude: str = "") -> str:
    """A candidate region: generate_features runs ``features_body`` then returns ``df``;
    strategy_logic(row) runs ``logic_body``. Bodies may be indented as a block (they are dedented)."""
    def indent(text: str) -> str:
        return "".join(f"    {line}\n" for line in textwrap.dedent(text).strip("\n").splitlines())

    return (f"{prelude}\ndef generate_features(df):\n{indent(features_body)}    return df\n\n\n"
            f"def strategy_logic(row):\n{indent(logic_body)}")


def numeric_features(features: pd.DataFrame) -> dict[str, np.ndarray]:
    """The numeric and boolean columns as float64, as the sandbox's child returns them (first
    column of a duplicated name wins)."""
    out: dict[str, np.ndarray] = {}
    for i, name in enumerate(features.columns):
        column = features.iloc[:, i]
        if str(name) in out or not (pd.api.types.is_numeric_dtype(column.dtype)
                                    or pd.api.types.is_bool_dtype(column.dtype)):
            continue
        out[str(name)] = column.to_numpy(dtype=np.float64, na_value=np.nan)
    return out


def run_in_process(source: str, frames: list[pd.DataFrame]) -> list[tuple[np.ndarray, dict[str, np.ndarray]]]:
    """Run a region directly, without isolation, on each frame (fresh globals per frame, like the
    sandbox's process per frame): the truth to compare the sandbox's arrays with. Never for untrusted code."""
    out = []
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")
        for df in frames:
            env: dict[str, Any] = {"pd": pd, "np": np}
            exec(compile(source, "<candidate>", "exec"), env)
            features, raw = compute_signals(env["generate_features"], env["strategy_logic"], df)
            out.append((validate_signals(raw, len(df)), numeric_features(features)))
    return out


def in_process(source: str, df: pd.DataFrame) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """``run_in_process`` on a single frame: (signals, numeric features)."""
    return run_in_process(source, [df])[0]


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
    """Equal values to the last few ulps, NaN where the other has NaN.

    Bit-equality is too strict: LAPACK-backed features (``np.polyfit`` inside ``rolling.apply``) round
    differently with the buffer's memory alignment, which differs between two processes (seen with
    pandas 3.1: relative differences of 1e-11 on 94 of 600 rows). The wire format itself is exact;
    the signals are compared bit for bit.
    """
    return a.shape == b.shape and bool(np.allclose(a, b, rtol=1e-9, atol=0.0, equal_nan=True))
