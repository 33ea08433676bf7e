"""Buckets, proper scores, skill, calibration and grades of the forecast task."""

from __future__ import annotations

import json

import numpy as np
import pytest

from alphaloop.tasks.forecast.buckets import HORIZONS, BucketScheme, forward_returns
from alphaloop.tasks.forecast.scores import GRADES, SUMMARY_KEYS, grade, reliability, rps, score_forecasts
from tests.forecast_support import history_of, scheme_of, synthetic_bars


@pytest.fixture(scope="module")
def history():
    return history_of(synthetic_bars(1500, seed=3))


def outcome_probs(history, scheme: BucketScheme, hit: float) -> np.ndarray:
    """Forecasts that put ``hit`` on the bucket that happened (split by split), the rest shared evenly."""
    close = history.frame["Close"].to_numpy()
    probs = np.full((len(close), len(HORIZONS), 3), 1 / 3)
    for w in history.windows.values():
        b = scheme.outcomes(close[w]).buckets
        known = np.isfinite(b)
        onehot = np.arange(3) == np.where(known, b, 0)[..., None]
        probs[w] = np.where(known[..., None], np.where(onehot, hit, (1 - hit) / 2), 1 / 3)
    return probs


def test_forward_returns_stay_inside_the_window():
    r = forward_returns(np.array([100.0, 110.0, 121.0, 133.1]), (1, 3))
    assert r[0, 1] == pytest.approx(0.331)
    assert np.isnan(r[1:, 1]).all() and np.isnan(r[3, 0])
    assert r[:3, 0] == pytest.approx([0.1, 0.1, 0.1])


def test_train_terciles_make_the_climatology_one_third_each(history):
    scheme = scheme_of(history)
    assert scheme.climatology == pytest.approx(np.full((4, 3), 1 / 3), abs=2e-3)
    assert (scheme.cuts[:, 0] < 0).all() and (scheme.cuts[:, 1] > 0).all()
    assert (np.diff(scheme.cuts[:, 1]) > 0).all()  # longer horizons, wider moves
    rec = scheme.to_json()
    assert set(rec["cut_points"]) == {"1", "3", "5", "10"} and rec["split"] == "train"


def test_constant_one_third_has_skill_zero_on_train(history):
    s = score_forecasts(history, np.full((len(history.frame), 4, 3), 1 / 3), folds=2)
    train = s.splits["train"]
    assert train["rps_skill_mean"] == pytest.approx(0.0, abs=1e-4)
    assert all(v == pytest.approx(0.0, abs=1e-4) for v in train["rps_skill"].values())
    assert all(v == pytest.approx(np.log(3)) for v in train["log_score"].values())
    assert all(g["reasonable_miss"] > 0 and g["calibrated_correct"] == 0 for g in train["grades"].values())
    assert all(r == 0.0 for r in train["reward"].values())


def test_the_climatology_forecast_has_skill_exactly_zero_on_every_split(history):
    scheme = scheme_of(history)
    probs = np.broadcast_to(scheme.climatology, (len(history.frame), 4, 3)).copy()
    s = score_forecasts(history, probs, scheme=scheme, folds=3)
    for summary in [s.splits["train"], s.splits["val"], *s.folds]:
        assert summary["rps_skill_mean"] == pytest.approx(0.0, abs=1e-12)
        # its buckets differ by far less than a call's margin, so no day counts as a correct call
        assert all(g["calibrated_correct"] == 0 for g in summary["grades"].values())
        assert all(r == 0.0 for r in summary["reward"].values())


def test_overconfident_forecaster_is_punished(history):
    rng = np.random.default_rng(0)
    n = len(history.frame)
    pick = rng.integers(0, 3, size=(n, 4))
    probs = np.where(np.arange(3) == pick[..., None], 0.96, 0.02)
    s = score_forecasts(history, probs, folds=2)
    for split in ("train", "val"):
        m = s.splits[split]
        assert m["rps_skill_mean"] < -0.5
        for h in m["grades"]:
            assert m["grades"][h]["overconfident_wrong"] > m["grades"][h]["calibrated_correct"]
            assert m["reward"][h] < -0.3
            assert m["ece"][h] > 0.3


def test_knowing_the_outcome_gives_positive_skill_and_calibrated_correct_grades(history):
    scheme = scheme_of(history)
    s = score_forecasts(history, outcome_probs(history, scheme, 0.8), scheme=scheme, folds=2)
    val = s.splits["val"]
    assert val["rps_skill_mean"] > 0.5
    assert all(g["calibrated_correct"] == sum(g.values()) for g in val["grades"].values())
    assert all(r == 1.0 for r in val["reward"].values())
    d = s.details["val"]["1"]
    assert d["direction_accuracy"] > 0.9
    assert d["best_days"][0]["rps"] <= d["worst_days"][0]["rps"]
    assert sum(d["most_probable"].values()) == d["n"]


def test_grades_follow_the_stated_thresholds():
    probs = np.array([
        [0.6, 0.3, 0.1],  # realised 0, most probable, not extreme -> calibrated_correct
        [0.95, 0.04, 0.01],  # realised 0 but p > 0.9 -> other
        [0.5, 0.3, 0.2],  # realised 1, p 0.3 -> reasonable_miss
        [0.8, 0.17, 0.03],  # realised 2, p < 0.05 while 0.8 on another -> overconfident_wrong
        [0.6, 0.3, 0.1],  # realised 2, p 0.1 but nothing >= 0.7 -> other
        [0.4, 0.4, 0.2],  # realised 0, tied for the top -> reasonable_miss, not correct
        [0.35, 0.34, 0.31],  # realised 0, ahead by less than the call margin -> reasonable_miss
    ])
    buckets = np.array([0, 0, 1, 2, 2, 0, 0])
    got = [GRADES[g] for g in grade(probs, buckets)]
    assert got == ["calibrated_correct", "other", "reasonable_miss", "overconfident_wrong", "other",
                   "reasonable_miss", "reasonable_miss"]


def test_rps_matches_the_ordered_definition():
    p = np.array([[0.2, 0.5, 0.3]])
    # cumulative forecast 0.2, 0.7, 1; realised "up" -> cumulative outcome 0, 0, 1
    assert rps(p, np.array([2]))[0] == pytest.approx(0.2**2 + 0.7**2)
    # a miss by two buckets costs more than a miss by one
    assert rps(np.array([[0.9, 0.05, 0.05]]), np.array([2]))[0] > rps(np.array([[0.05, 0.9, 0.05]]), np.array([2]))[0]


def test_reliability_of_a_calibrated_forecaster_is_close():
    rng = np.random.default_rng(1)
    p_up = rng.uniform(0.05, 0.6, 20000)
    probs = np.column_stack([(1 - p_up) / 2, (1 - p_up) / 2, p_up])
    u = rng.random(20000)
    buckets = np.where(u < probs[:, 0], 0, np.where(u < probs[:, 0] + probs[:, 1], 1, 2))
    table, ece = reliability(probs, buckets)
    assert ece < 0.02
    assert sum(row["count"] for row in table) == probs.size


def test_to_json_holds_exactly_the_verdict_keys_per_split_and_fold(history):
    s = score_forecasts(history, np.full((len(history.frame), 4, 3), 1 / 3), folds=3)
    out = json.loads(json.dumps(s.to_json()))
    assert set(out["splits"]) == {"train", "val"}
    for summary in out["splits"].values():
        assert set(summary) == set(SUMMARY_KEYS)
        assert set(summary["rps_skill"]) == {"1", "3", "5", "10"}
        assert set(summary["grades"]["10"]) == set(GRADES)
    assert len(out["folds"]) == 3
    assert all(set(f) == set(SUMMARY_KEYS) | {"start", "end"} for f in out["folds"])
    assert out["metric"] == "rps_skill_mean" and out["selection_val"] == s.splits["val"]["rps_skill_mean"]
    assert s.losses["val"].shape == s.clim_losses["val"].shape == (history.windows["val"].stop
                                                                     - history.windows["val"].start - 10,)


def test_wrong_shape_is_refused(history):
    with pytest.raises(ValueError, match="shape"):
        score_forecasts(history, np.full((10, 4, 3), 1 / 3))
