"""Shared fixtures: frozen sample data, a synthetic OHLCV frame, and an in-process runner.

The in-process runner executes a region in this process with the sandbox's result shapes; it is
a test double for detectors that take results, never a way to run untrusted code.
"""

from __future__ import annotations

import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from alphaloop.candidate import compute_signals, validate_signals
from alphaloop.data import freeze, sample_frame, split, validate


@pytest.fixture(scope="session")
def frozen_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The bundled S&P 500 sample, validated, split and frozen once per session (no network)."""
    frame, name = sample_frame("SPY")
    frame, repairs = validate(frame, label="sample")
    out = tmp_path_factory.mktemp("frozen") / "data"
    freeze(split(frame), out, "sample", name, repairs)
    return out


def make_ohlcv(n: int = 600, seed: int = 0, start: str = "2001-01-02") -> pd.DataFrame:
    """A seeded random-walk OHLCV frame on business days."""
    rng = np.random.default_rng(seed)
    close = 100.0 * np.exp(np.cumsum(rng.normal(0.0003, 0.012, n)))
    open_ = close * np.exp(rng.normal(0.0, 0.004, n))
    high = np.maximum(open_, close) * np.exp(np.abs(rng.normal(0.0, 0.004, n)))
    low = np.minimum(open_, close) * np.exp(-np.abs(rng.normal(0.0, 0.004, n)))
    volume = rng.integers(1_000_000, 5_000_000, n).astype(np.float64)
    index = pd.bdate_range(start, periods=n, name="Date")
    return pd.DataFrame({"Open": open_, "High": high, "Low": low, "Close": close, "Volume": volume,
                         "Adj Close": close}, index=index)


@pytest.fixture
def ohlcv() -> pd.DataFrame:
    return make_ohlcv()


@dataclass
class LocalFrameResult:
    signals: np.ndarray
    features: dict[str, np.ndarray]


@dataclass
class LocalOutcome:
    status: str
    reason: str = ""
    results: list[LocalFrameResult] | None = None
    log: str = ""
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return self.status == "ok"


@dataclass
class InProcessSandbox:
    """Same calls and result shapes as ``sandbox.runner.Sandbox``, without any isolation."""

    timeout_s: float = 30.0
    layers: list[str] = field(default_factory=lambda: ["in-process (tests only, no isolation)"])
    calls: list[int] = field(default_factory=list)  # frames per run, so tests can count runs

    def __enter__(self) -> "InProcessSandbox":
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def describe(self) -> str:
        return "isolation: in-process (tests only) (missing: every layer)"

    def run(self, region: str, frames: list[pd.DataFrame], timeout_s: float | None = None) -> LocalOutcome:
        self.calls.append(len(frames))
        start = time.perf_counter()
        scope: dict = {"pd": pd, "np": np}
        results = []
        try:
            with warnings.catch_warnings(), np.errstate(all="ignore"):
                warnings.simplefilter("ignore")
                exec(compile(region, "<candidate>", "exec"), scope)
                for frame in frames:
                    feats, raw = compute_signals(scope["generate_features"], scope["strategy_logic"], frame)
                    signals = validate_signals(raw, len(frame))
                    numeric = feats.select_dtypes(include=["number", "bool"])
                    results.append(LocalFrameResult(signals, {str(c): numeric[c].to_numpy(dtype=np.float64)
                                                              for c in numeric.columns}))
        except Exception as exc:  # a candidate's failure is an outcome, as in the real sandbox
            return LocalOutcome("exception", f"{type(exc).__name__}: {exc}", None, "", time.perf_counter() - start)
        return LocalOutcome("ok", "", results, "", time.perf_counter() - start)


@pytest.fixture
def local_sandbox() -> InProcessSandbox:
    return InProcessSandbox()


@pytest.fixture(scope="session")
def real_sandbox():
    """The real sandbox, started once per session; tests using it skip where it cannot start."""
    runner = pytest.importorskip("sandbox.runner")
    try:
        box = runner.Sandbox(timeout_s=60.0)
    except RuntimeError as exc:
        pytest.skip(f"sandbox unavailable: {exc}")
    with box:
        yield box
