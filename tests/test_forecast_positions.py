"""A forecaster gets the position probes: probabilities keyed to row numbers are rejected, while the
offline forecast search's candidates and expanding or rolling climatologies, whose frequencies move a
little when rows are prepended or removed, are accepted, whatever the run's nonce."""

from __future__ import annotations

import random

import pytest

from alphaloop.evaluate.pipeline import EvalContext, Evaluation, evaluate
from alphaloop.tasks import get_task
from alphaloop.tasks.forecast.offline import BASELINE_SPEC, mutate, render
from tests.forecast_support import history_of, synthetic_bars

NONCES = (0, 5, 9)

CLIMATOLOGY = """
def generate_features(df):
    r = df['Close'].pct_change()
    df['lo'] = (r < -0.005).astype(float).expanding(100).mean()
    df['hi'] = (r > 0.005).astype(float).expanding(100).mean()
    return df

def forecast(row):
    lo, hi = row['lo'], row['hi']
    if lo != lo:
        p = (1 / 3, 1 / 3, 1 / 3)
    else:
        p = (lo, 1 - lo - hi, hi)
    return {h: p for h in (1, 3, 5, 10)}
"""


def clean() -> dict[str, str]:
    out = {"expanding climatology": CLIMATOLOGY,
           "rolling climatology": CLIMATOLOGY.replace("expanding(100)", "rolling(250, min_periods=50)"),
           "offline baseline": render(BASELINE_SPEC)}
    rng, spec = random.Random(2), BASELINE_SPEC
    for i in range(2):
        spec = mutate(rng, spec)[0]
        out[f"offline mutation {i}"] = render(spec)
    return out


ROW_KEYED = {
    "a memorised table of rows": CLIMATOLOGY.replace(
        "    df['hi'] =", "    df['row'] = np.arange(len(df))\n    df['hi'] =").replace(
        "    else:\n        p = (lo, 1 - lo - hi, hi)",
        "    elif row['row'] in GOOD:\n        p = (0.1, 0.2, 0.7)\n    else:\n        p = (lo, 1 - lo - hi, hi)")
    .replace("def generate_features", f"GOOD = {tuple(range(500, 990, 13))!r}\n\n\ndef generate_features"),
    "odd rows": CLIMATOLOGY.replace(
        "df['hi'] = (r > 0.005).astype(float).expanding(100).mean()",
        "df['hi'] = (r > 0.005).astype(float).expanding(100).mean() * (0.5 + np.arange(len(df)) % 2)"),
}


@pytest.fixture(scope="module")
def history():
    return history_of(synthetic_bars(1000, seed=3), train=0.7)


def judge(region: str, history, box, nonce: int) -> Evaluation:
    return evaluate(region, EvalContext(histories=(history,), sandbox=box, task=get_task("forecast"),
                                        eval_timeout_s=120.0, probe_nonce=nonce))


@pytest.mark.parametrize("name", list(clean()))
def test_converging_forecasters_pass_the_position_probes(name: str, history, real_sandbox) -> None:
    for nonce in NONCES:
        ev = judge(clean()[name], history, real_sandbox, nonce)
        kinds = {p["kind"] for p in ev.details["lookahead"]["invariance"]}
        assert {"prepend", "trim"} <= kinds
        assert ev.accepted, f"{name}, nonce {nonce}: {ev.reason}"


@pytest.mark.parametrize("name", list(ROW_KEYED))
def test_forecasts_keyed_to_row_numbers_are_rejected(name: str, history, real_sandbox) -> None:
    for nonce in NONCES:
        ev = judge(ROW_KEYED[name], history, real_sandbox, nonce)
        assert (ev.accepted, ev.stage) == (False, "guards"), f"{name}, nonce {nonce}: {ev.reason}"
        assert ev.reason.startswith("forecasts depend on row positions"), ev.reason
        assert "converging frequency" in ev.reason


def test_the_tolerance_quoted_in_the_docs_is_the_code_s() -> None:
    from pathlib import Path

    from alphaloop.evaluate.invariance import FORECAST_SLACK

    text = " ".join((Path(__file__).resolve().parent.parent / "docs" / "trust.md").read_text().split())
    assert f"more than {FORECAST_SLACK:g} x |offset| / (the bars before it)" in text
