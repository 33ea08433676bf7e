"""Look-ahead detector: every leaking construct is caught, every causal one passes."""

from __future__ import annotations

import textwrap

import numpy as np
import pandas as pd
import pytest

from alphaloop.candidate import extract_region, template_text
from alphaloop.evaluate.cuts import cut_plan, latin_cuts
from alphaloop.evaluate.pipeline import EvalContext, evaluate
from alphaloop.evaluate.probes import (
    DRAWN_CUTS,
    EARLY_CUT,
    FrameLike,
    Leak,
    Probe,
    first_difference,
    perturbed_frame,
    probe_frames,
    warmup_rows,
)
from alphaloop.evaluate.scoring import History
from alphaloop.tasks import get_task
from tests.conftest import InProcessSandbox
from tests.test_sandbox_support import make_ohlcv, region

TRADE = get_task("trade")

F_VS_REF = """
if row["f"] > row["ref"]:
    return 1
if row["f"] < row["ref"]:
    return -1
return 0
"""


def f_region(body: str) -> str:
    """A candidate whose feature ``f`` is ``body``, trading f against ``ref``, f's own 5-day mean (causal)."""
    return region(textwrap.dedent(body).strip() + "\ndf['ref'] = df['f'].rolling(5).mean()", F_VS_REF)


LEAKS = {
    "shift(-1)": "df['f'] = df['Close'].shift(-1)",
    "shift(-5) of returns": "df['f'] = df['Close'].pct_change().shift(-5)",
    "centred rolling mean": "df['f'] = df['Close'].rolling(21, center=True).mean()",
    "full-sample mean": "df['f'] = df['Close'] - df['Close'].mean()",
    "full-sample std": "df['f'] = df['Close'].pct_change() / df['Close'].pct_change().std()",
    "full-sample max": "df['f'] = df['Close'] / df['Close'].max()",
    "full-sample min": "df['f'] = df['Close'] / df['Close'].min()",
    "full-sample z-score": "df['f'] = (df['Close'] - df['Close'].mean()) / df['Close'].std()",
    "full-sample rank": "df['f'] = df['Close'].rank(pct=True)",
    "full-sample quantile": "df['f'] = (df['Close'] > df['Close'].quantile(0.8)).astype(float)",
    "qcut over the sample": "df['f'] = pd.qcut(df['Close'], 5, labels=False).astype(float)",
    "bfill of later values": """
        brk = df['Close'] > df['Close'].rolling(20).max().shift(1)
        df['f'] = df['Close'].where(brk).bfill()
    """,
    "bfill of the warm-up": "df['f'] = df['Close'].rolling(50).mean().bfill()",
    "fillna(method) backwards via fillna(bfill)": (
        "df['f'] = df['Close'].rolling(30).mean().fillna(df['Close'].rolling(30).mean().bfill())"
    ),
    "interpolate between later events": """
        brk = df['Close'] > df['Close'].rolling(20).max().shift(1)
        df['f'] = df['Close'].where(brk).interpolate()
    """,
    "weekly resample filled backwards": "df['f'] = df['Close'].resample('W').mean().reindex(df.index, method='bfill')",
    "monthly resample filled backwards": "df['f'] = df['Close'].resample('ME').last().reindex(df.index).bfill()",
    "quarterly resample filled backwards": (
        "df['f'] = df['Close'].resample('QE').max().reindex(df.index, method='bfill')"
    ),
    "reversed rolling": "df['f'] = df['Close'][::-1].rolling(10).mean()[::-1]",
    "reversed ewm": "df['f'] = df['Close'][::-1].ewm(span=10).mean()[::-1]",
    "reversed cummax": "df['f'] = df['Close'][::-1].cummax()[::-1]",
    "np.gradient": "df['f'] = np.gradient(df['Close'].to_numpy())",
    "FFT low-pass": """
        spec = np.fft.rfft(df['Close'].to_numpy())
        spec[10:] = 0
        df['f'] = np.fft.irfft(spec, n=len(df))
    """,
    "polyfit detrend": """
        t = np.arange(len(df))
        slope, icpt = np.polyfit(t, df['Close'].to_numpy(), 1)
        df['f'] = df['Close'] - (slope * t + icpt)
    """,
    "window from sample length": "df['f'] = df['Close'].rolling(len(df) // 10).mean()",
    "last row's price": "df['f'] = df['Close'] / df['Close'].iloc[-1]",
    "leak only at full length": """
        df['f'] = df['Close'].shift(-1) if len(df) >= 600 else df['Close']
    """,
    "leak in the last fifth only": """
        pos = np.arange(len(df))
        df['f'] = np.where(pos > 480, df['Close'].shift(-1), df['Close'])
    """,
}

CLEAN = {
    "rolling mean": "df['f'] = df['Close'].rolling(20).mean()",
    "rolling std of returns": "df['f'] = df['Close'].pct_change().rolling(20).std()",
    "rolling max/min channel": (
        "df['f'] = (df['Close'] - df['Low'].rolling(20).min())"
        " / (df['High'].rolling(20).max() - df['Low'].rolling(20).min())"
    ),
    "rolling apply": "df['f'] = df['Close'].rolling(10).apply(lambda w: w[-1] - w.mean(), raw=True)",
    "rolling rank": "df['f'] = df['Close'].rolling(20).rank(pct=True)",
    "ewm adjust": "df['f'] = df['Close'].ewm(span=12).mean() - df['Close'].ewm(span=26).mean()",
    "ewm no adjust": "df['f'] = df['Close'].ewm(alpha=0.1, adjust=False).mean()",
    "expanding mean/max": "df['f'] = df['Close'].expanding().mean() / df['Close'].expanding().max()",
    "expanding z-score": "df['f'] = (df['Close'] - df['Close'].expanding(20).mean()) / df['Close'].expanding(20).std()",
    "shift(1)": "df['f'] = df['Close'].shift(1)",
    "shift(5)": "df['f'] = df['Close'].shift(5)",
    "diff(1)": "df['f'] = df['Close'].diff(1)",
    "diff(3)": "df['f'] = df['Close'].diff(3)",
    "pct_change(10)": "df['f'] = df['Close'].pct_change(10)",
    "cumsum of log returns": "df['f'] = np.log(df['Close']).diff().fillna(0).cumsum()",
    "forward fill of events": """
        brk = df['Close'] > df['Close'].rolling(20).max().shift(1)
        df['f'] = df['Close'].where(brk).ffill()
    """,
    "rsi": """
        d = df['Close'].diff()
        up = d.clip(lower=0).ewm(alpha=1 / 14, adjust=False).mean()
        dn = (-d.clip(upper=0)).ewm(alpha=1 / 14, adjust=False).mean()
        df['f'] = 100 - 100 / (1 + up / dn)
    """,
    "day of week": "df['f'] = df.index.day_of_week.to_numpy().astype(float)",
    "weekly resample filled forwards from last week": (
        "df['f'] = df['Close'].resample('W').last().shift(1).reindex(df.index, method='ffill')"
    ),
    "numpy loop (causal)": """
        c = df['Close'].to_numpy()
        out = np.full(len(c), np.nan)
        out[10:] = c[10:] - c[:-10]
        df['f'] = out
    """,
}

def find_leak_details(full: FrameLike, probes: list[Probe], results: list[FrameLike]) -> Leak | None:
    """The earliest-dated difference over all probes, or None when the candidate is causal."""
    assert len(probes) == len(results)
    leaks = [leak for p, r in zip(probes, results, strict=True) if (leak := first_difference(full, p, r)) is not None]
    return min(leaks, key=lambda leak: (leak.row, leak.probe.cut)) if leaks else None


def find_leak(frame: pd.DataFrame, full: FrameLike, probes: list[Probe], results: list[FrameLike]) -> str | None:
    """A rejection reason naming the column (or "signals") and the first date that differs."""
    leak = find_leak_details(full, probes, results)
    return None if leak is None else leak.message(frame.index)


BASELINE = extract_region(template_text())  # the project's own trade.py region, SMA 20/50 crossover


def probe(code: str, frame: pd.DataFrame, seed: int = 0) -> str | None:
    """Run ``code`` on the frame and its probes in-process; return find_leak's verdict."""
    box = InProcessSandbox()
    full = box.run(code, [frame])
    assert full.ok, full.reason
    probes = probe_frames(frame, full.results[0], seed=seed)
    out = box.run(code, [p.frame for p in probes])
    assert out.ok, out.reason
    return find_leak(frame, full.results[0], probes, out.results)


@pytest.fixture(scope="module")
def frame() -> pd.DataFrame:
    return make_ohlcv(600, seed=3)


@pytest.fixture(scope="module")
def history(frame: pd.DataFrame) -> History:
    return History.from_splits({"train": frame.iloc[:420], "val": frame.iloc[420:]})


@pytest.mark.parametrize("name", list(LEAKS))
def test_leak_is_caught(name: str, history: History) -> None:
    ev = evaluate(f_region(LEAKS[name]), EvalContext(histories=(history,), sandbox=InProcessSandbox(), task=TRADE,
                                                     folds=2))
    assert (ev.accepted, ev.stage, ev.scores) == (False, "lookahead", None), f"{name}: {ev.stage} {ev.reason}"
    # a probe inside the full run's warm-up (rows the full run leaves NaN) compares the signals only
    assert ev.reason.startswith(("look-ahead: column 'f' changes on ", "look-ahead: signals changes on "))
    assert any(f"changes on {d.date()} " in ev.reason for d in history.frame.index)


@pytest.mark.parametrize("name", list(CLEAN))
def test_causal_feature_passes(name: str, history: History) -> None:
    ev = evaluate(f_region(CLEAN[name]), EvalContext(histories=(history,), sandbox=InProcessSandbox(), task=TRADE,
                                                     folds=2))
    assert ev.stage in ("ok", "guards") and ev.details["lookahead"]["leak"] is None, ev.reason


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_baseline_passes_for_any_seed(seed: int, frame: pd.DataFrame) -> None:
    assert probe(BASELINE, frame, seed=seed) is None


def test_reason_names_column_and_first_date(frame: pd.DataFrame) -> None:
    reason = probe(f_region("df['f'] = df['Close'].shift(-1)"), frame)
    assert "column 'f'" in reason
    assert f"changes on {frame.index[EARLY_CUT].date()}" in reason


def test_signal_only_leak_names_signals(frame: pd.DataFrame) -> None:
    code = """
def generate_features(df):
    df['tomorrow'] = np.where(df['Close'].shift(-1) > df['Close'], 'up', 'down')
    return df

def strategy_logic(row):
    return 1 if row['tomorrow'] == 'up' else -1
"""
    reason = probe(code, frame)
    assert reason is not None and "signals change" in reason


def test_conditional_column_is_a_leak(frame: pd.DataFrame) -> None:
    code = """
def generate_features(df):
    if len(df) > 400:
        df['big'] = 1.0
    return df

def strategy_logic(row):
    return 0
"""
    reason = probe(code, frame)
    assert reason is not None and "column 'big' disappears" in reason


def test_warmup_is_longest_leading_nan_run() -> None:
    feats = {"a": np.array([np.nan, np.nan, 1.0, 2.0]), "b": np.array([np.nan, 1.0, np.nan, 1.0]),
             "all_nan": np.full(4, np.nan), "c": np.arange(4.0)}
    assert warmup_rows(feats) == 2


def test_probes_cover_warmup_bands_and_the_tail(frame: pd.DataFrame) -> None:
    full = InProcessSandbox().run(BASELINE, [frame]).results[0]
    probes = probe_frames(frame, full, seed=0, window=slice(420, 600))
    n = len(frame)
    warm = warmup_rows(full.features)
    assert warm == 49  # the SMA 50's leading NaN rows
    truncated = {p.cut for p in probes if p.kind == "truncate"}
    assert EARLY_CUT in truncated and 24 in truncated  # a cut inside the warm-up
    (tail,) = [p for p in probes if p.kind == "perturb"]  # the only perturbed probe: full length, last bar replaced
    assert (tail.cut, len(tail.frame), tail.why) == (n - 2, n, "tail")
    pd.testing.assert_frame_equal(tail.frame.iloc[: n - 1], frame.iloc[: n - 1])
    assert (tail.frame.iloc[n - 1] != frame.iloc[n - 1]).all()  # every column of the last bar, volume included
    assert all(len(p.frame) == p.cut + 1 for p in probes if p.kind == "truncate")
    assert [p.why.split(":")[0] for p in probes].count("band 0") == 1 and any(420 <= c < n - 2 for c in truncated)
    assert sum(len(p.frame) for p in probes) < 5 * n  # bench/bench_lookahead.py measures it on the sample


def test_the_cut_plan_covers_every_class_whatever_the_seed(frame: pd.DataFrame) -> None:
    """Every weekday, every week of the month, a month start, a quarter end, both parities, the validation
    window and the last row with a successor, for every seed; and every row stays reachable."""
    n = len(frame)
    idx = frame.index
    month_start = set(np.flatnonzero(np.diff(idx.month.to_numpy()) != 0) + 1)
    quarter_end = set(np.flatnonzero(np.diff(idx.quarter.to_numpy()) != 0))
    hits = np.zeros(n, dtype=np.int64)
    for seed in range(400):
        plan = cut_plan(idx, 49, np.random.default_rng(seed), window=slice(420, 600))
        rows = np.array([c.row for c in plan])
        assert len(set(rows)) == len(rows) and rows.max() == n - 2
        assert set(idx[rows].day_of_week) == {0, 1, 2, 3, 4} and set((idx[rows].day - 1) // 7) == {0, 1, 2, 3, 4}
        assert month_start & set(rows) and quarter_end & set(rows) and set(rows % 2) == {0, 1}
        assert ((rows >= 420) & (rows < n - 2)).any()
    for seed in range(3000):
        bands = [r for r, _ in latin_cuts(idx, np.random.default_rng(seed))]
        assert len(bands) == DRAWN_CUTS and set(idx[bands].day_of_week) == {0, 1, 2, 3, 4}
        hits[bands] += 1
    assert (hits[EARLY_CUT + 1: n - 1] > 0).all()  # no row out of reach of the band cuts


def test_perturbed_frame_keeps_past_and_shape(frame: pd.DataFrame) -> None:
    out = perturbed_frame(frame, 300, seed=5)
    pd.testing.assert_frame_equal(out.iloc[:301], frame.iloc[:301])
    assert out.index.equals(frame.index)
    assert (out["Close"].iloc[301:] != frame["Close"].iloc[301:]).all()
    assert (out["High"] >= out["Low"]).all() and (out[["Open", "High", "Low", "Close"]] > 0).all().all()
    assert (out["High"] >= out[["Open", "Close"]].max(axis=1)).all()
    assert (out["Low"] <= out[["Open", "Close"]].min(axis=1)).all()
    # the future's intrabar shape is redrawn: neither High/Low nor the next Close/Open survives
    for a, b in (("High", "Low"), ("Close", "Open"), ("High", "Close")):
        real = (frame[a] / frame[b]).iloc[301:].to_numpy()
        assert not np.isclose((out[a] / out[b]).iloc[301:].to_numpy(), real, rtol=1e-9, atol=0).any()
    nxt = (frame["Open"].shift(-1) / frame["Close"]).iloc[301:-1].to_numpy()
    assert not np.isclose((out["Open"].shift(-1) / out["Close"]).iloc[301:-1].to_numpy(), nxt, rtol=1e-9, atol=0).any()


def test_float_noise_is_tolerated_but_nan_mismatch_is_not(frame: pd.DataFrame) -> None:
    n = 50
    full = type("R", (), {})()
    full.signals = np.zeros(n, dtype=np.int8)
    full.features = {"x": np.linspace(1.0, 2.0, n), "w": np.r_[np.nan, np.ones(n - 1)]}
    probe_ = Probe(frame.iloc[:30], 29, "truncate")
    noisy = type("R", (), {})()
    noisy.signals = np.zeros(30, dtype=np.int8)
    noisy.features = {"x": full.features["x"][:30] * (1 + 1e-13), "w": full.features["w"][:30].copy()}
    assert find_leak_details(full, [probe_], [noisy]) is None
    noisy.features["w"][3] = np.nan
    leak = find_leak_details(full, [probe_], [noisy])
    assert leak is not None and leak.column == "w" and leak.row == 3


def test_band_cuts_reach_every_row_weekday_and_day_of_month(frame: pd.DataFrame) -> None:
    """Over many nonces the band cuts cover every row after the early cut up to n - 2, so no weekday, day of
    month, band or the last rows are out of reach; each band holds exactly one cut."""
    n = len(frame)
    hits = np.zeros(n, dtype=np.int64)
    for seed in range(3000):
        cuts = sorted(row for row, _ in latin_cuts(frame.index, np.random.default_rng(seed)))
        assert len(cuts) == DRAWN_CUTS
        assert [c * DRAWN_CUTS // (n - 1) for c in cuts] == list(range(DRAWN_CUTS))
        hits[cuts] += 1
    assert hits[EARLY_CUT + 1: n - 1].min() > 0 and hits[n - 1] == 0
    share = hits[: n - 1] / hits.sum()
    assert share.max() < 8 / (n - 1)  # a row alone of its weekday and week of the month in its band: ~5x as likely
    days = frame.index[np.flatnonzero(hits)]
    assert set(days.day_of_week) == {0, 1, 2, 3, 4} and set(days.day) == set(frame.index.day)


def test_catch_rate_of_a_sparse_leak_matches_the_docstring_bound(frame: pd.DataFrame) -> None:
    """A one-bar leak on a random 25% of rows is caught by the band cuts alone at least 1 - (1 - 0.87 p)^5 of
    the time (cuts.py: the Latin draw makes a row of days 1-28 0.87x as likely as a uniform draw)."""
    active = np.random.default_rng(7).random(len(frame) - 1) < 0.25
    caught = sum(bool(active[[r for r, _ in latin_cuts(frame.index, np.random.default_rng(seed))]].any())
                 for seed in range(2000))
    assert caught / 2000 >= 1 - (1 - 0.87 * 0.25) ** DRAWN_CUTS - 0.03


NONCES = range(12)  # a run's secret nonce is random: these classes must be caught whichever it is

LATE_AND_OFFDAY_LEAKS = {
    "last rows only": "pos = np.arange(len(df))\ndf['f'] = np.where(pos >= 560, df['Close'].shift(-1), df['Close'])",
    "rows after a row of validation": ("pos = np.arange(len(df))\n"
                                       "df['f'] = np.where(pos >= 450, df['Close'].shift(-1), df['Close'])"),
    "Mondays and Fridays only": ("dow = df.index.day_of_week\n"
                                 "df['f'] = np.where((dow == 0) | (dow == 4), df['Close'].shift(-1), df['Close'])"),
    "Wednesdays only": "df['f'] = np.where(df.index.day_of_week == 2, df['Close'].shift(-1), df['Close'])",
    "first week of the month only": "df['f'] = np.where(df.index.day <= 7, df['Close'].shift(-1), df['Close'])",
    "third week of the month only": ("d = df.index.day\n"
                                     "df['f'] = np.where((d >= 15) & (d <= 21), df['Close'].shift(-1), df['Close'])"),
    "days 29-31 only": "df['f'] = np.where(df.index.day >= 29, df['Close'].shift(-1), df['Close'])",
    "last seven days of the month": ("d = df.index.day\n"
                                     "df['f'] = np.where(d > df.index.days_in_month - 7, df['Close'].shift(-1), "
                                     "df['Close'])"),
    "month end only": ("end = (df.index + pd.offsets.BDay(1)).month != df.index.month\n"
                       "df['f'] = np.where(end, df['Close'].shift(-1), df['Close'])"),
    "quarter end only": ("end = (df.index + pd.offsets.BDay(1)).quarter != df.index.quarter\n"
                         "df['f'] = np.where(end, df['Close'].shift(-1), df['Close'])"),
    "month start only": ("start = (df.index - pd.offsets.BDay(1)).month != df.index.month\n"
                         "df['f'] = np.where(start, df['Close'].shift(-1), df['Close'])"),
    "odd rows only": "pos = np.arange(len(df))\ndf['f'] = np.where(pos % 2 == 1, df['Close'].shift(-1), df['Close'])",
    "even rows only": "pos = np.arange(len(df))\ndf['f'] = np.where(pos % 2 == 0, df['Close'].shift(-1), df['Close'])",
}


@pytest.mark.parametrize("name", list(LATE_AND_OFFDAY_LEAKS))
def test_leaks_keyed_to_a_place_or_a_calendar_class_are_caught_whatever_the_nonce(name: str, history: History) -> None:
    """Cuts fall on the last row with a successor, every weekday, every week of the month, a month start,
    a year or quarter end and both row parities for every nonce (cuts.cut_plan): no draw lets these pass."""
    for nonce in NONCES:
        ev = evaluate(f_region(LATE_AND_OFFDAY_LEAKS[name]),
                      EvalContext(histories=(history,), sandbox=InProcessSandbox(), task=TRADE, folds=2,
                                  probe_nonce=nonce))
        assert (ev.accepted, ev.stage) == (False, "lookahead"), f"{name}, nonce {nonce}: {ev.stage} {ev.reason}"


def test_a_leak_on_one_band_of_rows_is_caught_at_the_fixed_nonce(history: History) -> None:
    """A window of rows that holds neither the first nor the last rows is caught when a drawn cut lands in
    it: always once it spans two bands, else with about its share of its band (cuts.py)."""
    code = "pos = np.arange(len(df))\ndf['f'] = np.where((pos > 5) & (pos < 120), df['Close'].shift(-1), df['Close'])"
    ev = evaluate(f_region(code), EvalContext(histories=(history,), sandbox=InProcessSandbox(), task=TRADE, folds=2))
    assert (ev.accepted, ev.stage) == (False, "lookahead"), ev.reason
