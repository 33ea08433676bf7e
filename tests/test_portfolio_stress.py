"""Stress for portfolios: the validation split's dates resampled jointly for every instrument (so a synthetic
date is one real date's cross-section), higher volatility, a crash of every instrument on one date; each
figure beside the equal-weight buy and hold of the same synthetic panel."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np

from alphaloop.tasks import get_task
from alphaloop.tasks.portfolio.driver import run_frame
from alphaloop.tasks.portfolio.outputs import decode
from alphaloop.tasks.portfolio.scoring import Panel
from alphaloop.tasks.portfolio.stress import run_portfolio_stress, stress_panels
from tests.portfolio_support import MOMENTUM, namespace, split_frames, universe_frames


def test_a_synthetic_date_is_one_real_dates_cross_section() -> None:
    histories = split_frames(universe_frames(n=4, days=700, seed=3))
    panel = Panel.of(histories)
    a, b = panel.windows["val"]
    real = np.log1p(panel.returns[a:b])  # each instrument's log close move on each validation date
    paths = stress_panels(histories, 3, seed=1)
    assert [name for name, _ in paths[::3]] == ["bootstrap", "vol_2x", "crash_20"]
    boot = paths[0][1]
    moves = np.stack([np.diff(np.log(h.frame["Close"].to_numpy()))[h.windows["val"].start - 1:] for h in boot], 1)
    matched = [np.flatnonzero(np.isclose(real, row, atol=1e-12).all(axis=1)) for row in moves]
    assert all(m.size for m in matched)  # every synthetic date is some real date, for all instruments at once
    crash = paths[6][1]
    gaps = np.stack([np.diff(np.log(h.frame["Close"].to_numpy()))[h.windows["val"].start - 1:] for h in crash], 1)
    day = np.flatnonzero(np.isclose(gaps, np.log(0.8)).all(axis=1))
    assert day.size == 1  # one date, every instrument -20%
    for h in crash:
        f = h.frame
        assert (f["High"] >= f[["Open", "Close"]].max(axis=1) - 1e-9).all()
        assert (f["Low"] <= f[["Open", "Close"]].min(axis=1) + 1e-9).all()


def test_a_ragged_universe_keeps_which_instruments_had_a_bar() -> None:
    """A synthetic date carries one real date's bars: the instruments without a bar that real date have none."""
    histories = split_frames(universe_frames(n=3, days=600, seed=5, ragged=True))
    real = Panel.of(histories)
    a, b = real.windows["val"]
    patterns = {tuple(row) for row in real.calendar.present[max(a, 1):b]}
    assert len(patterns) > 1
    for _, panel in stress_panels(histories, 2, seed=2)[::2]:
        synthetic = Panel.of(panel)
        s0, s1 = synthetic.windows["val"]
        rows = {tuple(row) for row in synthetic.calendar.present[s0:s1]}
        assert rows <= patterns and len(rows) > 1


class InProcess:
    """A stand-in for the sandbox (tests only): runs each panel in this process and decodes it as the parent."""

    def run(self, region: str, frames: list, timeout_s: float, task: str) -> SimpleNamespace:
        results = [decode(run_frame(namespace(region), tuple(p)), tuple(p)) for p in frames]
        return SimpleNamespace(ok=True, status="ok", reason="", results=results)


def test_the_suite_sets_each_scenario_beside_the_equal_weight_buy_and_hold() -> None:
    histories = split_frames(universe_frames(n=4, days=700, seed=3))
    result = run_portfolio_stress(MOMENTUM, histories, InProcess(), cost_bps=2.0, n_paths=3, seed=0, max_gross=1.0,
                                  task=get_task("portfolio"))
    assert result["status"] == "ok", result.get("reason")
    for sc in result["scenarios"].values():
        assert sc["paths"] == 3 and 0.0 <= sc["beat_buy_hold"] <= 1.0
        assert set(sc["buy_hold"]) == {"total_return", "max_drawdown"}
    assert result["scenarios"]["crash_20"]["buy_hold"]["max_drawdown"]["p50"] <= -0.19
    one, five = result["costs"]["1x"], result["costs"]["5x"]
    assert five["total_return"] < one["total_return"] and five["bh_total_return"] == one["bh_total_return"]
    assert result["penalty"] <= 0.0
