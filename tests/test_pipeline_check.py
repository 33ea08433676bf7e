"""The pipeline every candidate takes, and ``harness.py check`` on top of it."""

from __future__ import annotations

import builtins
import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from alphaloop.candidate import splice_region, template_text
from alphaloop.commands.check import run_check
from alphaloop.data.frozen import load_splits
from alphaloop.evaluate.pipeline import UNSEEDED, EvalContext, Evaluation, evaluate, region_seed
from alphaloop.evaluate.scoring import History
from alphaloop.tasks import get_task
from sandbox.runner import RunOutcome
from tests.conftest import InProcessSandbox
from tests.test_lookahead import BASELINE, CLEAN, LEAKS, f_region
from tests.test_sandbox_support import make_ohlcv

HOLD = """
def generate_features(df):
    return df

def strategy_logic(row):
    return 1
"""
LEAKY = """
def generate_features(df):
    df['tomorrow'] = df['Close'].shift(-1)
    return df

def strategy_logic(row):
    return 1 if row['tomorrow'] > row['Close'] else -1
"""


@pytest.fixture(scope="module")
def history(frozen_data: Path) -> History:
    return History.from_splits(load_splits(frozen_data))


def run(region: str, history: History, **kw) -> Evaluation:
    ev = evaluate(region, EvalContext(histories=(history,), sandbox=kw.pop("sandbox", InProcessSandbox()),
                                      task=get_task(kw.pop("task", "trade")), **kw))
    json.dumps(ev.details)  # always serialisable for the iteration record
    json.dumps(ev.check_json(), allow_nan=False)
    return ev


def test_baseline_is_accepted_with_scores_and_timings(history: History) -> None:
    box = InProcessSandbox()
    ev = run(BASELINE, history, sandbox=box)
    assert (ev.accepted, ev.stage, ev.reason) == (True, "ok", "")
    assert set(ev.timings) == {"gate", "sandbox", "lookahead", "score", "guards"}
    info = ev.details["lookahead"]
    assert box.calls == [1, len(info["probes"]) + len(info["invariance"])]  # two runs: full, then every probe
    assert [p["kind"] for p in info["invariance"]] == ["date_shift", "level", "prepend", "trim"]
    assert ev.scores.fold_spread() and ev.check_json()["metrics"]["selection_val"] == ev.scores.selection
    assert len(ev.outputs) == 1 and len(ev.outputs[0]) == len(history.frame)
    assert ev.details["lookahead"]["leak"] is None and ev.details["guards"]["failed"] == []
    assert ev.details["lookahead"]["rerun_alone"] == []  # clean candidates pay for no rerun


def test_gate_rejects_before_anything_runs(history: History) -> None:
    box = InProcessSandbox()
    ev = run("import os\n" + BASELINE, history, sandbox=box)
    assert (ev.accepted, ev.stage, ev.scores) == (False, "gate", None)
    assert "import" in ev.reason and box.calls == []


def test_sandbox_failure_is_a_rejection(history: History) -> None:
    ev = run(BASELINE.replace("return df", "return df['nope']"), history)
    assert ev.stage == "sandbox" and "KeyError" in ev.reason


def test_runner_fault_never_raises(history: History) -> None:
    class Broken(InProcessSandbox):
        def run(self, *a, **k):
            raise OSError("fork failed")

    ev = run(BASELINE, history, sandbox=Broken())
    assert ev.stage == "sandbox" and "fork failed" in ev.reason


def test_lookahead_rejects_before_scoring(history: History) -> None:
    ev = run(LEAKY, history)
    assert (ev.stage, ev.scores) == ("lookahead", None)
    assert ev.reason.startswith("look-ahead: column 'tomorrow' changes on 1999-01-08")
    assert ev.details["lookahead"]["leak"]["column"] == "tomorrow"
    assert ev.details["lookahead"]["rerun_alone"] == ["full run"]  # the full run reproduced itself: a leak


def test_candidate_that_fails_on_probes_is_rejected(history: History) -> None:
    guard = '    if len(df) < 4000:\n        raise ValueError("short")\n    return df\n'
    dodge = BASELINE.replace('    return df\n', guard, 1)
    ev = run(dodge, history)
    assert ev.stage == "lookahead" and "probes could not run" in ev.reason and "short" in ev.reason


def test_state_kept_across_rows_is_ordinary_code_not_lookahead(history: History) -> None:
    """Every frame runs in fresh globals, so a running counter (causal state) reproduces on every probe."""
    code = """
STATE = {"n": 0}

def generate_features(df):
    df["r"] = df["Close"].pct_change()
    return df

def strategy_logic(row):
    STATE["n"] += 1
    return 1 if (STATE["n"] // 20) % 2 == 0 else -1
"""
    box = InProcessSandbox()  # like the real sandbox, each frame runs in fresh globals
    ev = run(code, history, sandbox=box)
    assert ev.stage != "lookahead" and ev.details["lookahead"]["leak"] is None, ev.reason
    assert "keeps state" not in ev.reason and ev.details["lookahead"]["rerun_alone"] == []
    assert box.calls == [1, len(ev.details["lookahead"]["probes"]) + len(ev.details["lookahead"]["invariance"])]


def test_unseeded_randomness_is_named_as_such(history: History) -> None:
    code = """
def generate_features(df):
    df["noise"] = np.random.default_rng().normal(size=len(df))
    return df

def strategy_logic(row):
    return 1 if row["noise"] > 0 else -1
"""
    box = InProcessSandbox()
    ev = run(code, history, sandbox=box)
    assert ev.stage == "lookahead" and ev.reason.startswith("seed your random numbers")
    assert "(line 3: np.random.default_rng() without a seed)" in ev.reason
    assert box.calls == [1]  # named before any probe runs: frames forked from one process may draw alike
    hidden = code.replace("default_rng()", "default_rng(None)")  # a draw the static reading does not see
    ev = run(hidden, history)
    assert ev.stage == "lookahead" and ev.reason == UNSEEDED  # the full run, run again, did not reproduce itself
    assert ev.details["lookahead"]["rerun_alone"] == ["full run"]


def test_guard_rejection_keeps_scores(history: History) -> None:
    ev = run(HOLD, history)
    assert ev.stage == "guards" and "that is buy and hold" in ev.reason
    assert ev.scores is not None and ev.check_json()["metrics"] is not None


def test_probe_seed_follows_the_region_and_the_runs_secret_nonce(history: History,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    a = run(BASELINE, history, probe_nonce=7).details["lookahead"]
    b = run(BASELINE + "\n", history, probe_nonce=7).details["lookahead"]
    assert a["seed"] == region_seed(BASELINE, 7) != b["seed"] and a["nonce"] == 7
    assert a["probes"] != b["probes"]
    other = run(BASELINE, history, probe_nonce=8).details["lookahead"]  # another run: other cuts for the same text
    assert other["seed"] == region_seed(BASELINE, 8) != a["seed"] and other["probes"] != a["probes"]
    monkeypatch.undo()  # the tests' fixed nonce (conftest) gives way to the real, secret one
    import alphaloop.evaluate.pipeline as pipeline

    assert pipeline.new_nonce() != pipeline.new_nonce()  # drawn from the system per context, never from the region
    contexts = [EvalContext(histories=(history,), sandbox=InProcessSandbox(), task=get_task("trade")) for _ in range(2)]
    assert contexts[0].probe_nonce != contexts[1].probe_nonce
    replay = run(BASELINE, history, probe_seed=a["seed"]).details["lookahead"]  # a record reproduces its probes
    assert replay["seed"] == a["seed"] and replay["probes"] == a["probes"] and replay["nonce"] is None


def test_probe_rows_stay_small(history: History) -> None:
    info = run(BASELINE, history).details["lookahead"]
    # the tail probe (n rows), five Latin band cuts (about 2.5 n) and cheap early cuts: docs/trust.md
    assert info["rows_probed"] <= 3.6 * info["full_rows"]


def check_out(capsys: pytest.CaptureFixture[str], *args, **kw) -> tuple[int, list[str], str]:
    code = run_check(*args, sandbox=kw.pop("sandbox", InProcessSandbox()), **kw)
    out = capsys.readouterr()
    return code, out.out.strip().splitlines(), out.err


def test_check_accepts_full_file(tmp_path: Path, frozen_data: Path, capsys: pytest.CaptureFixture[str]) -> None:
    file = tmp_path / "cand.py"
    file.write_text(splice_region(template_text(), BASELINE))
    code, lines, _ = check_out(capsys, file, frozen_data, "sharpe", 4, 2.0)
    assert code == 0
    assert lines[0].startswith("isolation: ")
    verdict = json.loads(lines[-1])
    assert verdict["accepted"] and verdict["stage"] == "ok" and verdict["reason"] == ""
    assert set(verdict) == {"accepted", "stage", "reason", "metrics"}
    text = "\n".join(lines)
    assert "val split" in text and "train split" in text and "test split not read" in text
    assert "returns on: Close as traded (Adj Close equals Close: a price index without dividends)" in lines
    assert any(line.startswith("selection: validation sharpe") and "min" in line and "median" in line for line in lines)


def test_check_rejects_bare_region_with_exit_1(tmp_path: Path, frozen_data: Path,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    file = tmp_path / "leaky.py"
    file.write_text(LEAKY)
    code, lines, _ = check_out(capsys, file, frozen_data, "total_return", 3, 0.0)
    verdict = json.loads(lines[-1])
    assert code == 1 and verdict["stage"] == "lookahead" and verdict["metrics"] is None
    assert any("lookahead  REJECTED" in line for line in lines)
    assert any("guards     not reached" in line for line in lines)


def test_check_usage_errors(tmp_path: Path, frozen_data: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, lines, err = check_out(capsys, tmp_path / "missing.py", frozen_data, "sharpe", 4, 2.0)
    assert code == 2 and err.startswith("error: ") and lines == []
    file = tmp_path / "c.py"
    file.write_text(BASELINE)
    code, _, err = check_out(capsys, file, tmp_path / "nodata", "sharpe", 4, 2.0)
    assert code == 2 and "no frozen data" in err
    code, _, err = check_out(capsys, file, frozen_data, "nope", 4, 2.0)
    assert code == 2 and "unknown metric" in err


def test_check_never_opens_the_test_split(tmp_path: Path, frozen_data: Path, capsys: pytest.CaptureFixture[str],
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    data = tmp_path / "data"
    shutil.copytree(frozen_data, data)
    (data / "test.csv").unlink()
    (data / "test.csv").mkdir()  # a trap: reading it as a file fails even as root
    opened: list[str] = []
    real_open, real_read = builtins.open, pd.read_csv

    def spy_open(file, *a, **k):
        opened.append(str(file))
        assert "test.csv" not in str(file), "the check path opened the test split"
        return real_open(file, *a, **k)

    def spy_read(path, *a, **k):
        assert "test.csv" not in str(path), "the check path read the test split"
        return real_read(path, *a, **k)

    monkeypatch.setattr(builtins, "open", spy_open)
    monkeypatch.setattr(pd, "read_csv", spy_read)
    file = tmp_path / "c.py"
    file.write_text(BASELINE)
    code, lines, err = check_out(capsys, file, data, "sharpe", 4, 2.0)
    assert code == 0, err
    assert json.loads(lines[-1])["accepted"]
    assert any(p.endswith("train.csv") for p in opened) and not any("test.csv" in p for p in opened)


E2E_LEAKS = ["shift(-1)", "centred rolling mean", "full-sample max", "bfill of later values",
             "weekly resample filled backwards", "reversed rolling", "np.gradient", "FFT low-pass"]
E2E_CLEAN = ["rolling mean", "ewm adjust", "expanding z-score", "shift(5)", "rsi"]


@pytest.fixture(scope="module")
def small_history() -> History:
    df = make_ohlcv(800, seed=4)
    return History.from_splits({"train": df.iloc[:560], "val": df.iloc[560:]})


@pytest.mark.parametrize("name", E2E_LEAKS)
def test_leaks_rejected_through_the_sandbox(name: str, small_history: History, real_sandbox) -> None:
    ev = run(f_region(LEAKS[name]), small_history, sandbox=real_sandbox, folds=2)
    assert ev.stage == "lookahead" and ev.reason.startswith("look-ahead: column 'f'"), (name, ev.reason)


@pytest.mark.parametrize("name", E2E_CLEAN)
def test_clean_features_pass_through_the_sandbox(name: str, small_history: History, real_sandbox) -> None:
    ev = run(f_region(CLEAN[name]), small_history, sandbox=real_sandbox, folds=2)
    assert ev.stage in ("ok", "guards") and ev.details["lookahead"]["leak"] is None, ev.reason
    assert ev.scores is not None


def test_date_hack_rejected_through_the_sandbox(small_history: History, real_sandbox) -> None:
    code = """
def generate_features(df):
    good = 2000 + 1
    df['f'] = np.where(df.index.year == good, 1.0, -1.0) + df['Close'].pct_change().fillna(0)
    return df

def strategy_logic(row):
    return 1 if row['f'] > 0 else -1
"""
    ev = run(code, small_history, sandbox=real_sandbox, folds=2)
    assert ev.stage == "guards" and "other years with the same calendar" in ev.reason


def test_check_runs_the_real_sandbox_by_default(tmp_path: Path, frozen_data: Path,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("sandbox.runner")
    file = tmp_path / "cand.py"
    file.write_text(splice_region(template_text(), BASELINE))
    code = run_check(file, frozen_data, "sharpe", 4, 2.0)
    lines = capsys.readouterr().out.strip().splitlines()
    assert code == 0 and lines[0].startswith("isolation: ") and "in-process" not in lines[0]
    assert json.loads(lines[-1])["stage"] == "ok"


def memorised_rows_region(history: History, k: int = 50) -> str:
    """Long on a literal tuple of the validation rows with the best next-day returns (answers in the source)."""
    close = history.frame["Close"].to_numpy()
    val = history.windows["val"]
    nxt = close[val.start + 1: val.stop] / close[val.start: val.stop - 1]
    best = sorted(int(val.start + i) for i in np.argsort(nxt)[-k:])
    return f"""
_BEST = {tuple(best)!r}

def generate_features(df):
    df['row'] = np.arange(len(df))
    df['trend'] = df['Close'].rolling(50).mean()
    return df

def strategy_logic(row):
    if row['row'] in _BEST:
        return 1
    return 0 if row['Close'] > row['trend'] else -1
"""


def test_row_numbers_and_memorised_rows_are_rejected_by_the_position_probe(history: History) -> None:
    from sandbox.gate import check as gate

    row_keyed = """
def generate_features(df):
    df['f'] = df['Close'].pct_change()
    df['parity'] = [i % 9 for i in range(len(df))]
    return df

def strategy_logic(row):
    return 1 if row['parity'] < 4 else -1
"""
    memorised = memorised_rows_region(history)
    assert gate(memorised).ok and memorised.count(",") >= 49  # 50 literal rows: under the gate's 64-element limit
    for code in (row_keyed, memorised):
        ev = run(code, history)
        assert ev.stage == "guards", ev.reason
        assert ev.reason.startswith("signals depend on row positions, not on prices:"), ev.reason
        assert "position_dependence" in ev.details["guards"]["failed"] and ev.details["lookahead"]["leak"] is None
        first = ev.reason.split("(first ")[1][:10]
        assert pd.Timestamp(first) in history.frame.index


ORDINARY_SAMPLE = ["01_sma_crossover.py", "16_dual_momentum.py", "23_obv.py", "28_williams_r.py",
                   "27_state_machine.py"]


@pytest.mark.parametrize("name", ORDINARY_SAMPLE)
def test_ordinary_strategies_pass_the_invariance_probes(name: str, history: History) -> None:
    code = (Path(__file__).resolve().parent / "corpus" / "ordinary" / name).read_text()
    ev = run(code, history)
    assert ev.details["lookahead"]["leak"] is None, ev.reason
    failed = ev.details["guards"]["failed"]
    assert "position_dependence" not in failed and "date_dependence" not in failed, ev.reason
    assert ev.details["guards"]["position_shift"] == "signals unchanged"


class ClockedBox(InProcessSandbox):
    """Runs in process but charges a simulated clock per row and honours ``timeout_s`` like the runner."""

    def __init__(self, clock: list[float], seconds_per_row: float) -> None:
        super().__init__()
        self.clock, self.per_row, self.given = clock, seconds_per_row, []

    def run(self, region, frames, timeout_s=None, task=None):
        self.given.append(timeout_s)
        cost = self.per_row * sum(sum(map(len, f)) if isinstance(f, tuple) else len(f) for f in frames)
        if timeout_s is not None and cost > timeout_s:
            self.calls.append(len(frames))
            self.clock[0] += timeout_s
            return RunOutcome("timeout", f"exceeded the {timeout_s:g} s time limit", None, "", timeout_s)
        self.clock[0] += cost
        out = super().run(region, frames, timeout_s)
        out.seconds = cost
        return out


@pytest.mark.parametrize("per_row, stage", [(2e-3, "lookahead"), (2e-2, "sandbox")])
def test_one_budget_bounds_every_sandbox_run(per_row: float, stage: str, history: History,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    import alphaloop.evaluate.pipeline as pipeline

    clock = [1000.0]
    monkeypatch.setattr(pipeline.time, "monotonic", lambda: clock[0])
    box = ClockedBox(clock, per_row)  # full run 8.6 s (or 86 s: over the budget alone), probes ~5x that
    ev = run(BASELINE, history, sandbox=box, eval_timeout_s=20.0)
    assert (ev.accepted, ev.stage) == (False, stage)
    assert ev.reason.startswith("the candidate used its whole evaluation budget of 20 s (full run ")
    assert ev.reason.endswith("make it faster: vectorise generate_features and keep the function called on each "
                              "row or date to a few cheap operations")  # every task's: not only strategy_logic
    assert clock[0] - 1000.0 <= 20.0 + 1e-9 and all(t <= 20.0 for t in box.given)
    ok = run(BASELINE, history, sandbox=ClockedBox(clock, 2e-3), eval_timeout_s=120.0)
    assert ok.accepted and ok.details["lookahead"]["spent_s"]["probes"] > 0


def test_a_full_run_over_the_sandbox_limit_says_which_run_and_what_to_do(history: History,
                                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    """A generous budget does not lift one run's own limit; the model was told only "timeout: exceeded the
    30 s time limit", with no word of which run or what to change (portfolio, a per-date pd.concat)."""
    import alphaloop.evaluate.pipeline as pipeline

    clock = [1000.0]
    monkeypatch.setattr(pipeline.time, "monotonic", lambda: clock[0])
    box = ClockedBox(clock, 2e-2)  # full run ~86 s: over the box's 30 s, well inside the 300 s budget
    ev = run(BASELINE, history, sandbox=box, eval_timeout_s=300.0)
    assert (ev.accepted, ev.stage) == (False, "sandbox")
    assert ev.reason == ("timeout: the full run (train and validation) exceeded the 30 s time limit; make it faster: "
                         "vectorise generate_features and keep the function called on each row or date to a few "
                         "cheap operations")
    import inspect

    from sandbox.runner import Sandbox

    assert inspect.signature(Sandbox).parameters["timeout_s"].default == 30.0  # the limit docs/flags.md quotes


# spins ~10x longer than the 6 s budget on a quiet, fast machine (4,000 per row finished within it there)
SPIN = """
def generate_features(df):
    total = 0.0
    for i in range(len(df) * 40000):
        total = total + (i % 7) * 0.5
    df['f'] = df['Close'].rolling(20).mean() + total * 0.0
    return df

def strategy_logic(row):
    return 1 if row['Close'] > row['f'] else -1
"""
STATEFUL = """
STATE = {"n": 0}

def generate_features(df):
    df['f'] = df['Close'].rolling(20).mean()
    return df

def strategy_logic(row):
    STATE["n"] += 1
    total = 0.0
    for i in range(300):
        total = total + i
    return 1 if (STATE["n"] // 20) % 2 == 0 else -1
"""


@pytest.mark.parametrize("name, code, words", [("spin", SPIN, "whole evaluation budget of 6 s"),
                                               ("stateful", STATEFUL, "signals depend on row positions")])
def test_check_of_a_hostile_candidate_ends_within_its_budget(name: str, code: str, words: str, tmp_path: Path,
                                                             frozen_data: Path) -> None:
    import subprocess
    import sys
    import time

    from sandbox.gate import check as gate

    pytest.importorskip("sandbox.runner")
    assert gate(code).ok  # ordinary-looking code: only the budget or the position probes can stop it
    root = Path(__file__).resolve().parent.parent
    file = tmp_path / f"{name}.py"
    file.write_text(code)
    started = time.monotonic()
    proc = subprocess.run([sys.executable, str(root / "harness.py"), "check", str(file), "--data", str(frozen_data),
                           "--eval-timeout", "6"], cwd=tmp_path, capture_output=True, text=True, timeout=120,
                          env={**__import__("os").environ, "PYTHONPATH": str(root)})
    elapsed = time.monotonic() - started
    verdict = json.loads(proc.stdout.strip().splitlines()[-1])
    assert proc.returncode == 1 and not verdict["accepted"] and words in verdict["reason"], proc.stdout[-2000:]
    assert elapsed < 6 + 30, elapsed  # budget + generous slack for starting Python, loading data and the worker


def test_a_signal_outside_the_contract_and_a_boolean_signal_are_explained(history: History) -> None:
    """Seen answering the real prompts: ``return 2 if ...`` was rejected "bad_output: frame 0: ... (first:
    np.float64(2.0))" (a frame number and a numpy repr on a one-instrument run), and ``return fast > slow``
    (True enters, False keeps) ran always long with no word of why."""
    two = BASELINE.replace("return 1", "return 2")
    ev = run(two, history)
    assert ev.stage == "sandbox" and ev.reason.endswith("signals outside {1, -1, 0} (first: 2.0)"), ev.reason
    from alphaloop.present.names import frame_reason

    said = "frame 0: 2551 signals outside {1, -1, 0} (first: 2.0)"  # the sandbox runner's words
    assert frame_reason(said, 1) == "2551 signals outside {1, -1, 0} (first: 2.0)"
    assert frame_reason(said, 2) == "instrument 1 of 2: 2551 signals outside {1, -1, 0} (first: 2.0)"
    boolean = ('def generate_features(df):\n    df["f"] = df["Close"].rolling(20).mean()\n    return df\n\n\n'
               'def strategy_logic(row):\n    return row["Close"] > row["f"]\n')
    ev = run(boolean, history)
    assert ev.stage == "guards" and "only -1 exits; 0, and False, keep the position" in ev.reason, ev.reason
