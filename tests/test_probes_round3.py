"""Probes a candidate cannot predict or survive: a leak through the future's intrabar shape, lookups
keyed by day numbers, price levels or rows, and unseeded randomness are rejected with a reason
naming their class; ordinary history-dependent code (expanding statistics, causal state, seeded
randomness, calendar effects) is accepted."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from alphaloop.evaluate.pipeline import EvalContext, Evaluation, evaluate
from alphaloop.evaluate.probes import first_difference, probe_frames
from alphaloop.evaluate.scoring import History
from alphaloop.tasks import get_task
from tests.conftest import InProcessSandbox
from tests.test_sandbox_support import make_ohlcv

PROBE_GUARDS = ("date_dependence", "level_dependence", "position_dependence")


@pytest.fixture(scope="module")
def history() -> History:
    frame = make_ohlcv(1600, seed=21)
    return History.from_splits({"train": frame.iloc[:1100], "val": frame.iloc[1100:]})


NONCES = range(12)  # a run's secret nonce is random: whatever it is, leaks are caught and ordinary code passes


@pytest.fixture(scope="module")
def small_history() -> History:
    frame = make_ohlcv(1000, seed=24)
    return History.from_splits({"train": frame.iloc[:700], "val": frame.iloc[700:]})


def run(region: str, history: History, nonce: int = 1) -> Evaluation:
    return evaluate(region, EvalContext(histories=(history,), sandbox=InProcessSandbox(), task=get_task("trade"),
                                        folds=2, probe_nonce=nonce))


def good_days(history: History, k: int = 40) -> np.ndarray:
    """Rows of validation whose next bar rises most: what a memorised table would hold."""
    close = history.frame["Close"].to_numpy()
    nxt = np.r_[close[1:] / close[:-1] - 1.0, 0.0]
    val = np.arange(len(close))[history.windows["val"]][:-1]
    return np.sort(val[np.argsort(nxt[val])[-k:]])


def keyed(key_expr: str, keys) -> str:
    """A strategy that enters on the memorised keys and exits otherwise: each key is one day's answer."""
    table = ", ".join(repr(k) for k in keys)
    return f"""
KEYS = ({table},)

def generate_features(df):
    df['key'] = {key_expr}
    df['trend'] = df['Close'] / df['Close'].rolling(30).mean()
    return df

def strategy_logic(row):
    if row['key'] in KEYS:
        return 1
    return -1
"""


def failed(ev: Evaluation) -> list[str]:
    return list((ev.details.get("guards") or {}).get("failed", []))


def test_day_number_lookup_is_caught_by_the_drawn_calendar(history: History) -> None:
    """Days since the epoch modulo 10227 survive every whole 28-year shift; they do not survive years
    drawn one by one."""
    days = history.frame.index.to_numpy().astype("int64") // 86_400_000_000_000 % 10227
    region = keyed("(df.index.to_numpy().astype('int64') // 86400000000000) % 10227", days[good_days(history)].tolist())
    for nonce in NONCES:
        ev = run(region, history, nonce)
        assert not ev.accepted and "date_dependence" in failed(ev), f"{nonce}: {ev.reason}"
        assert "other years with the same calendar" in ev.reason and "day numbers" in ev.reason


def test_common_years_never_move_by_a_whole_calendar_cycle() -> None:
    """A day number modulo 10227 (28 years) survives a shift of whole cycles: the drawn calendar gives each
    common year another shift (measured before: 10.7 of 17 years kept one on average, all 17 in 0.13% of
    draws); a leap year's calendar recurs only every 28 years, so leap years keep theirs."""
    from alphaloop.evaluate.invariance import calendar_key, drawn_years

    years = list(range(1999, 2016))
    for seed in range(300):
        mapping = drawn_years(years, np.random.default_rng(seed))
        assert mapping is not None and list(mapping.values()) == sorted(mapping.values())
        assert all(calendar_key(y) == calendar_key(z) for y, z in mapping.items())
        assert not any((z - y) % 28 == 0 for y, z in mapping.items() if not calendar_key(y)[1])


def test_price_level_lookup_is_caught_by_the_drawn_level(history: History) -> None:
    closes = history.frame["Close"].round(2).to_numpy()[good_days(history)].tolist()
    ev = run(keyed("df['Close'].round(2)", closes), history)
    assert not ev.accepted and "level_dependence" in failed(ev), ev.reason
    assert "rescaled" in ev.reason and "compare prices with each other" in ev.reason


def test_volume_level_lookup_is_caught_by_the_drawn_level(history: History) -> None:
    volumes = history.frame["Volume"].to_numpy()[good_days(history)].tolist()
    ev = run(keyed("df['Volume']", volumes), history)
    assert not ev.accepted and "level_dependence" in failed(ev), ev.reason


def test_row_lookup_is_caught_by_the_position_probes(history: History) -> None:
    ev = run(keyed("np.arange(len(df))", good_days(history).tolist()), history)
    assert not ev.accepted and "position_dependence" in failed(ev), ev.reason
    assert "reappear" in ev.reason or "of the bars" in ev.reason


def test_a_row_table_in_train_is_caught_too(small_history: History) -> None:
    """Position probes compare from the warm-up plus SETTLE_ROWS on, not only the later half: rows memorised
    in train (they move the train folds) move with the rows as well."""
    rows = list(range(400, 490, 6))  # all before row 500, which the old half-history floor compared from
    for nonce in (0, 1, 2):
        ev = run(keyed("np.arange(len(df))", rows), small_history, nonce)
        assert not ev.accepted and "position_dependence" in failed(ev), f"{nonce}: {ev.reason}"


def test_row_lookup_hidden_in_a_converging_feature_is_still_caught(history: History) -> None:
    """1 / (row + 1) converges like an expanding statistic, yet the changes it makes move with the rows."""
    rows = good_days(history, 15).tolist()  # a short table: a long one is refused by the literal budget
    region = keyed("1.0 / (np.arange(len(df)) + 1.0)", [1.0 / (r + 1.0) for r in rows])
    ev = run(region, history)
    assert not ev.accepted and "position_dependence" in failed(ev), ev.reason


ROW_KEYED = {
    "odd rows": "np.arange(len(df)) % 2",
    "every third row": "(np.arange(len(df)) % 3 == 0).astype(float)",
    "a step at a row number": "(np.arange(len(df)) >= 800).astype(float)",
}


@pytest.mark.parametrize("name", list(ROW_KEYED))
def test_row_keyed_positions_are_caught_whatever_the_nonce(name: str, small_history: History) -> None:
    """Prepending and trimming move rows by a prime number of bars, so odd rows (or any row modulo k) move
    on every draw; a step at a row number changes a run of bars."""
    region = f"""
def generate_features(df):
    df['k'] = {ROW_KEYED[name]}
    df['t'] = df['Close'] / df['Close'].rolling(30).mean()
    return df

def strategy_logic(row):
    if row['k'] > 0:
        return 1
    return 1 if row['t'] > 1.02 else -1
"""
    for nonce in NONCES:
        ev = run(region, small_history, nonce)
        assert not ev.accepted and "position_dependence" in failed(ev), f"{nonce}: {ev.reason}"


NEXT_BAR = {
    "High/Low": "(df['High'] / df['Low']).shift(-1)",
    "Close/Open": "(df['Close'] / df['Open']).shift(-1)",
    "Volume": "df['Volume'].shift(-1)",
    "Adj Close/Close": "(df['Adj Close'] / df['Close']).shift(-1)",
}


@pytest.mark.parametrize("what", list(NEXT_BAR))
def test_the_tail_probe_replaces_every_part_of_the_last_bar(what: str) -> None:
    """The tail probe keeps the full length and replaces only the last bar: a leak reading any part of the
    next bar (its intrabar shape, its volume, its dividend adjustment) on the last row shows there. The
    first perturbation scaled a bar by one ratio (shape survived) and shuffled volumes (one bar: unchanged)."""
    frame = make_ohlcv(400, seed=23)
    frame["Adj Close"] = frame["Close"] * np.where(np.arange(400) < 399, 0.98, 0.97)  # a dividend on the last bar
    region = f"""
def generate_features(df):
    df['f'] = {NEXT_BAR[what]}
    return df

def strategy_logic(row):
    return 1 if row['f'] > 1.0 else -1
"""
    box = InProcessSandbox()
    full = box.run(region, [frame]).results[0]
    for seed in range(3):
        (tail,) = [p for p in probe_frames(frame, full, seed=seed) if p.why == "tail"]
        leak = first_difference(full, tail, box.run(region, [tail.frame]).results[0])
        assert leak is not None and (leak.column, leak.row) == ("f", 398), what


def test_unseeded_randomness_is_named_as_such(history: History) -> None:
    region = """
def generate_features(df):
    df['noise'] = np.random.normal(0.0, 1.0, len(df))
    return df

def strategy_logic(row):
    return 1 if row['noise'] > 0 else -1
"""
    ev = run(region, history)
    assert not ev.accepted and "seed your random numbers" in ev.reason, ev.reason
    assert "line 3: np.random.normal(...) draws from numpy's unseeded global generator" in ev.reason


def test_unseeded_randomness_is_named_in_the_real_sandbox(real_sandbox) -> None:
    """Every frame's process is forked from one zygote and inherits numpy's global generator state, so an
    unseeded draw gives every probe the same numbers and no probe differs (it was accepted), while the
    next run (final, a resume) draws others: it is named before any probe runs."""
    frame = make_ohlcv(600, seed=25)
    history = History.from_splits({"train": frame.iloc[:420], "val": frame.iloc[420:]})
    region = """
def generate_features(df):
    df['noise'] = np.random.normal(0.0, 1.0, len(df))
    df['t'] = df['Close'] / df['Close'].rolling(40).mean()
    return df

def strategy_logic(row):
    return 1 if row['t'] + 0.01 * row['noise'] > 1.0 else -1
"""
    ev = evaluate(region, EvalContext(histories=(history,), sandbox=real_sandbox, task=get_task("trade"), folds=2,
                                      eval_timeout_s=120.0))
    assert (ev.accepted, ev.stage) == (False, "lookahead"), ev.reason
    assert ev.reason.startswith("seed your random numbers") and "line 3: np.random.normal(...)" in ev.reason


CLEAN = {
    "expanding z-score": """
def generate_features(df):
    m = df['Close'].pct_change().rolling(20).mean()
    df['z'] = (m - m.expanding(60).mean()) / m.expanding(60).std()
    return df

def strategy_logic(row):
    return 1 if row['z'] > 0.5 else (-1 if row['z'] < -0.5 else 0)
""",
    "expanding quantile exit": """
def generate_features(df):
    v = df['Close'].pct_change().rolling(20).std()
    df['v'] = v
    df['q'] = v.expanding(100).quantile(0.8)
    df['t'] = df['Close'] / df['Close'].rolling(50).mean()
    return df

def strategy_logic(row):
    if row['v'] > row['q']:
        return -1
    return 1 if row['t'] > 1.0 else 0
""",
    "causal state in strategy_logic": """
SEEN = []

def generate_features(df):
    df['r'] = df['Close'].pct_change(5)
    return df

def strategy_logic(row):
    SEEN.append(row['r'])
    recent = [x for x in SEEN[-60:] if x == x]
    if len(recent) < 20:
        return 0
    mean = sum(recent) / len(recent)
    return 1 if row['r'] > mean else -1
""",
    "seeded randomness": """
def generate_features(df):
    rng = np.random.default_rng(42)
    df['t'] = df['Close'] / df['Close'].rolling(40).mean()
    df['jitter'] = rng.normal(0.0, 1e-6, len(df))
    return df

def strategy_logic(row):
    return 1 if row['t'] + row['jitter'] > 1.0 else -1
""",
    "month and weekday effects": """
def generate_features(df):
    df['m'] = df.index.month
    df['d'] = df.index.day_of_week
    df['t'] = df['Close'] / df['Close'].rolling(30).mean()
    return df

def strategy_logic(row):
    if row['m'] in (5, 6, 7, 8, 9) and row['d'] == 4:
        return -1
    return 1 if row['t'] > 1.0 else 0
""",
    "uninitialised warm-up rows left NaN": """
def generate_features(df):
    out = np.full(len(df), np.nan)
    c = df['Close'].to_numpy()
    out[50:] = c[50:] / c[:-50]
    df['mom'] = out
    return df

def strategy_logic(row):
    return 1 if row['mom'] > 1.0 else -1
""",
}


def offline_candidates(count: int = 6) -> dict[str, str]:
    """What the offline trade search writes: chained seeded mutations of its baseline spec."""
    import random

    from alphaloop.propose.offline import BASELINE_SPEC, mutate, render

    out, rng, spec = {}, random.Random(5), BASELINE_SPEC
    while len(out) < count:
        spec, names, _ = mutate(rng, spec, "sharpe", None)
        out[f"offline {len(out)}: {'+'.join(names)}"] = render(spec)
    return out


CLEAN.update(offline_candidates())
@pytest.mark.parametrize("name", list(CLEAN))
def test_ordinary_history_dependent_code_is_accepted(name: str, small_history: History) -> None:
    for nonce in NONCES:
        ev = run(CLEAN[name], small_history, nonce)
        assert ev.stage in ("ok", "guards") and ev.details["lookahead"]["leak"] is None, f"{nonce}: {ev.reason}"
        assert not set(failed(ev)) & set(PROBE_GUARDS), f"{nonce}: {ev.reason}"


def test_forecaster_gets_the_date_guards(real_sandbox) -> None:
    """A forecaster reading the calendar year is rejected like a strategy (it had no date guard)."""
    from tests.forecast_support import history_of, synthetic_bars

    region = """
def generate_features(df):
    df['y'] = (df.index.year % 2).astype(float)
    return df

def forecast(row):
    p = (0.2, 0.3, 0.5) if row['y'] == 1.0 else (0.5, 0.3, 0.2)
    return {h: p for h in (1, 3, 5, 10)}
"""
    ev = evaluate(region, EvalContext(histories=(history_of(synthetic_bars(900, seed=3)),), sandbox=real_sandbox,
                                      task=get_task("forecast"), eval_timeout_s=120.0, probe_nonce=1))
    assert (ev.accepted, ev.stage) == (False, "guards"), ev.reason
    assert ev.reason.startswith("forecasts change on") and "other years with the same calendar" in ev.reason


def test_the_figures_quoted_in_the_docs_are_the_code_s() -> None:
    from pathlib import Path

    from alphaloop.evaluate.invariance import LEVEL_EXPONENTS, PATTERN_SHARE, PREPEND_ROWS, TRIM_ROWS
    from sandbox.gate import MAX_LITERAL_CHARS

    text = " ".join((Path(__file__).resolve().parent.parent / "docs" / "trust.md").read_text().split())
    assert f"at most {MAX_LITERAL_CHARS} characters of literal data" in text
    assert f"each 2^k with k drawn from {LEVEL_EXPONENTS[0]} to {LEVEL_EXPONENTS[1]} either way" in text
    assert f"at least {PATTERN_SHARE:.0%} of the changed bars" in text
    assert f"{PREPEND_ROWS[0]}-{PREPEND_ROWS[1]} seeded" in text and f"first {TRIM_ROWS[0]}-{TRIM_ROWS[1]}" in text


def test_final_probes_inside_the_test_split_before_it_reports() -> None:
    """A leak active only on the test rows (and only at full length, so truncations never see it) is
    rejected when the test split is the probes' focus, whatever the nonce."""
    frame = make_ohlcv(1600, seed=22)
    history = History.from_splits({"train": frame.iloc[:1000], "val": frame.iloc[1000:1300],
                                   "test": frame.iloc[1300:]})
    region = """
def generate_features(df):
    nxt = df['Close'].shift(-1) / df['Close']
    test_rows = np.arange(len(df)) >= 1300
    df['f'] = np.where(test_rows & (len(df) >= 1600), nxt, 1.0)
    return df

def strategy_logic(row):
    return 1 if row['f'] > 1.0 else -1
"""
    for nonce in range(1, 6):
        ev = evaluate(region, EvalContext(histories=(history,), sandbox=InProcessSandbox(), task=get_task("trade"),
                                          folds=2, probe_nonce=nonce, probe_window="test"))
        assert (ev.accepted, ev.stage) == (False, "lookahead"), f"{nonce}: {ev.reason}"
        assert ev.details["lookahead"]["leak"]["probe"]["cut"] >= 1300


CROSS = """
SEEN = {}

def generate_features(df):
    key = round(float(df['Close'].iloc[0]), 6)
    nxt = (df['Close'].shift(-1) / df['Close']).to_numpy()
    if not SEEN:
        SEEN['first'] = nxt  # the first instrument's future, left for the next one
        df['f'] = 1.0
    else:
        other = SEEN['first']
        m = min(len(other), len(df))
        f = np.ones(len(df))
        f[:m] = other[:m]
        df['f'] = f
    return df

def strategy_logic(row):
    return 1 if row['f'] > 1.0 else -1
"""


def test_reading_another_instruments_future_is_caught_on_a_universe(real_sandbox) -> None:
    """The full run holds every instrument in one process (one namespace); each probe holds one
    instrument alone, so an instrument whose outputs came from another's future changes there."""
    frames = [make_ohlcv(900, seed=s) for s in (31, 32)]
    histories = tuple(History.from_splits({"train": f.iloc[:600], "val": f.iloc[600:]}) for f in frames)
    ev = evaluate(CROSS, EvalContext(histories=histories, sandbox=real_sandbox, task=get_task("trade"), folds=2,
                                     probe_nonce=1, eval_timeout_s=120.0))
    assert (ev.accepted, ev.stage) == (False, "lookahead"), ev.reason
    assert ev.reason.startswith("instrument 2 of 2: look-ahead: column 'f'")


def test_the_level_probe_never_flips_a_moving_average_tie() -> None:
    """An ordinary SMA crossover on cent prices (where the two averages can tie to the last bit) keeps every
    signal on the level probe, whatever the drawn factor: false rejections of ordinary rules are the cost."""
    from alphaloop.evaluate.invariance import level_frame

    def signals(close: pd.Series) -> np.ndarray:
        fast, slow = close.rolling(20).mean(), close.rolling(50).mean()
        return np.where(fast > slow, 1, np.where(fast < slow, -1, 0))

    rng = np.random.default_rng(0)
    idx = pd.bdate_range("2001-01-01", periods=2000)
    flips = 0
    for seed in range(300):  # a factor that is not a power of two flipped 8 bars of these series
        close = np.round(100 * np.cumprod(1 + rng.normal(3e-4, 0.01, len(idx))), 2)
        frame = pd.DataFrame({"Open": close, "High": close, "Low": close, "Close": close,
                              "Volume": np.full(len(idx), 1e6)}, index=idx)
        scaled, _ = level_frame(frame, seed)
        flips += int((signals(scaled["Close"]) != signals(frame["Close"])).sum())
    assert flips == 0
