"""parse_reply must accept the ways real models format replies, and never raise."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from alphaloop.candidate import REGION_END, REGION_START, extract_region, splice_region, template_text
from alphaloop.present.text import clip_end, clip_middle
from alphaloop.propose.base import Expectation
from alphaloop.propose.parsing import NO_CODE, parse_reply

REGION = '''def generate_features(df):
    df["ema_fast"] = df["Close"].ewm(span=12, adjust=False).mean()
    df["ema_slow"] = df["Close"].ewm(span=40, adjust=False).mean()
    return df


def strategy_logic(row):
    if row["ema_fast"] > row["ema_slow"]:
        return 1
    if row["ema_fast"] < row["ema_slow"]:
        return -1
    return 0
'''

ROOT = Path(__file__).resolve().parent.parent
NOTES = """Hypothesis: EMAs react faster than SMAs, so entries come earlier in a trend.
Change: SMA 20/50 -> EMA 12/40.
Expected effect: more trades, slightly higher Sharpe.
Expect: sharpe up 0.1
"""


def reply(code_tag: str = "python", region: str = REGION, notes: str = NOTES) -> str:
    return f"Here is my proposal.\n\n```{code_tag}\n{region}```\n\n```markdown\n{notes}```\n\nGood luck!"


def test_well_formed_reply() -> None:
    p = parse_reply(reply())
    assert p.error is None
    assert p.region == REGION
    assert p.hypothesis.startswith("EMAs react faster")
    assert p.change == "SMA 20/50 -> EMA 12/40."
    assert p.expected == "more trades, slightly higher Sharpe."
    assert p.expectation == Expectation("sharpe", 1, 0.1)
    assert "Here is my proposal" in p.raw


@pytest.mark.parametrize("tag", ["py", "python3", "", "Python", "py3"])
def test_language_tags(tag: str) -> None:
    p = parse_reply(reply(code_tag=tag))
    assert p.region == REGION and p.error is None


def test_crlf_line_endings() -> None:
    p = parse_reply(reply().replace("\n", "\r\n"))
    assert p.region == REGION
    assert "\r" not in p.region
    assert p.expectation == Expectation("sharpe", 1, 0.1)


def test_several_code_blocks_picks_the_one_with_both_functions() -> None:
    text = (
        "First, a helper idea:\n```python\nx = df['Close'].rolling(5).mean()\n```\n"
        "The old logic was:\n```python\ndef strategy_logic(row):\n    return 0\n```\n"
        f"The new region:\n```python\n{REGION}```\n" + f"```markdown\n{NOTES}```"
    )
    assert parse_reply(text).region == REGION


def test_last_complete_block_wins() -> None:
    old = REGION.replace("span=12", "span=20")
    text = f"Before:\n```python\n{old}```\nAfter:\n```python\n{REGION}```\n"
    assert parse_reply(text).region == REGION


def test_functions_split_over_two_blocks_are_joined() -> None:
    first, second = REGION.split("\n\n\ndef strategy_logic")
    text = f"```python\n{first}\n```\nand\n```python\ndef strategy_logic{second}```"
    p = parse_reply(text)
    assert p.error is None
    assert "def generate_features" in p.region and "def strategy_logic" in p.region


def test_full_trade_py_reply_is_reduced_to_the_region() -> None:
    full = splice_region(template_text(), REGION)
    p = parse_reply(f"The whole file:\n```python\n{full}\n```\n```markdown\n{NOTES}```")
    assert p.error is None
    assert p.region == REGION
    assert "import" not in p.region and REGION_START not in p.region


def test_full_file_with_broken_markers_is_an_error_not_an_exception() -> None:
    broken = f"{REGION_START}\n{REGION}\n{REGION_START}\n{REGION_END}\n"
    p = parse_reply(f"```python\n{broken}```")
    assert p.region is None
    assert "marker" in p.error


def test_missing_markdown_block() -> None:
    p = parse_reply(f"```python\n{REGION}```")
    assert p.region == REGION
    assert p.hypothesis == "" and p.change == "" and p.expected == ""
    assert p.expectation is None
    assert p.error is None


def test_notes_in_prose_and_expect_line_in_free_text() -> None:
    text = (
        "**Hypothesis:** faster averages catch trends earlier.\n\n"
        f"```python\n{REGION}```\n\n"
        "I think this is reasonable. Expect: max_drawdown down 5%\n"
    )
    p = parse_reply(text)
    assert p.hypothesis == "faster averages catch trends earlier."
    assert p.region == REGION
    assert p.expectation == Expectation("max_drawdown", -1, 0.05)


def test_expect_line_on_its_own_in_prose() -> None:
    text = f"```python\n{REGION}```\n\n- Expect: round trips +4\n"
    assert parse_reply(text).expectation == Expectation("round_trips", 1, 4.0)


def test_markdown_block_wins_over_prose_but_prose_fills_gaps() -> None:
    notes = "Hypothesis: from the block.\nChange: block change.\n"
    text = f"Hypothesis: from prose.\nExpect: sharpe down\n```python\n{REGION}```\n```md\n{notes}```"
    p = parse_reply(text)
    assert p.hypothesis == "from the block."
    assert p.expectation == Expectation("sharpe", -1, None)


def test_unterminated_final_fence() -> None:
    text = f"```markdown\n{NOTES}```\n```python\n{REGION}"
    p = parse_reply(text)
    assert p.region == REGION
    assert p.expectation == Expectation("sharpe", 1, 0.1)


def test_prose_only_reply_is_a_proposal_with_an_error() -> None:
    p = parse_reply("I would try an EMA crossover with a trend filter.\nHypothesis: trends persist.")
    assert p.region is None
    assert p.error == NO_CODE
    assert p.hypothesis == "trends persist."
    # a model that asked a question ("what are the costs applied to?") is told nobody answers it
    assert "nobody reads questions or plans: every reply must hold the complete region" in NO_CODE


def test_bare_code_without_fences_is_accepted() -> None:
    p = parse_reply(f"Sure.\n{REGION}\nThat should trade more often.")
    assert p.region is not None
    assert p.region.strip() == REGION.strip()


def test_reasoning_section_is_ignored() -> None:
    decoy = "def generate_features(df):\n    return df\ndef strategy_logic(row):\n    return 1\n"
    text = f"<think>\n```python\n{decoy}```\n</think>\n{reply()}"
    assert parse_reply(text).region == REGION


@pytest.mark.parametrize(
    "line, expected",
    [
        ("Expect: sharpe up 0.1", Expectation("sharpe", 1, 0.1)),
        ("Expect: Sharpe ratio up by ~0.15.", Expectation("sharpe", 1, 0.15)),
        ("Expect: max drawdown up", Expectation("max_drawdown", 1, None)),
        ("Expect: total_return -2%", Expectation("total_return", -1, 0.02)),
        ("**Expect:** validation sharpe after costs to rise by 0.2", Expectation("sharpe", 1, 0.2)),
        ("Expect: trades fewer", Expectation("round_trips", -1, None)),
        ("Expect: sortino ↑", Expectation("sortino", 1, None)),
        ("- **Expectation:** round_trips down 5", Expectation("round_trips", -1, 5.0)),
        ("Expect: something vague", None),
    ],
)
def test_expect_line_forms(line: str, expected: Expectation | None) -> None:
    assert parse_reply(f"```python\n{REGION}```\n{line}\n").expectation == expected


@pytest.mark.parametrize("text", ["", "   \n", "```", "```python", "```python\n```", "~~~\n", "\x00\x01", "`" * 50])
def test_degenerate_replies_never_raise(text: str) -> None:
    p = parse_reply(text)
    assert p.region is None
    assert p.error


def test_hostile_code_is_returned_verbatim() -> None:
    hostile = ("import os\n\ndef generate_features(df):\n    os.system('rm -rf /')\n    return df\n\n\n"
               "def strategy_logic(row):\n    return 1\n")
    assert parse_reply(f"```python\n{hostile}```").region == hostile


def test_non_string_input_never_raises() -> None:
    p = parse_reply(None)  # type: ignore[arg-type]
    assert p.region is None and p.error


def test_habitual_numpy_and_pandas_imports_are_dropped_but_others_stay() -> None:
    reply = ("```python\nimport numpy as np\nimport pandas as pd\nimport os\n\ndef generate_features(df):\n"
             "    import numpy as np\n    return df\n\ndef strategy_logic(row):\n    return 0\n```")
    region = parse_reply(reply).region
    assert region.startswith("import os\n")
    assert "    import numpy as np" in region  # nested imports are the gate's business
    assert "import pandas as pd" not in region


WEEKEND_TRADE_PY = '''"""Autoresearch trading harness: a strategy and the backtest that scores it.

The agent edits only the two functions below the marker; the rest is fixed.
"""

import numpy as np
import pandas as pd

DATA_PATH = "data/spy.csv"


def load_data(path=DATA_PATH):
    return pd.read_csv(path, index_col=0, parse_dates=True)


# --- THESE ARE THE FUNCTIONS THE AGENT SHOULD MODIFY ---
# ----------------------------------------------------------------------

LOOKBACK = 20


def generate_features(df):
    df["sma_fast"] = df["Close"].rolling(LOOKBACK).mean()
    df["sma_slow"] = df["Close"].rolling(50).mean()
    return df


def strategy_logic(row):
    if row["sma_fast"] > row["sma_slow"]:
        return 1
    return -1

# ----------------------------------------------------------------------


class Backtester:
    def __init__(self, df):
        self.df = df

    def run(self):
        feats = generate_features(self.df.copy())
        return feats.apply(strategy_logic, axis=1)


if __name__ == "__main__":
    signals = Backtester(load_data()).run()
    print(signals.value_counts())
'''
WEEKEND_REGION = WEEKEND_TRADE_PY.split("# " + "-" * 70 + "\n\n")[1].split("\n# " + "-" * 70)[0].strip("\n") + "\n"


def test_weekend_markers_give_the_functions_under_them() -> None:
    region = extract_region(WEEKEND_TRADE_PY)
    assert region == WEEKEND_REGION
    assert region.startswith("LOOKBACK = 20\n") and region.rstrip().endswith("return -1")
    assert "Backtester" not in region and "load_data" not in region and "import" not in region


def test_weekend_marker_without_a_closing_dashed_line_stops_at_the_class() -> None:
    text = WEEKEND_TRADE_PY.replace("\n# " + "-" * 70 + "\n\n\nclass", "\n\n\nclass")
    region = extract_region(text)
    assert "class Backtester" not in region and region.rstrip().endswith("return -1")


def test_weekend_file_as_a_reply_is_reduced_to_its_region() -> None:
    p = parse_reply(f"Here is the updated file.\n```python\n{WEEKEND_TRADE_PY}```\n```markdown\n{NOTES}```")
    assert p.error is None and p.region == WEEKEND_REGION and p.dropped == []


def test_whole_file_reply_without_markers_is_reduced_and_what_was_dropped_is_named() -> None:
    whole = WEEKEND_TRADE_PY.replace("# --- THESE ARE THE FUNCTIONS THE AGENT SHOULD MODIFY ---\n", "")
    whole = whole.replace("# " + "-" * 70 + "\n", "").replace("LOOKBACK = 20", "LOOKBACK = 30")
    p = parse_reply(f"```python\n{whole}```\n```markdown\n{NOTES}```")
    assert p.error is None
    assert p.region.startswith("LOOKBACK = 30\n")
    assert "def generate_features(df):" in p.region and "def strategy_logic(row):" in p.region
    for gone in ("import", "class Backtester", "load_data", "__main__", "DATA_PATH", '"""'):
        assert gone not in p.region, gone
    dropped = " | ".join(p.dropped)
    for name in ("a docstring", "import numpy as np", "import pandas as pd", 'DATA_PATH = "data/spy.csv"',
                 "def load_data", "class Backtester", 'if __name__ == "__main__":'):
        assert name in dropped, name
    compile(p.region, "<region>", "exec")


def test_helpers_used_by_the_contract_functions_are_kept_transitively() -> None:
    code = ('import os\n\nWINDOW = 14\nUNUSED = 3\n\n\n'
            'def rsi(close):\n    return close.diff().rolling(WINDOW).mean()\n'
            '\n\ndef generate_features(df):\n    df["r"] = rsi(df["Close"])\n    return df\n\n\n'
            'def strategy_logic(row):\n    return 1 if row["r"] > 0 else 0\n\n\nprint("done")\n')
    p = parse_reply(f"```python\n{code}```")
    assert "WINDOW = 14" in p.region and "def rsi(close):" in p.region
    assert "UNUSED" not in p.region and "import os" not in p.region and "print" not in p.region
    assert "UNUSED = 3" in p.dropped and 'print("done")' in p.dropped and "import os" in p.dropped


def test_region_of_defs_and_imports_only_is_left_for_the_gate() -> None:
    code = "import os\n\ndef generate_features(df):\n    return df\n\n\ndef strategy_logic(row):\n    return 0\n"
    p = parse_reply(f"```python\n{code}```")
    assert p.region == code and p.dropped == []


def test_the_whole_reply_is_kept_beyond_the_record_head() -> None:
    think = "<think>" + "reasoning " * 5000 + "</think>\n"
    text = f"{think}```python\n{REGION}```\n```markdown\n{NOTES}```"
    p = parse_reply(text)
    assert p.region == REGION and p.reply == text and len(p.reply) > 50_000
    record = p.to_json()
    assert "reply" not in record and len(record["raw"]) == 4000


def test_check_reads_a_weekend_trade_py_unchanged(tmp_path: Path, frozen_data: Path) -> None:
    """``harness.py check`` on the weekend file scores exactly what its region scores in alphaloop's own file."""
    weekend, own = tmp_path / "weekend_trade.py", tmp_path / "own_trade.py"
    weekend.write_text(WEEKEND_TRADE_PY)
    own.write_text(splice_region(template_text(), WEEKEND_REGION))
    verdicts = []
    for file in (weekend, own):
        res = subprocess.run([sys.executable, str(ROOT / "harness.py"), "check", str(file), "--data", str(frozen_data)],
                             capture_output=True, text=True, timeout=300, cwd=tmp_path)
        assert res.returncode == 0, res.stderr
        verdicts.append(json.loads(res.stdout.strip().splitlines()[-1]))
    assert verdicts[0]["accepted"] and verdicts[0] == verdicts[1]


def test_clip_helpers_never_cut_a_word_and_stay_bounded() -> None:
    words = " ".join(f"word{i}" for i in range(500))
    short = clip_end(words, 50)
    assert len(short) <= 50 and short.endswith("...") and short[:-3].split()[-1] in words.split()
    assert clip_end("a  b\n c", 50) == "a b c"
    lines = "\n".join(f"line {i} holds some text" for i in range(2000))
    clipped = clip_middle(lines, 3000)
    assert len(clipped) <= 3000 + 60 and "characters omitted" in clipped
    kept = [line for line in clipped.split("\n") if "omitted" not in line]
    assert all(line in lines.split("\n") for line in kept)
    assert clip_middle("short", 100) == "short"


PORTFOLIO_REGION = '''SCALE = 1.0 / 1.3863


def generate_features(df):
    df["ret5"] = df["Close"].pct_change(5)
    return df


def allocate(day):
    r = day["ret5"].dropna()
    return {i: (SCALE / 2 if v < r.median() else -SCALE / 2) for i, v in r.items()}
'''


def test_portfolio_reply_with_allocate_is_read() -> None:
    """--task portfolio's second function is allocate: a well-formed reply must not be 'no python code block'."""
    reply = ("```python\n" + PORTFOLIO_REGION + "```\n\n```markdown\nHypothesis: reversal.\nChange: ranking.\n"
             "Expected effect: higher.\nExpect: sharpe up 0.2\n```\n")
    proposal = parse_reply(reply)
    assert proposal.error is None
    assert proposal.region is not None and "def allocate(day):" in proposal.region
    whole = "import os\n\nclass Junk:\n    pass\n\n" + PORTFOLIO_REGION
    kept = parse_reply("```python\n" + whole + "```\n").region
    assert kept is not None and "def allocate(day):" in kept and "class Junk" not in kept


HELPER_APART = '''Building on the volatility regime, first a small helper:

```python
def _three(flat):
    flat = min(max(flat, 0.2), 0.6)
    side = (1.0 - flat) / 2
    return (side, flat, side)
```

and a constant I will not use:

```python
r = 0.5
```

Then the region itself:

```python
STRENGTH = {1: 0.25, 3: 0.2, 5: 0.15, 10: 0.1}


def generate_features(df):
    df["vol_ratio"] = df["Close"].pct_change().rolling(20).std()
    return df


def forecast(row):
    r = row["vol_ratio"]
    if pd.isna(r):
        return {h: (1 / 3, 1 / 3, 1 / 3) for h in (1, 3, 5, 10)}
    return {h: _three(1 / 3 + STRENGTH[h] * (1.0 - r)) for h in (1, 3, 5, 10)}
```

Expect: rps_skill_mean up 0.002
'''


def test_a_helper_shown_in_a_block_of_its_own_is_part_of_the_region() -> None:
    """A forecast reply put its helper in a python block of its own, then the region; the gate was given the
    region alone and told the model "line 30 of the reply: name '_three' is not defined here"."""
    from alphaloop.candidate import region_origins
    from alphaloop.tasks import get_task

    p = parse_reply(HELPER_APART)
    assert p.region is not None and p.region.startswith("def _three(flat):\n")
    assert "r = 0.5" not in p.region  # the region binds r itself: nothing to borrow
    verdict = get_task("forecast").gate()(p.region)
    assert verdict.ok, verdict.reason
    origins = region_origins(p.reply, p.region)
    assert origins[0] == HELPER_APART.split("\n").index("def _three(flat):") + 1  # reasons name the reply's lines
