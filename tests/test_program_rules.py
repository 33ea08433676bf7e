"""What the prompts say the gate allows is what the gate allows."""

from __future__ import annotations

from alphaloop.propose.prompting import PROGRAM_PATH
from alphaloop.tasks.forecast.prompting import FORECAST_PROGRAM_PATH
from sandbox.gate import check

REGION = '''_WINDOW = 20
SCALE = 1.0 / 1.3863
WEIGHTS = (0.5, 0.3, 0.2)


def _rsi(close):
    return close.diff().rolling(_WINDOW).mean() * SCALE * WEIGHTS[0]


def generate_features(df):
    df["r"] = _rsi(df["Close"])
    return df


def strategy_logic(row):
    return 1 if row["r"] > 0 else -1
'''


def test_own_underscore_names_and_constant_expressions_pass_the_gate_as_the_program_says() -> None:
    program = PROGRAM_PATH.read_text(encoding="utf-8")
    assert "Your own names may start with one underscore (`_rsi`, `_WINDOW`)" in program
    assert "`SCALE = 1.0 / 1.3863`" in program and "Names starting with an underscore**" not in program
    assert "your own names may start with one" in FORECAST_PROGRAM_PATH.read_text(encoding="utf-8")
    assert check(REGION).ok, check(REGION).reason
    refused = check(REGION.replace('df["Close"]', 'df["Close"].__class__'))
    assert not refused.ok
