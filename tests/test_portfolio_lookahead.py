"""Look-ahead on the panel: reading another instrument's future is a leak; an honest allocator is not."""

from __future__ import annotations

import pytest

from alphaloop.tasks.portfolio.driver import run_frame
from alphaloop.tasks.portfolio.lookahead import panel_leak, panel_probes
from tests.portfolio_support import CROSS_LEAK, MOMENTUM, namespace, universe_frames

FUTURE_OF_OTHERS = '''
SEEN = {}

def generate_features(df):
    SEEN[len(SEEN) + 1] = df
    df["mom"] = df["Close"].pct_change(20)
    return df

def allocate(day):
    out = {}
    for i in day.index:
        other = SEEN[1 + i % len(SEEN)]["Close"]
        out[i] = 0.2 if other.iloc[-1] > other.iloc[-2] else -0.2
    return out
'''


def _leaks(region: str, seed: int = 3) -> list[str]:
    frames = universe_frames(n=4, days=400, seed=seed)
    full = run_frame(namespace(region), frames)
    found = []
    for probe in panel_probes(frames, seed):
        leak = panel_leak(frames, full, probe, run_frame(namespace(region), probe.frames))
        if leak:
            found.append(leak)
    return found


def test_reading_another_instruments_future_is_a_leak_named_by_date_and_instrument() -> None:
    leaks = _leaks(FUTURE_OF_OTHERS)
    assert leaks
    assert "allocate's weight of instrument" in leaks[0] and "look-ahead" in leaks[0]
    assert "every instrument" in leaks[0]


def test_stashed_closes_read_back_by_allocate_leak() -> None:
    assert _leaks(CROSS_LEAK)


def test_an_honest_cross_sectional_allocator_passes_every_probe() -> None:
    assert _leaks(MOMENTUM) == []


def test_probes_cut_every_instrument_at_one_date() -> None:
    frames = universe_frames(n=3, days=300, seed=1, ragged=True)
    probes = panel_probes(frames, 7)
    assert {p.kind for p in probes} == {"truncate", "perturb"}
    for p in probes:
        if p.kind == "truncate":
            assert all(f.index.max() <= p.date for f in p.frames)
        else:
            for f, g in zip(frames, p.frames, strict=True):
                assert f.loc[: p.date].equals(g.loc[: p.date])
                assert not f["Close"].loc[f.index > p.date].head(50).equals(g["Close"].loc[g.index > p.date].head(50))


KEYED = {  # a one-bar leak active only where an attacker hopes no probe cuts: it must not matter which nonce runs
    "last rows": "np.arange(len(df)) >= len(df) - 3",
    "first week of the month": "df.index.day <= 7",
    "Wednesdays": "df.index.day_of_week == 2",
}


@pytest.mark.parametrize("name", sorted(KEYED))
def test_a_keyed_leak_is_caught_on_the_panel_whatever_the_nonce(name: str) -> None:
    region = f'''
def generate_features(df):
    df["ahead"] = np.where({KEYED[name]}, df["Close"].shift(-1) / df["Close"] - 1.0, 0.0)
    return df

def allocate(day):
    return (day["ahead"] * 20.0).clip(-0.3, 0.3)
'''
    frames = universe_frames(n=3, days=300, seed=4, ragged=True)
    full = run_frame(namespace(region), frames)
    for seed in range(12):
        assert any(panel_leak(frames, full, p, run_frame(namespace(region), p.frames))
                   for p in panel_probes(frames, seed)), (name, seed)


@pytest.mark.parametrize("failing", [2, 3])
def test_a_probe_run_that_cannot_complete_rejects_at_lookahead_with_its_outcome(failing: int) -> None:
    """The full run works but the look-ahead probes' run (2) or the invariance probes' run (3) fails: the candidate
    is rejected at look-ahead, saying the probes could not run and why, with that run's outcome and the budget."""
    from alphaloop.evaluate.pipeline import PROBES_FAILED, EvalContext, evaluate
    from alphaloop.tasks import get_task
    from alphaloop.tasks.portfolio.outputs import decode
    from sandbox.runner import RunOutcome
    from tests.portfolio_support import split_frames

    class FailsOnce:
        calls, timeout_s = 0, 60.0

        def run(self, region: str, frames: list, timeout_s: float | None = None, task: str | None = None):
            self.calls += 1
            if self.calls == failing:
                return RunOutcome("exception", "ValueError: boom", None, "a log", 0.25)
            results = [decode(run_frame(namespace(region), tuple(p)), tuple(p)) for p in frames]
            return RunOutcome("ok", "", results, "", 0.01)

    histories = split_frames(universe_frames(n=3, days=500, seed=4))
    ev = evaluate(MOMENTUM, EvalContext(histories=histories, sandbox=FailsOnce(), task=get_task("portfolio")))
    assert (ev.accepted, ev.stage, ev.reason) == (False, "lookahead", PROBES_FAILED + "exception: ValueError: boom")
    details = ev.details["lookahead"]
    run = details["run" if failing == 2 else "invariance_run"]
    assert (run["status"], run["reason"], run["log"]) == ("exception", "ValueError: boom", "a log")
    assert set(details["spent_s"]) >= {"full run", "probes"}
