"""The gate's third-round classes: callable-taking methods wherever they are called from, time zones
only from plain IANA names wherever given, and literal data counted whole (strings and bytes too)."""

from __future__ import annotations

import pytest

from sandbox.gate import MAX_LITERAL_CHARS, check
from tests.test_sandbox_support import CORPUS_DIR, region


def features(body: str) -> str:
    """A region whose generate_features runs ``body`` (one statement a line)."""
    return region(body)


HOSTILE = {
    # a callable-taking method bound to a name, passed on or reached through its class
    "bound-filter": ("f = df.groupby(df.index.month).filter\nx = f('to_csv')", "string-dispatch"),
    "bound-pivot": ("p = df.pivot_table\nx = p('Close', 'Volume', None, 'plot')", "string-dispatch"),
    "bound-crosstab": ("c = pd.crosstab\nx = c(df['Close'], df['Open'], df['Low'], None, None, 'plot')",
                       "string-dispatch"),
    "piped-pivot": ("x = df.pipe(pd.pivot_table, 'Close', 'Volume', None, 'to_csv')", "string-dispatch"),
    "returned-agg": ("g = (lambda: df.agg)()\nx = g('to_csv')", "string-dispatch"),
    "unbound-pivot": ("x = pd.DataFrame.pivot_table(df, 'Close', 'Volume', None, 'plot')", "string-dispatch"),
    "unbound-apply": ("x = pd.Series.apply(df['Close'], 'to_csv')", "string-dispatch"),
    # time zones through every door
    "dtype-path-tz": ("x = df.index.astype('datetime64[ns, /etc/passwd]')", "timezone"),
    "dtype-piece": ("x = df.index.astype('datetime64[ns, ' + 'Europe/Paris' + ']')", "timezone"),
    "dtype-computed": ("d = 'float' + '64'\nx = df['Close'].astype(d)", "timezone"),
    "dtype-keyword-computed": ("d = str(df.index.dtype)\nx = pd.Series([1.0], dtype=d + '')", "timezone"),
    "tzdtype-positional": ("z = 'UTC'\nx = pd.DatetimeTZDtype('ns', z)", "timezone"),
    "tzdtype-path": ("x = pd.DatetimeTZDtype('ns', '/etc/hosts')", "timezone"),
    "date-range-fifth": ("z = 'UTC'\nx = pd.date_range('2020-01-01', None, 3, 'D', z)", "timezone"),
    "now-positional": ("z = 'UT' + 'C'\nx = pd.Timestamp.now(z)", "timezone"),
    "tzinfo-keyword": ("z = 'UTC'\nx = pd.Timestamp(2020, 1, 1, tzinfo=z)", "timezone"),
    # literal data counted whole: strings and bytes count by their characters
    "string-table": ("\n".join(f"S{k} = '{str(k) * 100}'" for k in range(1, 10)) + "\nx = 1", "literal-data"),
    "bytes-table": ("\n".join(f"x{k} = b'{'7' * 100}{k}'" for k in range(10)), "literal-data"),
    "scalar-chain": ("\n".join(f"x{k} = 1 if df['Close'].iloc[-1] == {1000 + k * 7} else 0" for k in range(250)),
                     "literal-data"),
}


@pytest.mark.parametrize("name", list(HOSTILE))
def test_third_round_hostile_classes_are_refused(name: str) -> None:
    body, rule = HOSTILE[name]
    source = features(body) if not body.startswith("S1 =") else body.rsplit("\n", 1)[0] + "\n" + features("x = 1")
    result = check(source)
    assert (result.ok, result.rule) == (False, rule), result.reason
    assert "/etc" not in result.reason.split("(rule")[0] or name.endswith("path")


ORDINARY = {
    "filter-called": "x = df.groupby(df.index.month).filter(lambda g: len(g) > 3)\ny = df.filter(['Close'])",
    "pivot-keyword": "x = df.pivot_table(values='Close', index=df.index.month, aggfunc='mean')",
    "crosstab-called": "x = pd.crosstab(df.index.month, df['Close'] > df['Open'])",
    "dtypes-written": ("x = df['Close'].astype(float)\ny = df['Volume'].astype('float64')\n"
                       "z = df['Close'].astype(np.float32)\nw = pd.Series([1], dtype=df['Close'].dtype)\n"
                       "v = df[['Close']].astype({'Close': float})\nu = pd.array([1, 2], dtype=pd.Int64Dtype())"),
    "iana-everywhere": ("x = df.index.tz_localize('UTC').astype('datetime64[ns, America/New_York]')\n"
                        "y = pd.DatetimeTZDtype('ns', 'Europe/Paris')\n"
                        "z = pd.date_range('2020-01-01', None, 3, 'D', 'UTC')\nw = df.index.astype('datetime64[ns]')"),
    "long-docstring": '"""' + "A very long explanation of the idea. " * 60 + '"""\nx = 1',
    "many-column-names": "\n".join(f"df['ret_{k}'] = df['Close'].pct_change({k})" for k in range(1, 40)),
}


@pytest.mark.parametrize("name", list(ORDINARY))
def test_third_round_ordinary_code_is_accepted(name: str) -> None:
    result = check(features(ORDINARY[name]))
    assert result.ok, result.reason


def test_ordinary_corpus_stays_far_under_the_literal_budget() -> None:
    """The budget's headroom: every ordinary strategy of the corpus passes at a tenth of the limit."""
    import sandbox.gate_ast as gate_ast

    original = gate_ast.MAX_LITERAL_CHARS
    try:
        gate_ast.MAX_LITERAL_CHARS = MAX_LITERAL_CHARS // 10
        for path in sorted(CORPUS_DIR.glob("*.py")):
            result = check(path.read_text())
            assert result.ok, (path.name, result.reason)
    finally:
        gate_ast.MAX_LITERAL_CHARS = original


def test_literal_reason_says_what_to_do() -> None:
    body = "\n".join(f"x{k} = '{k:03d}' + '{'9' * 100}{k}'" for k in range(10))
    result = check(features(body))
    assert result.rule == "literal-data"
    assert "compute everything else from the data" in result.reason and str(MAX_LITERAL_CHARS) in result.reason


def test_rejection_text_names_no_host_path() -> None:
    """Whatever the runner says (an exception quoting a file it tried, a library's location), the
    reason a candidate gets back names no host path: it cannot learn which files exist."""
    from alphaloop.evaluate.pipeline import EvalContext, evaluate
    from alphaloop.evaluate.scoring import History
    from alphaloop.tasks import get_task
    from sandbox.gate_text import redact_paths
    from sandbox.runner import RunOutcome
    from tests.conftest import InProcessSandbox
    from tests.test_sandbox_support import make_ohlcv

    class Talkative(InProcessSandbox):
        def run(self, region, frames, timeout_s=None, task=None):
            return RunOutcome("exception", "frame 0: ValueError: Invalid TZif file /etc/shadow (in "
                              "/work/venv/lib/python3.11/site-packages/pandas/core/frame.py)", None, "", 0.01)

    frame = make_ohlcv(300, seed=1)
    history = History.from_splits({"train": frame.iloc[:200], "val": frame.iloc[200:]})
    ev = evaluate(region("x = 1"), EvalContext(histories=(history,), sandbox=Talkative(), task=get_task("trade")))
    assert ev.stage == "sandbox" and "/etc" not in ev.reason and "/work" not in ev.reason, ev.reason
    assert "Invalid TZif file <path>" in ev.reason
    assert redact_paths("tz Europe/Paris, 1/2") == "tz Europe/Paris, 1/2"
    assert "/etc" not in str(ev.details["sandbox"]), "nor does the record's copy of the runner's outcome"


def test_a_failed_probe_run_names_no_host_path() -> None:
    """The full run passes, the run of the probes fails quoting files: the probes' reason and details name none."""
    from alphaloop.evaluate.pipeline import PROBES_FAILED, EvalContext, evaluate
    from alphaloop.evaluate.scoring import History
    from alphaloop.tasks import get_task
    from sandbox.runner import RunOutcome
    from tests.conftest import InProcessSandbox
    from tests.test_sandbox_support import make_ohlcv

    class TalkativeProbes(InProcessSandbox):
        def run(self, region, frames, timeout_s=None, task=None):
            if self.calls:  # the probes' run, after the full run
                return RunOutcome("exception", "frame 3: OSError: cannot open /home/user/secret.csv", None, "", 0.01)
            return super().run(region, frames, timeout_s, task)

    frame = make_ohlcv(300, seed=1)
    history = History.from_splits({"train": frame.iloc[:200], "val": frame.iloc[200:]})
    sma = region("df[\"f\"] = df[\"Close\"].rolling(5).mean()", "return 1 if row[\"Close\"] > row[\"f\"] else 0")
    ev = evaluate(sma, EvalContext(histories=(history,), sandbox=TalkativeProbes(), task=get_task("trade")))
    assert ev.stage == "lookahead" and ev.reason.startswith(PROBES_FAILED), ev.reason
    assert "/home" not in ev.reason and "cannot open <path>" in ev.reason
    assert "/home" not in str(ev.details["lookahead"])
