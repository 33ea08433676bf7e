"""The trade task's invariance probes on the whole panel: an allocate keyed to row numbers or day numbers is
rejected, whichever draw the run's nonce makes; ordinary cross-sectional momentum and mean reversion pass."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from alphaloop.tasks.portfolio.driver import run_frame, union_calendar
from alphaloop.tasks.portfolio.guards import portfolio_guards
from alphaloop.tasks.portfolio.invariance import judge_panel, panel_invariance
from tests.portfolio_support import DAY_KEYED, MOMENTUM, ROW_KEYED, namespace, split_frames, universe_frames

REVERSAL = '''
def generate_features(df):
    df["rev"] = -df["Close"].pct_change(5)
    df["vol"] = df["Close"].pct_change().rolling(60).std()
    return df

def allocate(day):
    score = (day["rev"] / day["vol"]).dropna()
    if len(score) < 2:
        return {}
    centred = score - score.mean()
    return (0.5 * centred / centred.abs().sum()).to_dict()
'''

EXPANDING_Z = '''
def generate_features(df):
    move = df["Close"].pct_change(20)
    df["z"] = (move - move.expanding(60).mean()) / move.expanding(60).std()
    return df

def allocate(day):
    z = day["z"].dropna()
    return {i: (0.2 if v > 0.5 else (-0.2 if v < -0.5 else 0.0)) for i, v in z.items()}
'''


def _frames() -> tuple[pd.DataFrame, ...]:
    """Ragged calendars, one instrument starting late and one ending early."""
    frames = list(universe_frames(n=5, days=1000, seed=4, ragged=True))
    frames[1], frames[3] = frames[1].iloc[120:], frames[3].iloc[:-150]
    return tuple(frames)


def _findings(region: str, seed: int):
    frames = _frames()
    full = run_frame(namespace(region), frames)
    probes = panel_invariance(frames, seed)
    features = [{k.split("/", 2)[2]: v for k, v in full.items() if k.startswith(f"feature/{i}/")}
                for i in range(len(frames))]
    return judge_panel(frames, full, features, probes, [run_frame(namespace(region), p.frames) for p in probes])


@pytest.mark.parametrize("seed", [1, 2])
def test_row_and_day_number_keys_are_rejected_and_cross_sectional_rules_pass(seed: int) -> None:
    row = dict(_findings(ROW_KEYED, seed).failures)
    assert set(row) == {"position_dependence"} and "allocate's weights depend on row positions" in \
        row["position_dependence"]
    day = dict(_findings(DAY_KEYED, seed).failures)
    assert "date_dependence" in day and "other years with the same calendar" in day["date_dependence"]
    for honest in (MOMENTUM, REVERSAL, EXPANDING_Z):  # an expanding statistic converges: not row-keyed
        found = _findings(honest, seed)
        assert found.kinds == {"date_shift", "level", "prepend", "trim"} and found.failures == ()


def test_one_draw_serves_every_instrument_and_keeps_the_union_calendars_shape() -> None:
    frames = _frames()
    dates = union_calendar(frames)
    probes = {p.probe.kind: p for p in panel_invariance(frames, 5)}
    shifted = union_calendar(probes["date_shift"].frames)
    assert len(shifted) == len(dates) and (shifted.day_of_week == dates.day_of_week).all() and (shifted != dates).any()
    for f, g in zip(frames, probes["level"].frames, strict=True):
        ratio = g["Close"].to_numpy() / f["Close"].to_numpy()
        assert np.allclose(ratio, ratio[0]) and np.log2(ratio[0]) == round(np.log2(ratio[0]))
    assert len({g["Close"].iloc[0] / f["Close"].iloc[0] for f, g in zip(frames, probes["level"].frames,
                                                                         strict=True)}) == 1
    prepend, trim = probes["prepend"].probe, probes["trim"].probe
    assert list(union_calendar(probes["prepend"].frames)[prepend.offset:]) == list(dates)
    assert list(union_calendar(probes["trim"].frames)) == list(dates[trim.start:])


def test_the_guards_rank_an_invariance_finding_first() -> None:
    histories = split_frames(universe_frames(n=3, days=400, seed=2))
    found = _findings(DAY_KEYED, 1)
    val = {"bars": 80.0, "gross_exposure": 1.0, "net_exposure": 0.0, "turnover": 20.0, "rebalances": 40.0}
    present = np.ones((80, 3), dtype=bool)
    report = portfolio_guards("", val, np.full((80, 3), 0.1), present, histories, [{}, {}, {}], invariance=found)
    assert report.failures[0][0] == "date_dependence" and "allocate's weights change" in report.reason
    assert report.values["date_shift"].startswith("allocate's weights change")


def test_every_task_names_a_hard_coded_date_in_the_words_of_its_outputs() -> None:
    """The static date guard fails a portfolio's weights and a forecaster's probabilities alike, first, and
    records what it found; without invariance probes the shift figures are None (not run), not "unchanged"."""
    from alphaloop.evaluate.guards import forecast_guards

    dated = "def allocate(df):\n    return df.index > '2002-06-03'\n"
    found = ["line 2: date-like string '2002-06-03'"]
    histories = split_frames(universe_frames(n=3, days=400, seed=2))
    val = {"bars": 80.0, "gross_exposure": 1.0, "net_exposure": 0.0, "turnover": 20.0, "rebalances": 40.0}
    report = portfolio_guards(dated, val, np.full((80, 3), 0.1), np.ones((80, 3), dtype=bool), histories,
                              [{}, {}, {}])
    assert report.failures == [("hard_coded_dates", f"hard-coded dates in the region ({found[0]}): weights must not "
                                                    "depend on particular dates")]
    assert report.values["hard_coded_dates"] == found
    assert [report.values[k] for k in ("date_shift", "level_shift", "position_shift")] == [None, None, None]
    ok, reason, details = forecast_guards(dated, [])
    assert not ok and reason == (f"hard-coded dates in the region ({found[0]}): forecasts must not depend on "
                                 "particular dates")
    assert details["hard_coded_dates"] == found and details["failed"] == ["hard_coded_dates"]
    assert forecast_guards("x = 1\n", [])[:2] == (True, "")
