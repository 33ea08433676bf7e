"""Shared fixtures and doubles: frozen sample data, an in-process runner and the real sandbox.

The in-process runner executes a region in this process with the sandbox's result types; it is a
test double for detectors that take results, never a way to run untrusted code. The helpers it is
built on (and ``make_ohlcv``) live in ``tests/test_sandbox_support.py``; they are re-exported here
for tests that import them from ``tests.conftest``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from alphaloop.data.frozen import freeze, sample_frame, split, validate
from alphaloop.evaluate.sandboxed import FrameResult, open_sandbox
from sandbox.runner import RunOutcome
from tests.test_sandbox_support import make_ohlcv, run_in_process

FIXED_NONCE = 1  # tests probe alike on every run; catches are probabilistic (see probes.py), as with any one nonce


@pytest.fixture(autouse=True)
def fixed_probe_nonce(monkeypatch: pytest.MonkeyPatch) -> None:
    """A run's probe nonce is secret and drawn per run; a test needs the same probes every time."""
    import alphaloop.evaluate.pipeline as pipeline

    monkeypatch.setattr(pipeline, "new_nonce", lambda: FIXED_NONCE)

__all__ = ["InProcessSandbox", "make_ohlcv"]


@pytest.fixture(scope="session")
def frozen_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The bundled S&P 500 sample, validated, split and frozen once per session (no network)."""
    frame, name = sample_frame("SPY")
    frame, repairs = validate(frame, label="sample")
    out = tmp_path_factory.mktemp("frozen") / "data"
    freeze(split(frame), out, "sample", name, repairs)
    return out


@dataclass
class InProcessSandbox:
    """Same calls and result types as ``sandbox.runner.Sandbox``, without any isolation."""

    timeout_s: float = 30.0
    layers: list[str] = field(default_factory=lambda: ["in-process (tests only, no isolation)"])
    calls: list[int] = field(default_factory=list)  # frames per run, so tests can count runs

    def __enter__(self) -> InProcessSandbox:
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def describe(self) -> str:
        return "isolation: in-process (tests only) (missing: every layer)"

    def run(self, region: str, frames: list, timeout_s: float | None = None, task: str | None = None) -> RunOutcome:
        """Like the real sandbox with the trade task's driver: each frame (a panel tuple, or a bare DataFrame
        for a panel of one) runs in fresh globals; a panel's result is a tuple, a bare frame's is unwrapped."""
        assert task in (None, "trade"), f"the in-process sandbox runs the trade task's driver only, not {task!r}"
        self.calls.append(len(frames))
        start = time.perf_counter()
        results: list = []
        try:
            for frame in frames:
                panel = frame if isinstance(frame, tuple) else (frame,)
                out = tuple(FrameResult(signals, features) for signals, features in run_in_process(region, list(panel)))
                results.append(out if isinstance(frame, tuple) else out[0])
        except Exception as exc:  # a candidate's failure is an outcome, as in the real sandbox
            return RunOutcome("exception", f"{type(exc).__name__}: {exc}", None, "", time.perf_counter() - start)
        return RunOutcome("ok", "", results, "", time.perf_counter() - start)


@pytest.fixture(scope="session")
def real_sandbox():
    """The real sandbox, started once per session (per xdist worker); skips where it cannot start."""
    try:
        box = open_sandbox(timeout_s=60.0)
    except RuntimeError as exc:
        pytest.skip(f"sandbox unavailable: {exc}")
    with box:
        yield box
