"""The forecast prompts state the contract, buckets, scores and grades, and every placeholder is filled."""

from __future__ import annotations

import re

import numpy as np

from alphaloop.propose.prompting import render
from alphaloop.tasks.forecast.prompting import (
    FORECAST_PROGRAM_PATH,
    FORECAST_TEMPLATE_PATH,
    forecast_figures,
    program_values,
)
from alphaloop.tasks.forecast.scores import score_forecasts
from tests.forecast_support import history_of, scheme_of, synthetic_bars

PLACEHOLDER = re.compile(r"\{\{(\w+)\}\}")
CONTEXT_KEYS = {"iteration", "parent_iteration", "parent_region", "population", "learnings", "last_outcome", "stall"}


def test_program_states_contract_buckets_scores_and_grades_and_is_filled():
    history = history_of(synthetic_bars(800, seed=2))
    scheme = scheme_of(history)
    from alphaloop.propose.prompting import columns_text  # the data's columns: a context value, as for trading

    text = render(FORECAST_PROGRAM_PATH.read_text(encoding="utf-8"), {**program_values(scheme),
                                                                       "columns": columns_text(())})
    assert not PLACEHOLDER.search(text)
    for needle in ("def forecast(row)", "(p_down, p_flat, p_up)", "lower tercile", "rps_skill_mean",
                   "calibrated_correct", "reasonable_miss", "overconfident_wrong", "1e-6", "h=10: down <"):
        assert needle in text, needle


def test_template_shows_parent_and_latest_beside_climatology():
    history = history_of(synthetic_bars(800, seed=2))
    s = score_forecasts(history, np.full((len(history.frame), 4, 3), 1 / 3), folds=0)
    figures = forecast_figures(s.splits["val"], None)
    template = FORECAST_TEMPLATE_PATH.read_text(encoding="utf-8")
    assert set(PLACEHOLDER.findall(template)) == CONTEXT_KEYS | {"forecast_figures"}
    text = render(template, {**dict.fromkeys(CONTEXT_KEYS, "x"), "forecast_figures": figures})
    assert not PLACEHOLDER.search(text)
    assert "| climatology |" in text and "| parent | 10 |" in text and "| latest | - | not scored" in text


def test_the_climatology_is_not_flagged_below_itself_on_train() -> None:
    """A real prompt read 'rps_skill_mean -0.0000 (below climatology on train: ...)' of the climatology."""
    from alphaloop.tasks.forecast.prompting import evidence_lines

    def line(skill: float) -> str:
        return evidence_lines({"splits": {"train": {"rps_skill_mean": skill}, "val": {}}})[0]

    assert "below climatology" not in line(-3e-7) and "below climatology" not in line(0.01)
    assert "below climatology on train" in line(-0.002)
    from alphaloop.tasks.forecast.text import below_climatology  # check's selection line warns by the same rule

    assert not below_climatology(-3e-7) and not below_climatology(None) and below_climatology(-0.002)
