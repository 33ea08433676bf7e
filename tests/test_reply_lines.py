"""A reduced reply keeps the constants the gate accepts, and reasons quote the lines the user or model wrote."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from alphaloop.candidate import region_origins, renumber
from alphaloop.propose.parsing import in_reply_lines, parse_reply
from sandbox.gate import check as check_region

ROOT = Path(__file__).resolve().parent.parent

WHOLE_FILE = '''"""A forecaster, as a model pastes a whole file."""
import numpy as np
import pandas as pd

SCALE = 1.0 / 1.3863
CLIM = (1/3, 1/3, 1/3)
WINDOW = 2 * 10
DATA_PATH = "data/spy.csv"


class Backtester:
    pass


def generate_features(df):
    df["z"] = df["Close"].pct_change().rolling(WINDOW).mean() * SCALE
    return df


def strategy_logic(row):
    if pd.isna(row["z"]):
        return 0
    return 1 if row["z"] > CLIM[0] - 1 / 3 else -1


if __name__ == "__main__":
    Backtester()
'''


def test_constant_expressions_survive_the_reduction_and_the_gate_accepts_them() -> None:
    p = parse_reply(f"Here it is.\n\n```python\n{WHOLE_FILE}```\n\nExpect: sharpe up 0.1\n")
    assert p.error is None
    for kept in ("SCALE = 1.0 / 1.3863", "CLIM = (1/3, 1/3, 1/3)", "WINDOW = 2 * 10"):
        assert kept in p.region, kept
    assert "class Backtester" not in p.region and "DATA_PATH" not in p.region
    assert check_region(p.region).ok, check_region(p.region).reason


def test_a_gate_refusal_quotes_the_line_of_the_reply() -> None:
    bad = WHOLE_FILE.replace('    return df\n', '    open("/etc/passwd")\n    return df\n', 1)
    reply = f"Some prose first.\n\nMore prose.\n\n```python\n{bad}```\n"
    p = parse_reply(reply)
    verdict = check_region(p.region)
    assert not verdict.ok
    reply_line = reply.split("\n").index('    open("/etc/passwd")') + 1
    told = in_reply_lines(verdict.reason, p.reply, p.region)
    assert told.startswith(f"line {reply_line} of the reply:"), (told, verdict.reason)


def test_line_numbers_map_through_a_reordered_region() -> None:
    source = "import os\n\nA = 1\n\n\ndef f():\n    return A\n"
    region = "A = 1\n\n\ndef f():\n    return A\n"
    origins = region_origins(source, region)
    assert origins[0] == 3 and origins[3] == 6 and origins[4] == 7
    assert renumber("line 5: x; first on line 1", origins) == "line 7: x; first on line 3"
    assert renumber("line 99: beyond", origins) == "line 99: beyond" and renumber("line 2", ()) == "line 2"


def test_check_reports_a_syntax_error_at_the_line_of_the_file(tmp_path: Path, frozen_data: Path) -> None:
    lines = (ROOT / "trade.py").read_text(encoding="utf-8").split("\n")
    at = next(i for i, line in enumerate(lines) if "def strategy_logic" in line) + 2
    lines.insert(at, "    broken = (1 +")
    while at + 1 < 30:  # the error on line 30 of the file, well below the region's first line
        lines.insert(at - 1, "    # a comment")
        at += 1
    file = tmp_path / "bad.py"
    file.write_text("\n".join(lines), encoding="utf-8")
    assert file.read_text().split("\n")[29] == "    broken = (1 +"
    res = subprocess.run([sys.executable, str(ROOT / "harness.py"), "check", str(file), "--data", str(frozen_data)],
                         capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert res.returncode == 1, res.stdout + res.stderr
    verdict = json.loads(res.stdout.strip().splitlines()[-1])
    assert verdict["stage"] == "gate" and verdict["reason"].startswith("line 30: syntax error"), verdict
    assert "line 30: syntax error" in res.stdout


def test_unpacked_constants_are_kept_as_one_name_each() -> None:
    code = WHOLE_FILE.replace("WINDOW = 2 * 10\n", "WINDOW, SLOW = 2 * 10, 100\n")
    p = parse_reply(f"```python\n{code}```")
    assert "WINDOW = 2 * 10\nSLOW = 100" in p.region and check_region(p.region).ok, p.region


def test_a_computed_top_level_name_the_functions_read_is_kept_for_the_gate_to_explain() -> None:
    """A real reply wrote `_LEVELS = [x / 100 for x in (30, 70)]`; dropped, the gate said only "name '_LEVELS'
    is not defined" at the lines using it, which the model, having defined it, could not act on."""
    region = ('_N = 14\n_LEVELS = [x / 100 for x in (30, 70)]\nUNUSED = [1 for _ in ()]\n\n\n'
              'def generate_features(df):\n    df["r"] = df["Close"].pct_change(_N)\n    return df\n\n\n'
              'def strategy_logic(row):\n    if pd.isna(row["r"]):\n        return 0\n'
              '    return 1 if row["r"] > _LEVELS[0] else -1\n')
    reply = f"Prose first.\n\n```python\n{region}```\n"
    p = parse_reply(reply)
    assert "_LEVELS = [x / 100 for x in (30, 70)]" in p.region and p.dropped == ["UNUSED = [1 for _ in ()]"]
    verdict = check_region(p.region)
    assert not verdict.ok and "top level" in verdict.reason and "not defined" not in verdict.reason
    assert in_reply_lines(verdict.reason, reply, p.region).startswith("line 5 of the reply: "), verdict.reason


def test_bare_code_keeps_the_constants_and_helpers_written_before_the_functions() -> None:
    """A real unfenced reply defined HORIZONS, STRENGTH and _rel_vol above generate_features; bare code used to
    start at the first contract def, and the gate said those names were not defined."""
    code = ('HORIZONS = (1, 3)\nFAST, SLOW = 20, 50\n\ndef _rel(close):\n    return close.pct_change(FAST)\n\n'
            'def generate_features(df):\n    df["r"] = _rel(df["Close"])\n    return df\n\nLIMIT = 0.01\n\n'
            'def strategy_logic(row):\n    if pd.isna(row["r"]):\n        return 0\n'
            '    return 1 if row["r"] > LIMIT * len(HORIZONS) + SLOW * 0 else -1\n')
    reply = f"Adding a helper (0.31 vs 0.22).\n\n{code}\nHypothesis: momentum persists.\nExpect: sharpe up 0.1\n"
    p = parse_reply(reply)
    assert p.error is None and p.hypothesis == "momentum persists."
    for kept in ("HORIZONS = (1, 3)", "FAST = 20", "def _rel(close):", "LIMIT = 0.01"):
        assert kept in p.region, (kept, p.region)
    assert check_region(p.region).ok, check_region(p.region).reason
    bad = parse_reply(reply.replace("    return close.pct_change(FAST)", "    return open('x')"))
    verdict = check_region(bad.region)
    assert not verdict.ok and in_reply_lines(verdict.reason, bad.reply, bad.region).startswith("line 7 of the reply")
