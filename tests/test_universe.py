"""Scoring over a universe: the portfolio the loop selects on, per-instrument probes and guards named by
number, statistics that a search picking the best instrument cannot fool, and one instrument unchanged."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from alphaloop.evaluate.pipeline import EvalContext, Evaluation, evaluate
from alphaloop.evaluate.scoring import History, score
from alphaloop.evaluate.stats import universe_statistics
from alphaloop.evaluate.universe import (
    Leg,
    bh_returns,
    combine,
    figures_from_record,
    positions_sha256,
    score_universe,
)
from alphaloop.run.records import UNIVERSE_FIELDS, IterationRecord
from alphaloop.tasks import get_task
from tests.conftest import InProcessSandbox
from tests.test_lookahead import BASELINE
from tests.test_sandbox_support import make_ohlcv
from tests.test_stats import EDGE, VAL, WARM, momentum_signals, regime_prices


def history_of(frame: pd.DataFrame, train: int) -> History:
    return History.from_splits({"train": frame.iloc[:train], "val": frame.iloc[train:]})


def frame_of(close: np.ndarray, start: str = "2001-01-02") -> pd.DataFrame:
    index = pd.bdate_range(start, periods=close.size, name="Date")
    return pd.DataFrame({"Open": close, "High": close, "Low": close, "Close": close, "Volume": 1e6,
                         "Adj Close": close}, index=index)


def synthetic_universe(seed: int, edged: set[int], k: int = 8) -> list[History]:
    """k seeded instruments; a persistent trend regime (a momentum rule's edge) in those of ``edged``."""
    rng = np.random.default_rng(seed)
    return [history_of(frame_of(regime_prices(rng, EDGE if i in edged else 0.0)), WARM) for i in range(k)]


def sma_signals(close: np.ndarray, fast: int = 20, slow: int = 50) -> np.ndarray:
    c = pd.Series(close)
    f, s = c.rolling(fast).mean(), c.rolling(slow).mean()
    return np.where(f > s, 1, np.where(f < s, -1, 0))


# ----- one instrument is today's numbers -------------------------------------------------------------

def test_one_instrument_scores_exactly_as_before() -> None:
    h = history_of(make_ohlcv(1500, seed=3), 1100)
    s = sma_signals(h.frame["Close"].to_numpy())
    u = score_universe([h], [s])
    assert u.portfolio.to_json() == score(h, s).to_json()
    assert all(np.array_equal(u.portfolio.returns[k], score(h, s).returns[k]) for k in ("train", "val"))
    assert np.array_equal(bh_returns([h]), h.bh_returns("val"))
    rec = IterationRecord(iteration=0, status="accepted", stage="ok")
    assert not set(UNIVERSE_FIELDS) & set(rec.to_json())  # one instrument adds nothing to the iteration record


def test_copies_of_one_instrument_make_a_portfolio_with_its_figures() -> None:
    """The portfolio path on its own: two identical instruments hold the instrument's returns, folds included."""
    h = history_of(make_ohlcv(1500, seed=4), 1100)
    s = sma_signals(h.frame["Close"].to_numpy())
    one, two = score(h, s), score_universe([h, h], [s, s]).portfolio
    for split in ("train", "val"):
        for key in ("sharpe", "total_return", "max_drawdown", "exposure", "turnover", "bh_sharpe", "cagr", "calmar"):
            assert two.splits[split][key] == pytest.approx(one.splits[split][key], rel=1e-12, abs=1e-15)
        assert two.splits[split]["round_trips"] == 2 * one.splits[split]["round_trips"]
    assert [(f["start"], f["end"]) for f in two.folds] == [(f["start"], f["end"]) for f in one.folds]
    assert [f["sharpe"] for f in two.folds] == pytest.approx([f["sharpe"] for f in one.folds], rel=1e-12)


def test_each_instrument_keeps_its_calendar_and_no_bar_is_invented() -> None:
    days = pd.bdate_range("2020-01-01", periods=5)
    a = Leg(days[1:], np.array([0.01, 0.02, 0.03, 0.04]), np.array([0.1, 0.2, 0.3, 0.4]), {})
    b = Leg(days[[1, 3, 4]], np.array([0.03, -0.02, 0.00]), np.array([0.3, -0.2, 0.0]), {})
    dates, ret, bh = combine([a, b])
    assert list(dates) == list(days[1:])
    assert ret == pytest.approx([0.02, 0.02, 0.005, 0.02])  # day 3: only the first instrument traded
    assert bh == pytest.approx([0.2, 0.2, 0.05, 0.2])


def test_universe_figures_number_the_instruments() -> None:
    rng = np.random.default_rng(5)
    hs = [history_of(frame_of(100 * np.cumprod(1 + rng.normal(3e-4, 0.01, 1400))), 1000) for _ in range(5)]
    sig = [sma_signals(h.frame["Close"].to_numpy()) for h in hs]
    u = score_universe(hs, sig)
    vals = [s.splits["val"]["sharpe"] for s in u.instruments]
    f = u.figures()
    assert f.instruments == 5 and f.portfolio == u.portfolio.splits["val"]["sharpe"]
    assert f.best == (int(np.argmax(vals)) + 1, max(vals)) and f.worst == (int(np.argmin(vals)) + 1, min(vals))
    assert f.median == pytest.approx(np.median(vals))
    record = json.loads(json.dumps(u.to_json()))
    assert figures_from_record(record) == f and len(record["per_instrument"]) == 5


def test_duplicates_are_judged_on_every_instruments_validation_positions() -> None:
    hs = [history_of(make_ohlcv(1200, seed=s), 900) for s in (1, 2)]
    sig = [sma_signals(h.frame["Close"].to_numpy()) for h in hs]
    train_only = [s.copy() for s in sig]
    for s in train_only:
        s[:900] = -1  # a filter that only acts in train trades identically on validation
    assert positions_sha256(hs, sig) == positions_sha256(hs, train_only)
    other = [sig[0], np.where(np.arange(len(sig[1])) % 30 < 10, 1, -1)]  # differs on the second instrument only
    assert positions_sha256(hs, sig) != positions_sha256(hs, other)


# ----- statistics over the universe ------------------------------------------------------------------

def search(histories: list[History], lookbacks: range, seed: int):
    """Every lookback is a trial scored on the universe as the loop scores it; statistics as finish.py runs them."""
    trials = []
    for k in lookbacks:
        sig = [momentum_signals(h.frame["Close"].to_numpy(), k) for h in histories]
        trials.append(score_universe(histories, sig, folds=0))
    m = np.column_stack([u.portfolio.returns["val"] for u in trials])
    best = int(np.argmax([u.portfolio.selection for u in trials]))
    per = {f"instrument {i + 1}": (s.returns["val"], h.bh_returns("val"))
           for i, (s, h) in enumerate(zip(trials[best].instruments, histories, strict=True))}
    return universe_statistics(m, best, bh_returns(histories), trials=len(trials), instruments=len(histories),
                               per_instrument=per, seed=seed, reps=500), trials[best]


@pytest.mark.parametrize("seed", [10, 11])
def test_an_edge_in_every_instrument_is_found_and_significant(seed: int) -> None:
    st, best = search(synthetic_universe(seed, set(range(8))), range(5, 125, 10), seed)
    assert best.portfolio.selection > best.portfolio.splits["val"]["bh_sharpe"]
    assert st.dsr_excess.significant and st.spa.significant and st.beats_buy_and_hold
    assert st.verdict.startswith("Beats buy and hold beyond luck") and len(st.per_instrument) == 8
    assert st.dsr_returns.observations == VAL


@pytest.mark.parametrize("seed", [20, 21])
def test_the_same_edge_in_one_instrument_of_eight_is_not_significant_on_the_universe(seed: int) -> None:
    histories = synthetic_universe(seed, {0})
    st, _ = search(histories, range(5, 125, 10), seed)
    assert not st.dsr_excess.significant and not st.spa.significant and not st.beats_buy_and_hold
    assert "not shown to beat buy and hold" in st.verdict and st.instruments == 8
    if seed == 20:  # searched on the edged instrument alone, the same search calls it a discovery
        alone, _ = search(histories[:1], range(5, 125, 10), seed)
        assert alone.dsr_excess.significant and alone.spa.significant


# ----- the pipeline runs, probes and guards every instrument ---------------------------------------

def level_universe(levels: tuple[float, ...] = (100.0, 100.0, 1000.0)) -> list[History]:
    """Instruments told apart by price level only, so a region can misbehave on one of them."""
    out = []
    for i, level in enumerate(levels):
        f = make_ohlcv(900, seed=30 + i)
        f[["Open", "High", "Low", "Close", "Adj Close"]] *= level / 100.0
        out.append(history_of(f, 600))
    return out


def run_universe(region: str, histories: list[History], box: InProcessSandbox | None = None) -> Evaluation:
    ctx = EvalContext(histories=tuple(histories), sandbox=box or InProcessSandbox(), task=get_task("trade"))
    ev = evaluate(region, ctx)
    json.dumps(ev.details)
    return ev


def test_a_clean_region_runs_once_on_every_instrument_and_is_scored_on_the_portfolio() -> None:
    hs, box = level_universe(), InProcessSandbox()
    ev = run_universe(BASELINE, hs, box)
    assert ev.accepted, ev.reason
    info = ev.details["lookahead"]
    assert box.calls == [1, sum(len(i["probes"]) + len(i["invariance"]) for i in info["instruments"])]
    assert len({i["seed"] for i in info["instruments"]}) == 3  # each instrument probed at cuts of its own
    assert len(ev.outputs) == 3 and ev.universe is not None
    again = score_universe(hs, list(ev.outputs))
    assert ev.scores.selection == again.portfolio.selection and ev.universe.figures().instruments == 3
    assert len(ev.details["guards"]["instruments"]) == 3 and ev.details["guards"]["failed"] == []


LEAK_ON_EXPENSIVE = """
def generate_features(df):
    df['fast'] = df['Close'].rolling(20).mean()
    df['slow'] = df['Close'].rolling(50).mean()
    if df['Close'].iloc[0] > 500:
        df['fast'] = df['Close'].shift(-1)
    return df

def strategy_logic(row):
    if row['fast'] > row['slow']:
        return 1
    if row['fast'] < row['slow']:
        return -1
    return 0
"""

FLAT_ON_EXPENSIVE = """
def generate_features(df):
    df['fast'] = df['Close'].rolling(20).mean()
    df['slow'] = df['Close'].rolling(50).mean()
    return df

def strategy_logic(row):
    if row['Close'] > 500:
        return 0
    if row['fast'] > row['slow']:
        return 1
    if row['fast'] < row['slow']:
        return -1
    return 0
"""


def test_a_leak_on_one_instrument_rejects_and_names_it_by_number() -> None:
    ev = run_universe(LEAK_ON_EXPENSIVE, level_universe())
    assert (ev.accepted, ev.stage) == (False, "lookahead")
    assert ev.reason.startswith("instrument 3 of 3: look-ahead: column 'fast'")
    assert ev.details["lookahead"]["leak"]["instrument"] == 3


def test_a_guard_failure_on_one_instrument_rejects_names_it_and_keeps_the_scores() -> None:
    # levels 10 and 10,000 stay on their side of 500 under the level probe (x1/4 to x4): only always_flat fails
    ev = run_universe(FLAT_ON_EXPENSIVE, level_universe((10.0, 10000.0, 10000.0)))
    assert (ev.accepted, ev.stage) == (False, "guards")
    assert ev.reason.startswith("instrument 2 of 3: always flat on validation")
    assert ev.reason.endswith("(guards also failed on instrument 3)")
    assert ev.details["guards"]["failed"] == ["instrument 2: always_flat", "instrument 3: always_flat"]
    assert ev.scores is not None and ev.universe.instruments[0].splits["val"]["round_trips"] > 0


def test_one_instrument_through_the_pipeline_is_unchanged() -> None:
    h = level_universe((100.0,))[0]
    alone = evaluate(BASELINE, EvalContext(histories=(h,), sandbox=InProcessSandbox(), task=get_task("trade")))
    listed = evaluate(BASELINE, EvalContext(histories=[h], sandbox=InProcessSandbox(), task=get_task("trade")))
    for ev in (alone, listed):
        assert ev.universe is None and "instruments" not in ev.details["lookahead"]
        assert "instruments" not in ev.details["guards"]
    assert alone.scores.to_json() == listed.scores.to_json() == score(h, alone.outputs[0]).to_json()
    assert alone.details["lookahead"]["probes"] == listed.details["lookahead"]["probes"]


# ----- the loop over a universe: records, statistics and anonymised prompts ---------------------------

class RecordingProposer:
    """The offline proposer, with every request it answers rendered as the LLM would receive it."""

    def __init__(self, seed: int) -> None:
        from alphaloop.propose import make_proposer
        from alphaloop.propose.prompting import load_prompts

        self.inner = make_proposer("offline", seed=seed)
        self.name = self.inner.name
        self.program, self.template = load_prompts()
        self.prompts: list[str] = []
        self.contexts: list = []

    def propose(self, ctx):
        from alphaloop.propose.prompting import build_messages

        self.contexts.append(ctx)
        self.prompts.append("\n".join(m["content"] for m in build_messages(ctx, self.program, self.template)))
        return self.inner.propose(ctx)

    def compact(self, text: str, budget_tokens: int):
        return self.inner.compact(text, budget_tokens)


TICKERS = ("QQQTICK", "IWMTICK", "EFATICK")


def as_universe(names: tuple[str, ...], histories: list[History]):
    """A ``data.Universe`` holding these instruments' train and validation frames."""
    from alphaloop.data.frozen import Universe

    return Universe(tuple(names), {n: {k: h.frame.iloc[w] for k, w in h.windows.items()}
                                   for n, h in zip(names, histories, strict=True)})


def sibling(history: History, seed: int) -> History:
    """A second instrument on the same calendar: the first's bars with seeded noise on every return."""
    rng = np.random.default_rng(seed)
    f = history.frame.copy()
    factor = np.cumprod(1.0 + rng.normal(0.0, 0.004, len(f)))
    for c in ("Open", "High", "Low", "Close", "Adj Close"):
        f[c] = f[c] * factor
    train, val = history.windows["train"], history.windows["val"]
    return History.from_splits({"train": f.iloc[train], "val": f.iloc[val]})


def test_the_loop_over_a_universe_records_numbers_and_never_names_an_instrument(
        frozen_data, tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:
    from alphaloop.data.frozen import load_splits
    from alphaloop.present.ui import PlainView
    from alphaloop.run import loop as loop_module
    from alphaloop.run.loop import Loop, LoopConfig
    from alphaloop.run.workdir import Workdir

    first = History.from_splits(load_splits(frozen_data))
    universe = [first, sibling(first, 1), sibling(first, 2)]
    monkeypatch.setattr(loop_module, "load_universe", lambda data_dir: as_universe(TICKERS, universe))
    workdir = tmp_path / "run"
    proposer = RecordingProposer(seed=3)
    cfg = LoopConfig(workdir=workdir, data_dir=frozen_data, iterations=5, max_fails=0, seed=3, stress_paths=0)
    assert Loop(cfg, proposer, "offline (seed 3)", PlainView(5)).run() == 0
    records = Workdir(workdir).records()
    scored = [r for r in records if r.scores]
    assert len(records) == 6 and scored and all(r.universe["instruments"] == 3 for r in scored)
    for r in scored:
        per = [p["splits"]["val"]["sharpe"] for p in r.universe["per_instrument"]]
        assert r.universe["median_val"] == pytest.approx(np.median(per))
        assert r.val_metric == r.universe["portfolio_val"]
    accepted = [r for r in records if r.accepted]
    members = [r for r in accepted if r.entered]  # members keep every instrument's returns (docs/workdir.md)
    assert members and all(len(r.instrument_returns) == 3 for r in members)
    assert all(len(r.instrument_returns[0]) == len(r.returns["val"]) for r in members)
    assert all(r.instrument_returns is None and r.returns["val"] for r in accepted if not r.entered)
    on_disk = json.loads((workdir / "iter_0_results.json").read_text())
    assert "instrument_returns" not in on_disk and "universe" in on_disk  # the bulky part sits in the sidecar
    stats = json.loads((workdir / "stats.json").read_text())
    assert stats["universe"]["instruments"] == 3
    assert [f["name"] for f in stats["universe"]["per_instrument"]] == list(TICKERS)  # for people, never prompts
    assert "equal-weight buy and hold of the 3 instruments" in stats["universe"]["spa"]["benchmark"]
    assert any("portfolio of 3 instruments" in p for p in proposer.prompts)
    assert any(c.parent_figures is not None and c.parent_figures.universe is not None for c in proposer.contexts)
    for p in proposer.prompts:
        assert not any(t.lower() in p.lower() for t in TICKERS)


def test_check_judges_a_universe_as_the_loop_does(frozen_data, tmp_path, monkeypatch: pytest.MonkeyPatch,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    from alphaloop.candidate import splice_region, template_text
    from alphaloop.commands import check as check_module
    from alphaloop.commands.check import run_check
    from alphaloop.data.frozen import load_splits

    first = History.from_splits(load_splits(frozen_data))
    monkeypatch.setattr(check_module, "load_universe", lambda d: as_universe(TICKERS[:2], [first, sibling(first, 4)]))
    file = tmp_path / "cand.py"
    file.write_text(splice_region(template_text(), BASELINE))
    assert run_check(file, frozen_data, "sharpe", 4, 2.0, sandbox=InProcessSandbox()) == 0
    out = capsys.readouterr().out
    verdict = json.loads(out.strip().splitlines()[-1])
    assert verdict["universe"]["instruments"] == 2 and "universe: 2 instruments" in out
    assert verdict["metrics"]["selection_val"] == verdict["universe"]["portfolio_val"]
    assert "ranked by their equal-weight portfolio" in out and "invariance probes over 2 instruments" in out


STATEFUL = """
STATE = {"n": 0}

def generate_features(df):
    df["r"] = df["Close"].pct_change()
    return df

def strategy_logic(row):
    STATE["n"] += 1
    return 1 if (STATE["n"] // 20) % 2 == 0 else -1
"""


def test_state_kept_across_rows_is_judged_per_frame_on_a_universe() -> None:
    box = InProcessSandbox()  # like the real sandbox, each frame (the full run's panel, each probe) starts fresh
    ev = run_universe(STATEFUL, level_universe(), box)
    assert ev.stage != "lookahead" and "keeps state" not in ev.reason, ev.reason
    assert ev.details["lookahead"]["rerun_alone"] == [] and box.calls[:1] == [1]
