"""The offline forecaster search: regions pass the gate, chain by spec, use only the past, and find skill."""

from __future__ import annotations

import numpy as np
import pytest

from alphaloop.propose.base import ProposalContext
from alphaloop.tasks.forecast.contract import compute_forecasts, gate_check
from alphaloop.tasks.forecast.offline import BASELINE_SPEC, OfflineForecastProposer, render, spec_of
from alphaloop.tasks.forecast.scores import score_forecasts
from alphaloop.tasks.forecast.validate import validate_forecasts
from tests.forecast_support import exec_region, history_of, scheme_of, synthetic_bars

VOL_TREND = {"conditions": [{"kind": "vol", "window": 20, "lookback": 250}, {"kind": "trend", "window": 100}],
             "prior": 30, "memory": 0}


def context(iteration: int, region: str) -> ProposalContext:
    return ProposalContext(iteration=iteration, parent_iteration=iteration - 1, parent_region=region,
                           metric="rps_skill_mean", population=[], learnings="", last_outcome=None)


def run_region(region: str, df):
    scope = exec_region(region)
    _, decoded = compute_forecasts(scope["generate_features"], scope["forecast"], df)
    return validate_forecasts(decoded.probs, df.index, decoded.codes)


def test_a_chain_of_proposals_passes_the_gate_and_records_its_spec():
    proposer = OfflineForecastProposer(seed=4)
    region = "def generate_features(df):\n    return df\n"
    specs = []
    for i in range(1, 31):
        p = proposer.propose(context(i, region))
        verdict = gate_check(p.region)
        assert verdict.ok, (verdict.reason, p.region)
        assert p.expectation.metric == "rps_skill_mean" and p.hypothesis and p.change
        assert "import" not in p.region and "lambda" not in p.region
        spec = spec_of(p.region)
        assert spec is not None and spec != spec_of(region)
        specs.append(spec)
        region = p.region
    assert len({str(s["conditions"]) for s in specs}) > 3


def test_the_same_seed_gives_the_same_proposal():
    a = OfflineForecastProposer(seed=1).propose(context(5, render(VOL_TREND)))
    b = OfflineForecastProposer(seed=1).propose(context(5, render(VOL_TREND)))
    assert a.region == b.region and a.hypothesis == b.hypothesis
    assert spec_of(render(VOL_TREND)) == VOL_TREND


def test_gate_check_needs_forecast_and_still_applies_the_gate():
    assert not gate_check("def generate_features(df):\n    return df\n").ok
    assert "forecast" in gate_check("def generate_features(df):\n    return df\n").reason
    bad = render(BASELINE_SPEC) + "\n\ndef helper(x):\n    return open(x)\n"
    verdict = gate_check(bad)
    assert not verdict.ok and verdict.rule != "contract"


@pytest.fixture(scope="module")
def bars():
    return synthetic_bars(2500, seed=7)


def test_planted_volatility_regimes_are_forecast_with_positive_skill(bars):
    history = history_of(bars)
    spec = {"conditions": [{"kind": "vol", "window": 10, "lookback": 250}], "prior": 30, "memory": 0}
    probs = run_region(render(spec), history.frame)
    s = score_forecasts(history, probs, scheme=scheme_of(history), folds=2)
    assert s.splits["val"]["rps_skill_mean"] > 0.06
    assert all(v > 0 for v in s.splits["val"]["rps_skill"].values())
    assert s.splits["train"]["rps_skill_mean"] > 0.0
    base = run_region(render(BASELINE_SPEC), history.frame)
    assert score_forecasts(history, base, folds=2).splits["val"]["rps_skill_mean"] + 0.05 < \
        s.splits["val"]["rps_skill_mean"]


def test_forecasts_at_a_bar_do_not_change_when_the_future_is_cut_off(bars):
    region = render({**VOL_TREND, "memory": 500})
    full = run_region(region, bars.iloc[:1200])
    cut = run_region(region, bars.iloc[:900])
    assert np.allclose(full[:900], cut, equal_nan=True)
    assert np.allclose(full[:260], 1 / 3)  # warm-up returns one third each


def test_a_region_that_skips_horizons_during_warm_up_is_rejected_with_the_date(bars):
    region = '''
def generate_features(df):
    df["vol"] = (df["Close"] / df["Close"].shift(1) - 1).rolling(20).std()
    return df


def forecast(row):
    if row["vol"] != row["vol"]:
        return {1: (1 / 3, 1 / 3, 1 / 3)}
    return {h: (0.3, 0.4, 0.3) for h in (1, 3, 5, 10)}
'''
    assert gate_check(region).ok
    with pytest.raises(ValueError, match=r"^horizon 3 on 2001-01-02: the horizon is missing.*20 rows fail"):
        run_region(region, bars.iloc[:100])
