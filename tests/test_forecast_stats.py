"""SPA of forecasters against climatology on per-day RPS losses, with a block bootstrap."""

from __future__ import annotations

import numpy as np
import pytest

from alphaloop.tasks.forecast.scores import score_forecasts
from alphaloop.tasks.forecast.stats import SPA_BLOCK, forecast_spa, forecast_statistics, format_forecast_statistics
from tests.forecast_support import history_of, scheme_of, synthetic_bars


@pytest.fixture(scope="module")
def scored():
    history = history_of(synthetic_bars(2000, seed=11))
    scheme = scheme_of(history)
    close = history.frame["Close"].to_numpy()
    n = len(close)
    clim = np.broadcast_to(scheme.climatology, (n, 4, 3)).copy()
    skilful = clim.copy()
    rng = np.random.default_rng(5)
    for w in history.windows.values():
        b = scheme.outcomes(close[w]).buckets
        known = np.isfinite(b)
        # right two times in three with 0.5 on the call: informative but far from an oracle
        call = np.where(known & (rng.random(b.shape) < 2 / 3), np.nan_to_num(b), rng.integers(0, 3, b.shape))
        skilful[w] = np.where(np.arange(3) == call[..., None], 0.5, 0.25)
    noise = rng.dirichlet([20, 20, 20], size=(n, 4))
    return {name: score_forecasts(history, p, scheme=scheme, folds=0)
            for name, p in (("clim", clim), ("skilful", skilful), ("noise", noise))}


def test_a_skilful_forecaster_beats_climatology(scored):
    clim = scored["clim"].clim_losses["val"]
    assert scored["skilful"].splits["val"]["rps_skill_mean"] > 0.05
    p = forecast_spa(clim, [scored["skilful"].losses["val"], scored["noise"].losses["val"]], reps=300)
    assert p["consistent"] < 0.01
    with_clim = forecast_spa(clim, [scored["clim"].losses["val"], scored["skilful"].losses["val"]], reps=300)
    assert with_clim["consistent"] < 0.01


def test_climatology_itself_and_noise_do_not(scored):
    """The climatology scored as a candidate has a zero loss differential every day: never significant."""
    clim = scored["clim"].clim_losses["val"]
    assert forecast_spa(clim, [scored["clim"].losses["val"]], reps=300)["consistent"] > 0.2
    assert forecast_spa(clim, [scored["noise"].losses["val"]], reps=300)["consistent"] > 0.2


def test_statistics_count_trials_and_say_where_they_were_measured(scored):
    clim = scored["clim"].clim_losses["val"]
    d = forecast_statistics(12, clim, [scored["noise"].losses["val"]],
                            [scored["noise"].splits["val"]["rps_skill_mean"]], reps=200)
    assert d["trials"] == 12 and d["scored_trials"] == 1 and d["spa_block"] == SPA_BLOCK == 10
    assert "no forecaster beats climatology" in d["verdict_spa"]
    text = format_forecast_statistics(d)
    assert "measured on the val split" in text
    assert forecast_statistics(3, clim, [], [])["spa_pvalues"] is None


def test_misaligned_or_short_losses_are_refused(scored):
    clim = scored["clim"].clim_losses["val"]
    with pytest.raises(ValueError, match="against a climatology"):
        forecast_spa(clim, [clim[:-1]])
    with pytest.raises(ValueError, match="too few"):
        forecast_spa(clim[:15], [clim[:15]])
