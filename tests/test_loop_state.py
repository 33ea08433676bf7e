"""Population rules: ranking, top-K, duplicates, failure counting and revert-to-a-member parents."""

from __future__ import annotations

from alphaloop.run.learnings import Learnings
from alphaloop.run.records import IterationRecord
from alphaloop.run.state import LoopState
from alphaloop.tasks import get_task


def record(n: int, val: float | None, status: str = "accepted", sha: str | None = None, parent: int | None = 0) -> dict:
    scores = None
    if val is not None:
        metrics = {"sharpe": val, "round_trips": 10.0}
        scores = {"splits": {"val": metrics, "train": {**metrics, "sharpe": val / 2}},
                  "fold_spread": {"min": 0.0, "median": val}}
    return {"iteration": n, "parent": None if n == 0 else parent, "status": status,
            "stage": "ok" if status == "accepted" else "gate",
            "reason": "" if status == "accepted" else "line 1: import (rule: import)", "scores": scores,
            "selection_val": val, "selection_value": val, "signals_sha256": sha or f"sig{n}",
            "proposal": {"change": f"change {n}"}}


def fold(state: LoopState, rec: dict) -> None:
    """What the loop does: decide entry against the state before the record is committed."""
    if rec["status"] == "accepted":
        rec["duplicate_of"] = state.duplicate_of(rec["signals_sha256"])
        rec["in_population"] = state.would_enter(rec["selection_value"], rec["signals_sha256"])
    # the old record shape, read as the loop reads it
    state.apply(IterationRecord.from_json(rec), Learnings(), get_task("trade"))


def test_top_k_ranking_failures_and_duplicates() -> None:
    st = LoopState(metric="sharpe", population_size=3, data_manifest="x")
    for n, val in enumerate([0.3, 0.5, 0.1, 0.4]):
        fold(st, record(n, val))
    assert [m.iteration for m in st.population] == [1, 3, 0] and st.consecutive_fails == 0
    fold(st, record(4, 0.2))
    assert st.consecutive_fails == 1 and [m.iteration for m in st.population] == [1, 3, 0]
    fold(st, record(5, None, status="rejected"))
    assert st.consecutive_fails == 2 and st.trials == 6
    fold(st, record(6, 0.9, sha="sig1"))  # same signals as iter 1: adds nothing, whatever its score
    assert st.consecutive_fails == 3 and 6 not in [m.iteration for m in st.population]
    assert "duplicate of iter 1: the same validation outputs" in st.learnings["entries"][-1]["headline"]
    fold(st, record(7, 0.45))
    assert [m.iteration for m in st.population] == [1, 7, 3] and st.consecutive_fails == 0


def test_parent_is_the_new_member_after_a_success_and_a_random_member_after_a_failure() -> None:
    st = LoopState(metric="sharpe", population_size=3, data_manifest="x")
    for n, val in enumerate([0.3, 0.5, 0.4]):
        fold(st, record(n, val))
    assert st.pick_parent(3, seed=0) == 2
    fold(st, record(3, 0.1))
    picks = {st.pick_parent(n, seed=s) for s in range(20) for n in (4, 5)}
    assert picks <= {0, 1, 2} and len(picks) > 1
    assert st.pick_parent(4, seed=3) == st.pick_parent(4, seed=3)


def test_state_round_trips_through_json() -> None:
    st = LoopState(metric="sharpe", population_size=2, data_manifest="x")
    for n, val in enumerate([0.3, 0.5, 0.4]):
        fold(st, record(n, val))
    again = LoopState.from_json(st.to_json())
    assert again.population == st.population and again.learnings == st.learnings and again.next_iteration == 3
